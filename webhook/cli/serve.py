"""`auditwarden serve` — placeholder, implementation in progress."""

from __future__ import annotations

import click


@click.command()
def serve() -> None:
    """Not implemented yet."""
    raise click.ClickException("not implemented yet")
