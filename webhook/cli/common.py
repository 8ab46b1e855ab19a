"""Options shared by the analysis commands, and building the core's Context from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from webhook.core.verdict import Context

F = TypeVar("F", bound=Callable[..., Any])


def context_options(f: F) -> F:
    options = [
        click.option(
            "--profile",
            type=click.Choice(["baseline", "strict", "stig"]),
            default="baseline",
            show_default=True,
            help="Rules to judge by (see README: profiles).",
        ),
        click.option("--categories", type=click.Path(dir_okay=False), help="Your own category catalog file."),
        click.option(
            "--kubernetes-version",
            metavar="X.Y",
            help="Target kube-apiserver release whose behaviour and flag set to emulate (default: newest known, 1.37).",
        ),
        click.option(
            "--policy-file-map",
            multiple=True,
            metavar="APISERVER_PATH=LOCAL_FILE",
            help="Content of a policy file named by --audit-policy-file, to judge it too. Repeatable.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_context(
    profile: str,
    categories: str | None,
    kubernetes_version: str | None,
    policy_file_map: tuple[str, ...] = (),
    *,
    require_kind_label: bool = False,
) -> Context:
    from webhook.context import build_context
    from webhook.core.categories import CatalogError
    from webhook.core.versions import NEWEST, parse_version

    try:
        version = parse_version(kubernetes_version) if kubernetes_version else NEWEST
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--kubernetes-version") from None
    policy_files: dict[str, str] = {}
    for item in policy_file_map:
        target, sep, local = item.partition("=")
        if not sep or not target or not local:
            raise click.BadParameter(f"{item!r}: expected APISERVER_PATH=LOCAL_FILE", param_hint="--policy-file-map")
        try:
            policy_files[target] = Path(local).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"{local}: {exc}", param_hint="--policy-file-map") from None
    try:
        return build_context(
            profile=profile, kubernetes_version=version, categories_file=categories, policy_files=policy_files,
            require_kind_label=require_kind_label,
        )  # fmt: skip
    except (OSError, CatalogError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--categories") from None
