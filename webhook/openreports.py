"""Scan results as policy reports: OpenReports ``openreports.io/v1alpha1`` ``Report`` and
``ClusterReport`` (the default; what Kyverno writes and Policy Reporter reads) or their
predecessor, wg-policy's ``wgpolicyk8s.io/v1alpha2`` ``PolicyReport`` and ``ClusterPolicyReport``
(for clusters whose Kyverno or Policy Reporter still reads only those).  The two APIs have the same
``results[]`` item (``policy``, ``rule``, ``result``, ``severity``, ``source``, ``scored``,
``message``, ``properties``, ``timestamp``, ``category``: the pinned CRDs in
``charts/auditwarden/files/``); OpenReports adds a top-level ``source``.

* **One report per judged object**, its ``scope`` the object itself: a ``Report`` in the object's
  namespace, or a ``ClusterReport`` for a cluster-scoped object (OpenShift's ``APIServer``).
* **One cluster-wide report**, ``auditwarden-cluster`` (a ``ClusterReport`` with no scope): the
  findings that belong to no object (a managed provider's policy with ``--provider``) and one
  ``error`` result per object the scan could not read, so a report never shows a pass over
  something unread; a single ``pass`` (``policy: scan``) when there is nothing else to say.

The results of one judged object:

* a **violation** → ``result: fail``, ``severity: high``; a **warning** → ``result: warn``,
  ``severity: low``; ``policy`` is the finding code, ``rule`` the flag or category it is about;
* a finding about categories (``categories-below-minimum``, ``category-lost``) is one result per
  category not covered, with the first probe it missed and the rule that hid it in ``properties``;
* a **covered category** → ``result: pass``, ``policy: category-covered``, ``rule`` the category;
* an object with nothing else to say → one ``pass``, ``policy: audit-configuration``.

Pure: dicts in, dicts out; writing them to a cluster is the CLI's business (:mod:`webhook.cli.scan`).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from webhook.core.analysis import DocumentResult
from webhook.core.findings import Finding

SOURCE = "auditwarden"
CATEGORY = "Audit logging"
MANAGED_BY = {"app.kubernetes.io/managed-by": "auditwarden"}
CLUSTER_REPORT = "auditwarden-cluster"
CATEGORY_CODES = frozenset({"categories-below-minimum", "category-lost"})
MAX_MESSAGE = 1000
_FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*")

ReportFormat = Literal["openreports", "wgpolicyk8s"]


@dataclass(frozen=True, kw_only=True)
class ReportAPI:
    """Where one report format lives in the API: its group/version, kinds and resources."""

    group: str
    version: str
    kind: str
    cluster_kind: str
    plural: str
    cluster_plural: str
    #: OpenReports has a report-level ``source``; wgpolicyk8s v1alpha2 prunes it (not in its schema)
    report_source: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


APIS: dict[ReportFormat, ReportAPI] = {
    "openreports": ReportAPI(group="openreports.io", version="v1alpha1", kind="Report", cluster_kind="ClusterReport",
                             plural="reports", cluster_plural="clusterreports", report_source=True),
    "wgpolicyk8s": ReportAPI(group="wgpolicyk8s.io", version="v1alpha2", kind="PolicyReport",
                             cluster_kind="ClusterPolicyReport", plural="policyreports",
                             cluster_plural="clusterpolicyreports", report_source=False),
}  # fmt: skip
#: kept for readers of the default format
API_VERSION = APIS["openreports"].api_version


def report_name(kind: str, name: str) -> str:
    """``auditwarden-<kind>-<name>``, kept within a DNS subdomain's 253 characters (a hash when longer)."""
    full = f"auditwarden-{kind.lower()}-{name}"
    if len(full) <= 253:
        return full
    return f"{full[:236]}-{hashlib.sha256(full.encode()).hexdigest()[:16]}"


