"""``python -m webhook`` runs the CLI."""

from webhook.cli import main

main()
