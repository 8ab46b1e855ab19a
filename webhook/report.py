"""Rendering check results: text for people, JSON (a stable contract) and SARIF 2.1.0.

Pure functions from results to strings; the CLI prints them.  The core's results are typed
dataclasses; this is the one place where they become JSON (camelCase).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from webhook import __version__
from webhook.core.analysis import DocumentResult
from webhook.core.coverage import CategoryResult
from webhook.core.findings import Finding

if TYPE_CHECKING:
    from webhook.core.repair import Repair
    from webhook.fixedit import Located

JSON_SCHEMA_VERSION = 1


class FindingJSON(TypedDict):
    code: str
    message: str


class MissJSON(TypedDict):
    probe: str
    rule: int | None
    reason: str


class CategoryJSON(TypedDict):
    covered: bool
    level: str | None
    missed: list[MissJSON]


class ResultJSON(TypedDict):
    source: str
    kind: str
    valid: bool
    categories: dict[str, CategoryJSON] | None
    coveredCount: int | None
    violations: list[FindingJSON]
    warnings: list[FindingJSON]
    summary: str


def finding_json(f: Finding) -> FindingJSON:
    return {"code": f.code, "message": f.message}


def category_json(c: CategoryResult) -> CategoryJSON:
    return {
        "covered": c.covered,
        "level": c.level,
        "missed": [{"probe": m.probe, "rule": m.rule, "reason": m.reason} for m in c.missed],
    }


def result_json(r: DocumentResult) -> ResultJSON:
    return {
        "source": r.source,
        "kind": r.kind,
        "valid": r.valid,
        "categories": None if r.categories is None else {c.id: category_json(c) for c in r.categories},
        "coveredCount": r.covered_count,
        "violations": [finding_json(f) for f in r.violations],
        "warnings": [finding_json(f) for f in r.warnings],
        "summary": r.summary,
    }


@dataclass
class Report:
    results: list[DocumentResult]
    profile: str
    kubernetes_version: str
    skipped: list[str] = field(default_factory=list)  # documents that are nothing we judge
    unreadable: list[str] = field(default_factory=list)
    # For SARIF: each file's text (path -> text), to point results at lines, and the repair of a
    # policy found in a file, to attach as SARIF fixes.
    texts: dict[str, str] = field(default_factory=dict)
    repair_of: Callable[[Located], Repair | None] | None = None

    @property
    def failed(self) -> list[DocumentResult]:
        return [r for r in self.results if r.violations]

    @property
    def exit_code(self) -> int:
        if self.unreadable:
            return 2
        return 1 if self.failed else 0

    def summary(self) -> dict[str, Any]:
        return {
            "schemaVersion": JSON_SCHEMA_VERSION,
            "profile": self.profile,
            "kubernetesVersion": self.kubernetes_version,
            "documents": len(self.results),
            "passed": len(self.results) - len(self.failed),
            "failed": len(self.failed),
            "violations": sum(len(r.violations) for r in self.results),
            "warnings": sum(len(r.warnings) for r in self.results),
            "skipped": list(self.skipped),
            "unreadable": list(self.unreadable),
            "exitCode": self.exit_code,
        }


def to_json(report: Report) -> str:
    # Compact: json's C encoder is used only without indent, and this is a machine contract.
    return json.dumps({"results": [result_json(r) for r in report.results], "summary": report.summary()})


def to_text(report: Report, color: bool) -> str:
    def style(text: str, fg: str) -> str:
        if not color:
            return text
        codes = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1"}
        return f"\x1b[{codes[fg]}m{text}\x1b[0m"

    lines: list[str] = []
    for r in report.results:
        head = style("FAIL", "red") if r.violations else style("PASS", "green")
        lines.append(f"{head} {r.source} ({r.kind})")
        if r.summary:
            lines.append(f"  {r.summary}")
        for c in r.categories or ():
            if c.covered:
                lines.append(f"    {style('✓', 'green')} {c.id:<15} {c.level}")
            else:
                first = c.missed[0]
                more = f" (+{len(c.missed) - 1} more)" if len(c.missed) > 1 else ""
                lines.append(f"    {style('✗', 'red')} {c.id:<15} {first.probe}: {first.reason}{more}")
        for f in r.violations:
            lines.append(f"  {style('violation', 'red')} [{f.code}] {f.message}")
        for f in r.warnings:
            lines.append(f"  {style('warning', 'yellow')} [{f.code}] {f.message}")
        lines.append("")
    for s in report.skipped:
        lines.append(style(f"skipped {s}: not an audit policy, kube-apiserver Pod, kubeadm "
                           "ClusterConfiguration or ConfigMap carrying one", "dim"))
    for u in report.unreadable:
        lines.append(style(f"unreadable {u}", "red"))
    totals = report.summary()
    lines.append(
        f"{totals['documents']} document(s) checked with profile {report.profile} "
        f"(Kubernetes {report.kubernetes_version}): {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['warnings']} warning(s)."
    )
    return "\n".join(lines)


def to_sarif(report: Report) -> str:
    from webhook.core.coverage import PROFILE_CODES
    from webhook.locations import FileLocator, Place, fingerprint

    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    locators: dict[str, FileLocator] = {}
    for r in report.results:
        uri = _source_path(r.source)
        locator = locators.get(uri)
        if locator is None and uri in report.texts:
            locator = locators[uri] = FileLocator(uri, report.texts[uri])
        fix_attached = False
        for level, findings in (("error", r.violations), ("warning", r.warnings)):
            for f in findings:
                rules.setdefault(f.code, {"id": f.code, "shortDescription": {"text": f.code.replace("-", " ")}})
                place = locator.place(r.source, f) if locator is not None else Place(1, r.source)
                result: dict[str, Any] = {
                    "ruleId": f.code,
                    "level": level,
                    "message": {"text": f"{r.source}: {f.message}"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": uri},
                                "region": {"startLine": place.line},
                            }
                        }
                    ],
                    "partialFingerprints": {"auditwarden/v1": fingerprint(f.code, uri, place.subject, f.message)},
                }
                if level == "error" and f.code in PROFILE_CODES and not fix_attached and locator is not None:
                    fixes = _fixes(report, locator, r)
                    if fixes:
                        result["fixes"] = fixes
                        fix_attached = True
                results.append(result)
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "auditwarden",
                        "version": __version__,
                        "informationUri": "https://github.com/auditwarden/auditwarden",
                        "rules": sorted(rules.values(), key=lambda x: str(x["id"])),
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2)


def _fixes(report: Report, locator: Any, r: DocumentResult) -> list[dict[str, Any]]:
    """The repair of the policy ``r`` judged, as one SARIF fix (``auditwarden fix``'s own edit)."""
    target = locator.policy_at(r.source)
    repair_of = report.repair_of
    if target is None or repair_of is None or not r.repair:
        return []

    def only_this(loc: Located) -> Repair | None:
        return repair_of(loc) if loc.source == target.source else None

    replacements = locator.fixes(only_this)
    if not replacements:
        return []
    return [
        {
            "description": {"text": "auditwarden fix: " + "; ".join(r.repair)},
            "artifactChanges": [{"artifactLocation": {"uri": locator.path}, "replacements": replacements}],
        }
    ]


def _source_path(source: str) -> str:
    """``dir/file.yaml:2#data[x]`` -> ``dir/file.yaml``."""
    path = source.split("#", 1)[0]
    head, sep, tail = path.rpartition(":")
    return head if sep and tail.isdigit() else path


def render(report: Report, fmt: str, color: bool) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "sarif":
        return to_sarif(report)
    return to_text(report, color)
