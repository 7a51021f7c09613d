"""Rolling upgrades: a new image to every worker, a batch at a time.

Each batch is retired through the scheduler (its data moves to the other
workers), replaced, and proven healthy before the next one starts; a batch
that fails is rolled back to the containers it had. See
:func:`daskfleet.upgrade.run.upgrade`.
"""
