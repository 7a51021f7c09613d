"""``python -m daskfleet``: the same as the ``daskfleet`` command."""

from daskfleet.cli.main import main

main()