def build_report(
    obj: Mapping[str, Any], results: Sequence[DocumentResult], *, fmt: ReportFormat = "openreports", now: float = 0.0
) -> dict[str, Any]:
    """The report of one judged object: namespaced when the object is, cluster-scoped otherwise."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind") or "")
    namespace = meta.get("namespace") or None
    scope = {"apiVersion": str(obj.get("apiVersion") or "v1"), "kind": kind, "name": meta.get("name")}
    if namespace:
        scope["namespace"] = namespace
    if meta.get("uid"):
        scope["uid"] = meta["uid"]
    entries = list(_results(results, now))
    return _report(APIS[fmt], report_name(kind, str(meta.get("name"))), namespace, scope, entries)


def build_cluster_report(
    results: Sequence[DocumentResult], unreadable: Sequence[str], *, fmt: ReportFormat = "openreports",
    now: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """``auditwarden-cluster``: what belongs to no object (``results``) and what could not be read."""
    entries = list(_results(results, now, empty=False))
    for line in unreadable:
        entries.append({"policy": "scan", "rule": "readable", "result": "error", "severity": "high", "source": SOURCE,
                        "category": CATEGORY, "scored": True, "message": line[:MAX_MESSAGE],
                        "timestamp": _timestamp(now)})  # fmt: skip
    if not entries:
        entries.append({"policy": "scan", "rule": "readable", "result": "pass", "severity": "info", "source": SOURCE,
                        "category": CATEGORY, "scored": True, "message": "every object in scope was read and judged",
                        "timestamp": _timestamp(now)})  # fmt: skip
    return _report(APIS[fmt], CLUSTER_REPORT, None, None, entries)


def _report(
    api: ReportAPI, name: str, namespace: str | None, scope: dict[str, Any] | None, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    counts = Counter(e["result"] for e in entries)
    metadata: dict[str, Any] = {"name": name, "labels": dict(MANAGED_BY)}
    if namespace:
        metadata["namespace"] = namespace
    report: dict[str, Any] = {
        "apiVersion": api.api_version,
        "kind": api.kind if namespace else api.cluster_kind,
        "metadata": metadata,
    }
    if api.report_source:
        report["source"] = SOURCE
    if scope is not None:
        report["scope"] = scope
    report["summary"] = {k: counts.get(k, 0) for k in ("pass", "fail", "warn", "error", "skip")}
    report["results"] = entries
    return report


def _timestamp(now: float) -> dict[str, int]:
    """A result's time as the CRDs have it (``metav1.Timestamp``, both fields required), to the second."""
    return {"seconds": int(now), "nanos": 0}


def _results(results: Iterable[DocumentResult], now: float, *, empty: bool = True) -> Iterable[dict[str, Any]]:
    any_entry = False
    stamp = _timestamp(now)
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
                    yield _entry(finding, outcome, severity, c.id, props, stamp)
            else:
                yield _entry(finding, outcome, severity, _rule(finding), {"document": r.source}, stamp)
        for c in r.categories or ():
            if c.covered:
                any_entry = True
                yield {"policy": "category-covered", "rule": c.id, "result": "pass", "severity": "info",
                       "source": SOURCE, "category": CATEGORY, "scored": True,
                       "message": f"{c.id} is logged at {c.level} or higher",
                       "properties": {"document": r.source, "level": str(c.level)}, "timestamp": stamp}  # fmt: skip
    if empty and not any_entry:
        yield {"policy": "audit-configuration", "rule": "audit-configuration", "result": "pass", "severity": "info",
               "source": SOURCE, "category": CATEGORY, "scored": True, "message": "no finding",
               "timestamp": stamp}  # fmt: skip


def _entry(
    finding: Finding, outcome: str, severity: str, rule: str, props: dict[str, str], stamp: dict[str, int]
) -> dict[str, Any]:
    return {"policy": finding.code, "rule": rule, "result": outcome, "severity": severity, "source": SOURCE,
            "category": CATEGORY, "scored": True, "message": finding.message[:MAX_MESSAGE], "properties": props,
            "timestamp": stamp}  # fmt: skip


def _rule(finding: Finding) -> str:
    """The flag a finding is about (its first ``--flag``), else its rule index, else its code."""
    m = _FLAG.search(finding.message)
    if m:
        return m.group(0)
    if finding.rule is not None:
        return f"rule {finding.rule}"
    return finding.code
