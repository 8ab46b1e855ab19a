"""``auditwarden check``: the offline checker for CI pipelines.

Reads files or directories (recursing into ``*.yaml``, ``*.yml``, ``*.json``), recognises
each document and judges it with the same :func:`webhook.core.verdict.judge` the webhook
uses (as a CREATE in ``enforce`` mode).  Exit 0 when everything passes, 1 on any
violation, 2 for usage errors or unreadable input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from webhook.cli.common import (
    context_options,
    judge_into,
    judge_providers,
    make_context,
    provider_option,
    with_providers,
)

if TYPE_CHECKING:
    from webhook.core.repair import Repair
    from webhook.core.verdict import Context
    from webhook.fixedit import Located

SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 8 * 1024 * 1024


def _files(paths: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            missing.append(f"{raw}: no such file or directory")
    return files, missing


@click.command()
@context_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True)
@click.option(
    "--require-kind-label",
    is_flag=True,
    help="A ConfigMap carrying audit configuration without the auditwarden.io/kind label is a violation "
    "(the service's requireKindLabel), not a warning.",
)
@provider_option
@click.argument("paths", nargs=-1)
def check(
    profile: str,
    categories: str | None,
    kubernetes_version: str | None,
    policy_file_map: tuple[str, ...],
    fmt: str,
    require_kind_label: bool,
    providers: tuple[str, ...],
    paths: tuple[str, ...],
) -> None:
    """Judge audit policies and kube-apiserver configurations in PATHS (and, with --provider, a provider's own)."""
    if not paths and not providers:
        raise click.UsageError("give PATHS to check, or --provider")
    from webhook.core import yamlsafe
    from webhook.core.analysis import DocumentResult
    from webhook.core.documents import late_policy, looks_like_policy
    from webhook.core.findings import Finding
    from webhook.core.versions import format_version
    from webhook.report import Report, render

    ctx = make_context(profile, categories, kubernetes_version, policy_file_map, require_kind_label=require_kind_label)
    files, unreadable = _files(paths)
    report = Report([], profile, format_version(ctx.kubernetes_version), unreadable=unreadable)
    if fmt == "sarif":
        report.repair_of = _repairer(ctx)
    judged_providers = judge_providers(report, providers, ctx)
    for path in files:
        try:
            data = path.read_bytes()[: MAX_FILE_BYTES + 1]
        except OSError as exc:
            report.unreadable.append(f"{path}: {exc.strerror}")
            continue
        if fmt == "sarif":
            report.texts[str(path)] = data.decode("utf-8", "replace")
        try:
            docs = yamlsafe.load_file(data)
        except yamlsafe.DocumentError as exc:
            report.results.append(
                DocumentResult(source=str(path), kind="unparseable", valid=False,
                               violations=(Finding("content-unparseable", str(exc)),),
                               summary="The file cannot be parsed.")
            )  # fmt: skip
            continue
        late = late_policy(docs)
        if late is not None:  # kube-apiserver would read the first document only
            report.results.append(
                DocumentResult(source=str(path), kind="audit-policy", valid=False,
                               violations=(Finding("policy-not-first-document", late),),
                               summary="kube-apiserver would refuse to start with this policy file.")
            )  # fmt: skip
            docs = [d for d in docs if not (isinstance(d, dict) and looks_like_policy(d))]
        present = [(i, d) for i, d in enumerate(docs, start=1) if d is not None]
        for i, doc in present:
            judge_into(report, doc, str(path) if len(present) == 1 else f"{path}:{i}", ctx)
    color = fmt == "text" and sys.stdout.isatty()
    click.echo(with_providers(render(report, fmt, color), fmt, judged_providers))
    sys.exit(report.exit_code)


def _repairer(ctx: Context) -> Callable[[Located], Repair | None]:
    """The repair of a policy located in a file (SARIF fixes), as ``auditwarden fix`` computes it."""
    from webhook.core.policy import PolicyError, decode_policy
    from webhook.core.repair import repair

    settings = ctx.settings()

    def repair_of(loc: Located) -> Repair | None:
        try:
            policy = decode_policy(loc.plain, ctx.kubernetes_version)
        except PolicyError:
            return None
        return repair(policy, settings.catalog, settings.profile, settings.version)

    return repair_of
