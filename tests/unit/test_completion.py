"""Shell completion: the printed scripts and the answers they ask for."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from daskfleet.cli.main import cli


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _daskfleet_completion daskfleet"),
        ("zsh", "#compdef daskfleet"),
    ],
)
def test_script_names_the_program(shell: str, marker: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0
    assert marker in result.output
    assert "_DASKFLEET_COMPLETE" in result.output


def test_unknown_shell_is_refused() -> None:
    result = CliRunner().invoke(cli, ["completion", "fish"])
    assert result.exit_code == 2


def complete(words: str) -> list[str]:
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
        "_DASKFLEET_COMPLETE": "bash_complete",
    }
    done = subprocess.run(
        [sys.executable, "-m", "daskfleet"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_commands_and_options_complete() -> None:
    assert "plain,tunnel" in complete("daskfleet tu")
    assert "plain,--watch" in complete("daskfleet status --wa")
