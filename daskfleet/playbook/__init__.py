"""Ansible-style playbooks: plays of tasks, each task one module.

``load_playbook`` reads and checks a file; ``run_playbook`` runs it on an
inventory and returns a :class:`PlaybookRecap` (Ansible's PLAY RECAP, plus
the deploy recap of each play's cluster tasks). ``shipped_playbook`` finds
the deploy, upgrade and teardown playbooks that come with daskfleet.
"""

from daskfleet.playbook.loader import load_playbook
from daskfleet.playbook.model import Play, Playbook, Task
from daskfleet.playbook.module import (
    Arg,
    ClusterCall,
    ClusterModule,
    HostCall,
    HostModule,
    ModuleResult,
    register,
    registered_modules,
)
from daskfleet.playbook.recap import HostStats, PlaybookRecap, PlayResult, TaskOutcome
from daskfleet.playbook.runner import PlayListener, PlayOptions, run_playbook
from daskfleet.playbook.shipped import SHIPPED, run_shipped, shipped_playbook

__all__ = [
    "SHIPPED",
    "Arg",
    "ClusterCall",
    "ClusterModule",
    "HostCall",
    "HostModule",
    "HostStats",
    "ModuleResult",
    "Play",
    "PlayListener",
    "PlayOptions",
    "PlayResult",
    "Playbook",
    "PlaybookRecap",
    "Task",
    "TaskOutcome",
    "load_playbook",
    "register",
    "registered_modules",
    "run_playbook",
    "run_shipped",
    "shipped_playbook",
]
