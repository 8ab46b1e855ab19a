"""``auditwarden evaluate``: what level and stages a policy gives each request.

Reads request-attribute JSON objects, one per line, on stdin (the shape of the ``request``
entries of the conformance data) and prints one JSON line each:
``{"level": "Metadata", "omitStages": ["RequestReceived"], "rule": 3}``.
"""

from __future__ import annotations

import json
import sys

import click

from webhook.cli.common import make_context


@click.command()
@click.option("--kubernetes-version", metavar="X.Y", help="Target kube-apiserver release (default 1.37).")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False))
def evaluate(kubernetes_version: str | None, policy_file: str) -> None:
    """Evaluate POLICY_FILE for request attributes read as JSON lines from stdin."""
    from webhook.core.categories import CatalogError, attributes_from_request
    from webhook.core.checker import Evaluator
    from webhook.core.policy import PolicyError, load_policy

    ctx = make_context("baseline", None, kubernetes_version)
    try:
        with open(policy_file, "rb") as fh:
            policy = load_policy(fh.read(), ctx.kubernetes_version)
    except PolicyError as err:
        click.echo(f"kube-apiserver would refuse to start with this policy: {err}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"{policy_file}: {exc.strerror}", err=True)
        sys.exit(2)
    evaluator = Evaluator(policy, ctx.kubernetes_version)
    bad = 0
    for n, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            attrs = attributes_from_request(json.loads(line), f"line {n}")
        except (ValueError, CatalogError) as exc:
            bad += 1
            click.echo(json.dumps({"error": f"line {n}: {exc}"}))
            continue
        d = evaluator.evaluate(attrs)
        click.echo(json.dumps({"level": d.level, "omitStages": sorted(d.omit_stages), "rule": d.rule}))
    sys.exit(2 if bad else 0)
