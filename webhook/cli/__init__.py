"""The ``auditwarden`` command line: a thin click adapter around the core.

Sub-command modules import heavy libraries (Flask, gunicorn, cryptography, the Kubernetes
client) only inside their command functions, so that ``auditwarden check`` starts as fast
as a bare Python process that loads YAML.
"""

from __future__ import annotations

import click

from webhook import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditwarden")
def main() -> None:
    """Keep kube-apiserver audit logging switched on and meaningful."""


def _register() -> None:
    from webhook.cli import certs, check, evaluate, fix, scan, serve

    main.add_command(check.check)
    main.add_command(evaluate.evaluate)
    main.add_command(fix.fix)
    main.add_command(scan.scan)
    main.add_command(serve.serve)
    main.add_command(certs.certs)


_register()
