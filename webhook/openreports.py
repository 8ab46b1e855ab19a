"""Scan results as OpenReports ``Report`` objects (``openreports.io/v1alpha1``), the format Kyverno and
Policy Reporter read (the successor of wg-policy's ``wgpolicyk8s.io/v1alpha2`` PolicyReport).

One Report per judged object, in that object's namespace, its ``scope`` the object itself, with
``source: auditwarden`` and these results (the CRD's ``results[]``; pinned definitions in
``charts/auditwarden/files/openreports/``):

* a **violation** → ``result: fail``, ``severity: high``; a **warning** → ``result: warn``,
  ``severity: low``; ``policy`` is the finding code, ``rule`` the flag or category it is about;
* a finding about categories (``categories-below-minimum``, ``category-lost``) is one result per
  category not covered, with the first probe it missed and the rule that hid it in ``properties``;
* a **covered category** → ``result: pass``, ``policy: category-covered``, ``rule`` the category;
* an object with nothing else to say → one ``pass``, ``policy: audit-configuration``.

Pure: dicts in, dicts out; writing them to a cluster is the CLI's business.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from webhook.core.analysis import DocumentResult
from webhook.core.findings import Finding

API_VERSION = "openreports.io/v1alpha1"
SOURCE = "auditwarden"
MANAGED_BY = {"app.kubernetes.io/managed-by": "auditwarden"}
CATEGORY_CODES = frozenset({"categories-below-minimum", "category-lost"})
MAX_MESSAGE = 1000
_FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*")


def report_name(kind: str, name: str) -> str:
    """``auditwarden-<kind>-<name>``, kept within a DNS subdomain's 253 characters (a hash when longer)."""
    full = f"auditwarden-{kind.lower()}-{name}"
    if len(full) <= 253:
        return full
    return f"{full[:236]}-{hashlib.sha256(full.encode()).hexdigest()[:16]}"


def build_report(obj: Mapping[str, Any], results: Sequence[DocumentResult]) -> dict[str, Any]:
    """The Report of one judged object."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "")
    entries = list(_results(results))
    counts = Counter(e["result"] for e in entries)
    scope = {"apiVersion": str(obj.get("apiVersion") or "v1"), "kind": kind, "name": meta.get("name"),
             "namespace": meta.get("namespace")}  # fmt: skip
    if meta.get("uid"):
        scope["uid"] = meta["uid"]
    return {
        "apiVersion": API_VERSION,
        "kind": "Report",
        "metadata": {
            "name": report_name(kind, str(meta.get("name"))),
            "namespace": meta.get("namespace"),
            "labels": dict(MANAGED_BY),
        },
        "source": SOURCE,
        "scope": scope,
        "summary": {k: counts.get(k, 0) for k in ("pass", "fail", "warn", "error", "skip")},
        "results": entries,
    }


def _results(results: Iterable[DocumentResult]) -> Iterable[dict[str, Any]]:
    any_entry = False
    for r in results:
        uncovered = [c for c in r.categories or () if not c.covered]
        for finding, outcome, severity in [
            *((f, "fail", "high") for f in r.violations),
            *((f, "warn", "low") for f in r.warnings),
        ]:  # fmt: skip
            any_entry = True
            if finding.code in CATEGORY_CODES and uncovered:
                for c in uncovered:
                    props = {"document": r.source}
                    if c.missed:
                        props |= {"probe": c.missed[0].probe, "hidingRule": c.missed[0].reason}
                    yield _entry(finding, outcome, severity, c.id, props)
            else:
                yield _entry(finding, outcome, severity, _rule(finding), {"document": r.source})
        for c in r.categories or ():
            if c.covered:
                any_entry = True
                yield {"policy": "category-covered", "rule": c.id, "result": "pass", "severity": "info",
                       "source": SOURCE, "scored": True, "message": f"{c.id} is logged at {c.level} or higher",
                       "properties": {"document": r.source, "level": str(c.level)}}  # fmt: skip
    if not any_entry:
        yield {"policy": "audit-configuration", "rule": "audit-configuration", "result": "pass", "severity": "info",
               "source": SOURCE, "scored": True, "message": "no finding"}  # fmt: skip


def _entry(finding: Finding, outcome: str, severity: str, rule: str, props: dict[str, str]) -> dict[str, Any]:
    return {"policy": finding.code, "rule": rule, "result": outcome, "severity": severity, "source": SOURCE,
            "scored": True, "message": finding.message[:MAX_MESSAGE], "properties": props}  # fmt: skip


def _rule(finding: Finding) -> str:
    """The flag a finding is about (its first ``--flag``), else its rule index, else its code."""
    m = _FLAG.search(finding.message)
    if m:
        return m.group(0)
    if finding.rule is not None:
        return f"rule {finding.rule}"
    return finding.code
