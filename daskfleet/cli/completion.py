"""``daskfleet completion SHELL``: the shell's tab-completion script."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

PROG_NAME = "daskfleet"
#: The variable click's entry point reads to answer a completion request.
COMPLETE_VAR = "_DASKFLEET_COMPLETE"
SHELLS = ("bash", "zsh")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the tab-completion script for SHELL (bash or zsh).

    \b
    bash:  daskfleet completion bash > ~/.local/share/bash-completion/completions/daskfleet
    zsh:   daskfleet completion zsh > "${fpath[1]}/_daskfleet"
    or, for the current shell only:  eval "$(daskfleet completion bash)"
    """
    root = ctx.find_root().command
    completion_class = get_completion_class(shell)
    assert completion_class is not None  # click ships bash and zsh
    script = completion_class(root, {}, PROG_NAME, COMPLETE_VAR).source()
    click.echo(script)
