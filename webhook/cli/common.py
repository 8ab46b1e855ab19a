"""Options shared by the analysis commands, and building the core's Context from them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from webhook.core.findings import Finding
    from webhook.core.verdict import Context
    from webhook.providers import Provider
    from webhook.report import Report

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


def judge_into(report: Report, doc: Mapping[str, Any], source: str, ctx: Context) -> None:
    """Judge one object as ``check`` and ``scan`` do (a CREATE in ``enforce``) and add what it gives to ``report``."""
    from webhook.core.analysis import DocumentResult
    from webhook.core.verdict import judge

    verdict = judge(doc, None, operation="CREATE", mode="enforce", context=ctx, source=source)
    if verdict.decision == "skip":
        report.skipped.append(source)
    report.results += verdict.results
    if verdict.violations and not verdict.results:  # e.g. an unparseable ConfigMap value
        report.results.append(
            DocumentResult(source=source, kind="configmap", valid=False, violations=verdict.violations,
                           warnings=verdict.warnings)
        )  # fmt: skip
    elif verdict.results:  # findings about the ConfigMap itself (its label, another value)
        own_v = _beside(verdict.violations, [f for r in verdict.results for f in r.violations])
        own_w = _beside(verdict.warnings, [f for r in verdict.results for f in r.warnings])
        if own_v or own_w:
            report.results.append(
                DocumentResult(source=source, kind="configmap", valid=not own_v, violations=own_v, warnings=own_w)
            )


def _beside(findings: Sequence[Finding], of_results: Sequence[Finding]) -> tuple[Finding, ...]:
    """The findings not already reported with a document's result (each counted once)."""
    rest = list(of_results)
    out = []
    for f in findings:
        if f in rest:
            rest.remove(f)
        else:
            out.append(f)
    return tuple(out)


def provider_option(f: F) -> F:
    from webhook.providers import PROVIDERS

    return click.option(
        "--provider",
        "providers",
        multiple=True,
        type=click.Choice(PROVIDERS),
        help="Also judge this managed provider's own audit policy, which its users cannot edit (README, "
        '"Managed clusters"). Repeatable.',
    )(f)


def judge_providers(report: Report, keys: Sequence[str], ctx: Context) -> list[Provider]:
    """Judge each provider's policy (and its export variants) into ``report``; the providers, for the output."""
    from webhook.core import yamlsafe
    from webhook.providers import load_provider, without_repairs

    loaded = []
    for key in dict.fromkeys(keys):
        p = load_provider(key)
        loaded.append(p)
        before = len(report.results)
        judge_into(report, yamlsafe.load_file(p.policy_text)[0], f"provider {key}", ctx)
        for name, text in p.variants:
            judge_into(report, yamlsafe.load_file(text)[0], f"provider {key} ({name})", ctx)
        report.results[before:] = [without_repairs(r, p) for r in report.results[before:]]
    return loaded


def with_providers(rendered: str, fmt: str, providers: Sequence[Provider]) -> str:
    """The rendered report with what each provider's users can and cannot change (text lines, or a JSON key)."""
    if not providers:
        return rendered
    if fmt == "json":
        import json

        doc = json.loads(rendered)
        doc["providers"] = [{"provider": p.key, "name": p.name, "source": p.source, "note": p.note,
                             "cannotChange": list(p.cannot_change), "canChange": list(p.can_change)}
                            for p in providers]  # fmt: skip
        return json.dumps(doc)
    from webhook.providers import describe

    return rendered.rstrip("\n") + "\n\n" + "\n".join(line for p in providers for line in describe(p))
