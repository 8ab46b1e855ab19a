"""``auditwarden fix``: the smallest repair of each audit policy in PATHS, proven before shown.

For every policy found (policy files, ConfigMap values, kops ``fileAssets``, Talos machine
configs) it computes :func:`webhook.core.repair.repair`, applies it to the text with the
layout kept (:mod:`webhook.fixedit`), reads the edited text back and checks that it holds
exactly the repaired policy.

Modes: none (report what would change), ``--diff`` (a unified diff), ``--write`` (edit the
files in place), ``--check`` (exit 1 when a repair is needed; nothing changes).
Exit codes: 0 nothing to do (or, with ``--write``, every repair written); 1 a repair is needed
(report, ``--diff``, ``--check``) or impossible (any mode); 2 usage error or unreadable input.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from webhook.cli.check import MAX_FILE_BYTES, _files
from webhook.cli.common import make_context

if TYPE_CHECKING:
    from webhook.core.repair import Repair
    from webhook.fixedit import Located


def _repair_json(source: str, rep: Repair | None, invalid: str | None) -> dict[str, Any]:
    from webhook.core.repair import rule_mapping

    if rep is None:
        return {"source": source, "needed": True, "possible": False, "valid": False,
                "blocked": [f"kube-apiserver would not load this policy: {invalid}. Fix it first."],
                "insertions": [], "stageChanges": [], "categories": [], "addedRules": 0,
                "changedRules": 0}  # fmt: skip
    return {
        "source": source,
        "valid": True,
        "needed": rep.needed,
        "possible": rep.possible,
        "categories": list(rep.categories),
        "insertions": [
            {
                "before": i.before,
                "index": i.index,
                "rule": rule_mapping(i.rule),
                "probes": list(i.probes),
                "categories": list(i.categories),
                "whyHere": i.why_here,
                "whyLevel": i.why_level,
                "failedLogin": i.failed_login,
                "explanation": i.explain(),
            }
            for i in rep.insertions
        ],
        "stageChanges": [
            {"rule": c.rule, "removed": list(c.removed), "why": c.why, "explanation": c.explain()}
            for c in rep.stage_changes
        ],
        "blocked": list(rep.blocked),
        "addedRules": len(rep.insertions),
        "changedRules": len(rep.stage_changes),
    }


@click.command()
@click.option(
    "--profile", type=click.Choice(["baseline", "strict", "stig"]), default="baseline", show_default=True,
    help="The profile the repaired policy must pass.",
)  # fmt: skip
@click.option("--categories", type=click.Path(dir_okay=False), help="Your own category catalog file.")
@click.option("--kubernetes-version", metavar="X.Y", help="Target kube-apiserver release (default: newest known).")
@click.option("--write", "mode", flag_value="write", help="Edit the files in place.")
@click.option("--diff", "mode", flag_value="diff", help="Print a unified diff of the repairs.")
@click.option("--check", "mode", flag_value="check", help="Exit 1 when a repair is needed; change nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("paths", nargs=-1, required=True)
def fix(
    profile: str, categories: str | None, kubernetes_version: str | None, mode: str | None, fmt: str,
    paths: tuple[str, ...],
) -> None:  # fmt: skip
    """Repair the audit policies in PATHS so that they pass the profile, losing nothing."""
    from webhook.core.policy import PolicyError, decode_policy
    from webhook.core.repair import repair
    from webhook.fixedit import EditError, edit_text, locate

    ctx = make_context(profile, categories, kubernetes_version)
    prof = ctx.catalog.profiles[profile]
    files, unreadable = _files(paths)
    out_files: list[dict[str, Any]] = []
    needed = impossible = written = 0
    diffs: list[str] = []
    for path in files:
        try:
            raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            unreadable.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")
            continue
        try:
            found = locate(text, str(path))
        except EditError as exc:
            if path.suffix in (".yaml", ".yml") and "audit.k8s.io" in text:
                unreadable.append(f"{path}: {exc}")
            continue
        if not found:
            continue
        repairs: dict[str, Repair] = {}
        entries = []
        for loc in found:
            try:
                policy = decode_policy(loc.plain, ctx.kubernetes_version)
            except PolicyError as err:
                entries.append(_repair_json(loc.source, None, "; ".join(err.errors[:3])))
                impossible += 1
                continue
            rep = repair(policy, ctx.catalog, prof, ctx.kubernetes_version)
            repairs[loc.source] = rep
            entries.append(_repair_json(loc.source, rep, None))
            if rep.needed:
                needed += 1
                impossible += not rep.possible

        new_text = text
        problem = None
        if any(r.needed and r.possible for r in repairs.values()):
            try:
                new_text = edit_text(text, str(path), _chooser(repairs))
                problem = _verify(new_text, str(path), repairs, ctx.kubernetes_version)
            except EditError as exc:
                problem = str(exc)
            if problem is not None:
                unreadable.append(f"{path}: the edit could not be made safely: {problem}")
                new_text = text
        diff = "".join(
            difflib.unified_diff(text.splitlines(keepends=True), new_text.splitlines(keepends=True),
                                 f"a/{path}", f"b/{path}")
        )  # fmt: skip
        if diff:
            diffs.append(diff)
        if mode == "write" and new_text != text:
            path.write_text(new_text, "utf-8")
            written += 1
        out_files.append({"path": str(path), "policies": entries, "changed": new_text != text, "diff": diff})

    if mode == "write":
        code = 1 if impossible else 0
    else:
        code = 1 if needed or impossible else 0
    if unreadable:
        code = 2
    summary = {"schemaVersion": 1, "profile": profile, "files": len(out_files), "needRepair": needed,
               "unrepairable": impossible, "written": written, "unreadable": unreadable, "exitCode": code}  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps({"files": out_files, "summary": summary}, indent=2))
    elif mode == "diff":
        click.echo("".join(diffs), nl=False)
        for u in unreadable:
            click.echo(f"auditwarden fix: {u}", err=True)
    else:
        click.echo(_text(out_files, summary, mode))
    sys.exit(code)


def _chooser(repairs: dict[str, Repair]) -> Callable[[Located], Repair | None]:
    return lambda loc: repairs.get(loc.source)


def _verify(new_text: str, source: str, repairs: dict[str, Repair], version: Any) -> str | None:
    """Read the edited text back as ``check`` does: every repaired policy must be exactly there."""
    from webhook.core.policy import PolicyError, decode_policy
    from webhook.fixedit import locate, same_policy

    again = {loc.source: loc for loc in locate(new_text, source)}
    for name, rep in repairs.items():
        if not rep.needed or rep.policy is None:
            continue
        loc = again.get(name)
        if loc is None:
            return f"{name} is no longer found after the edit"
        try:
            got = decode_policy(loc.plain, version)
        except PolicyError as err:
            return f"{name} does not load after the edit: {err}"
        if not same_policy(got, rep.policy):
            return f"{name} does not hold the repaired policy after the edit"
    return None


def _text(files: list[dict[str, Any]], summary: dict[str, Any], mode: str | None) -> str:
    lines: list[str] = []
    for f in files:
        for p in f["policies"]:
            if not p["needed"]:
                if mode != "check":
                    lines.append(f"{p['source']}: passes the {summary['profile']} profile; nothing to repair")
                continue
            if not p["possible"]:
                lines.append(f"{p['source']}: no repair:")
                lines += [f"  - {b}" for b in p["blocked"]]
                continue
            verb = "repaired" if mode == "write" else "needs a repair"
            lines.append(
                f"{p['source']}: {verb} ({p['addedRules']} rule(s) inserted, {p['changedRules']} omitStages "
                f"change(s); newly covered: {', '.join(p['categories']) or '-'})"
            )
            if mode != "check":
                lines += [f"  - {c['explanation']}" for c in p["stageChanges"]]
                lines += [f"  - insert {i['explanation']}" for i in p["insertions"]]
    for u in summary["unreadable"]:
        lines.append(f"error: {u}")
    if mode == "write":
        lines.append(f"{summary['written']} file(s) written.")
    elif summary["needRepair"] and mode != "check":
        lines.append("Run with --diff to see the edit, --write to apply it.")
    return "\n".join(lines) if lines else "no audit policy found"
