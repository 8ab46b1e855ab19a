"""The ``auditwarden`` command line: a thin click adapter around the core.

Sub-command modules import heavy libraries (Flask, gunicorn, cryptography, the Kubernetes
client) only inside their command functions, so that ``auditwarden check`` starts as fast
as a bare Python process that loads YAML.
"""

from __future__ import annotations

import click

from webhook import __version__

#: command name → "module:attribute"; a command's module is imported only when that command runs
#: (or when help lists them all), so `auditwarden check` does not import scan's or serve's code
COMMANDS = {
    "check": "webhook.cli.check:check",
    "evaluate": "webhook.cli.evaluate:evaluate",
    "fix": "webhook.cli.fix:fix",
    "scan": "webhook.cli.scan:scan",
    "serve": "webhook.cli.serve:serve",
    "certs": "webhook.cli.certs:certs",
}


class LazyGroup(click.Group):
    """click's documented lazy-loading group: sub-commands resolved from :data:`COMMANDS` on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        import importlib

        module, _, attr = COMMANDS[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditwarden")
def main() -> None:
    """Keep kube-apiserver audit logging switched on and meaningful."""
