"""`auditwarden certs` — placeholder, implementation in progress."""

from __future__ import annotations

import click


@click.group()
def certs() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")
