"""The one function that decides a verdict: :func:`judge`.

The CLI (``auditwarden check``), the admission webhook and the tests all call it.  It takes
the new and old versions of an object (already parsed from JSON/YAML into plain Python
objects), the admission operation and the mode, and returns a :class:`Verdict`.

How a verdict is reached (README "How a verdict is reached"):

1. Discover every judged document in the object (:mod:`webhook.core.documents`) and
   analyse each (:mod:`webhook.core.analysis`): policy validity and category coverage,
   apiserver flags, mounts, retention.  Their violations are the object's violations.
2. For UPDATE and DELETE compare with the old version (:func:`compare`): a dropped audit
   flag, a removed policy or apiserver configuration, a deleted ConfigMap that carried one
   are violations too; a lost category or a lowered retention value is reported.
3. Apply the mode: ``enforce`` denies any violation; ``ratchet`` denies only when the new
   version is worse than the old (a CREATE has no old version and is judged as in
   enforce; an invalid policy or invalid flag value is always denied — the apiserver would
   not start); ``warn`` never denies.  Mirror Pods have no old version the kubelet would
   update, so ``ratchet`` judges them as ``warn``.
4. A break-glass exemption turns a denial into an allowance, always reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from webhook.core import apiserver
from webhook.core.analysis import DocumentResult, Settings, analyse_document
from webhook.core.categories import Catalog
from webhook.core.documents import discover, object_name
from webhook.core.findings import Finding
from webhook.core.precheck import is_mirror_pod
from webhook.core.versions import NEWEST, KubeVersion

__all__ = [
    "Context",
    "DocumentResult",
    "Exemptions",
    "Mode",
    "Operation",
    "Profile",
    "Verdict",
    "compare",
    "judge",
]

Mode = Literal["enforce", "ratchet", "warn"]
Operation = Literal["CREATE", "UPDATE", "DELETE"]
Profile = Literal["baseline", "strict", "stig"]
Decision = Literal["allow", "deny", "warn", "exempted", "skip"]

# Violations no mode but warn lets through: kube-apiserver would not start.
_ALWAYS_BLOCKING = frozenset({"policy-invalid", "audit-flag-invalid", "apiserver-flags-invalid"})
# Change findings that are violations (in every mode but warn).
_BLOCKING_CHANGES = frozenset({"audit-flag-dropped", "configuration-dropped", "configuration-deleted"})


@dataclass(frozen=True)
class Exemptions:
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def match(self, username: str | None, groups: Sequence[str]) -> str | None:
        """Return ``"user:<name>"`` or ``"group:<name>"`` when the requester is exempt."""
        if username is not None and username in self.users:
            return f"user:{username}"
        for g in groups:
            if g in self.groups:
                return f"group:{g}"
        return None


@dataclass
class Verdict:
    """What :func:`judge` decided.

    ``allowed`` is the admission answer after the mode and exemptions were applied;
    ``violations`` are the reasons that block (or would block, in ``warn`` mode or when
    exempted); ``warnings`` never block.  ``decision`` is ``allow`` (no violation),
    ``deny``, ``warn`` (allowed although violations were found: warn mode, or ratchet
    without worsening), ``exempted`` (allowed by a break-glass exemption) or ``skip``
    (the object carries nothing auditwarden judges).
    """

    allowed: bool
    decision: Decision
    results: list[DocumentResult]
    violations: list[Finding]
    warnings: list[Finding]
    changes: list[Finding]  # what the change dropped or weakened (UPDATE/DELETE)
    summary: str  # one sentence, e.g. the coverage sentence of the judged policy
    categories: list[str]  # ids of covered categories of the judged policy (may be empty)
    exempted_by: str | None = None
    object_name: str = ""


@dataclass(frozen=True)
class Context:
    """Everything judge() needs besides the objects.  Built once at start-up.

    Adapters build it with :func:`webhook.context.build_context`, which reads the packaged
    (or the user's) category catalog; the core itself reads no files.
    """

    catalog: Catalog
    profile: Profile = "baseline"
    kubernetes_version: KubeVersion = NEWEST
    # Contents of policy files referenced by --audit-policy-file, by path
    # (CLI --policy-file-map, webhook policySources lookups).
    policy_files: Mapping[str, str] = field(default_factory=dict)

    def settings(self) -> Settings:
        return Settings(
            self.catalog, self.catalog.profiles[self.profile], self.kubernetes_version, self.policy_files
        )


@dataclass
class _Analysed:
    relevant: bool
    results: list[DocumentResult]
    violations: list[Finding]
    warnings: list[Finding]


def _analyse(obj: Mapping[str, Any] | None, source: str, s: Settings) -> _Analysed:
    if obj is None:
        return _Analysed(False, [], [], [])
    found = discover(obj)
    results: list[DocumentResult] = []
    for doc in found.documents:
        bare = doc.key in ("policy", "pod", "clusterConfiguration", "config", "cluster", "apiserver")
        doc_source = source if bare and source else (f"{source}#{doc.key}" if source else doc.key)
        results += analyse_document(doc, doc_source, s)
    violations = list(found.violations) + [v for r in results for v in r.violations]
    warnings = list(found.warnings) + [w for r in results for w in r.warnings]
    return _Analysed(found.relevant or bool(results), results, violations, warnings)


def compare(old: Sequence[DocumentResult], new: Sequence[DocumentResult], *, deleted: bool) -> list[Finding]:
    """What the change from ``old`` to ``new`` dropped or weakened."""
    out: list[Finding] = []
    new_by_key = {r.key: r for r in new}
    for o in old:
        n = new_by_key.get(o.key)
        if n is None:
            what = "an audit policy" if o.kind == "audit-policy" else "kube-apiserver audit configuration"
            if deleted:
                out.append(
                    Finding(
                        "configuration-deleted",
                        f"deleting it removes {what} ({o.source}). Fix: keep the object; change it instead.",
                    )
                )
            else:
                out.append(
                    Finding(
                        "configuration-dropped",
                        f"{o.source} carried {what} and no longer does. Fix: restore it.",
                    )
                )
            continue
        lost = sorted(o.covered - n.covered)
        if lost:
            out.append(
                Finding(
                    "category-lost",
                    f"{n.source}: the change stops covering {', '.join(lost)} (was covered before).",
                )
            )
        if o.flags is not None and n.flags is not None:
            out += _flag_changes(n.source, o.flags, n.flags)
    return out


_DROPPABLE = (
    "audit-policy-file",
    "audit-log-path",
    "audit-webhook-config-file",
    "audit-log-maxage",
    "audit-log-maxbackup",
    "audit-log-maxsize",
)


def _flag_changes(source: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[Finding]:
    out: list[Finding] = []
    for name in _DROPPABLE:
        if old.get(name) and not new.get(name):
            out.append(
                Finding(
                    "audit-flag-dropped",
                    f"{source}: the change drops --{name} (was {old[name]!r}). Fix: keep --{name}={old[name]}.",
                )
            )
    before, after = apiserver.retention_values(old), apiserver.retention_values(new)
    for name, was in before.items():
        now = after[name]
        if was is not None and now is not None and now < was:
            out.append(
                Finding("retention-lowered", f"{source}: --{name} lowered from {was} to {now}.")
            )
    return out


def _keys(findings: Sequence[Finding]) -> set[str]:
    return {f.code for f in findings}


def _doc_keys(analysed: _Analysed) -> set[tuple[str, str]]:
    keys = {("", f.code) for f in analysed.violations}
    keys |= {(r.key, f.code) for r in analysed.results for f in r.violations}
    return keys


def _worse(before: _Analysed, after: _Analysed, changes: Sequence[Finding]) -> bool:
    """Ratchet: does the new version make the object worse than the old one?

    Worse means a blocking change (a dropped flag or configuration), a violation the old
    version did not have (per document and code), a category lost while the document is
    below the profile, or a retention value lowered while it is below the threshold.
    Repairing something kube-apiserver would refuse (an invalid policy or flag) into
    something merely weak is an improvement, not a worsening.
    """
    if any(c.code in _BLOCKING_CHANGES for c in changes):
        return True
    if _keys(before.violations) & _ALWAYS_BLOCKING and not _keys(after.violations) & _ALWAYS_BLOCKING:
        return False
    if _doc_keys(after) - _doc_keys(before):
        return True
    lost = any(c.code == "category-lost" for c in changes)
    if lost and _keys(after.violations) & {"categories-below-minimum", "category-required"}:
        return True
    # A retention value lowered while the document reports it below the threshold (compared
    # on the flags themselves, not on the text of the retention-lowered finding).
    old_flags = {r.key: r.flags for r in before.results if r.flags is not None}
    for r in after.results:
        was = old_flags.get(r.key)
        if was is None or r.flags is None:
            continue
        too_low = {f.code for f in r.violations}
        before_values = apiserver.retention_values(was)
        for name, now in apiserver.retention_values(r.flags).items():
            old_value = before_values[name]
            if now is not None and old_value is not None and now < old_value and f"{name}-too-low" in too_low:
                return True
    return False


def judge(
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    *,
    operation: Operation,
    mode: Mode,
    context: Context,
    exempted_by: str | None = None,
    source: str = "",
) -> Verdict:
    """Decide the verdict for a ConfigMap, a Pod, or a bare document (Policy, ClusterConfiguration)."""
    s = context.settings()
    subject = new if new is not None else old
    name = object_name(subject) if isinstance(subject, Mapping) else ""
    kind = subject.get("kind") if isinstance(subject, Mapping) else None

    if operation == "DELETE":
        if kind == "Pod":
            return _skip(name, "deleting a mirror Pod is the kubelet's own clean-up")
        removed = _analyse(old, source, s)
        if not removed.results:
            return _skip(name)
        changes = compare(removed.results, [], deleted=True)
        return _decide(mode, name, [], removed.results, changes, changes, [], worse=True,
                       exempted_by=exempted_by, operation=operation)  # fmt: skip

    after = _analyse(new, source, s)
    before = _analyse(old, source, s) if operation == "UPDATE" and old is not None else None
    if not after.relevant and not (before and before.relevant):
        return _skip(name)
    changes = compare(before.results, after.results, deleted=False) if before else []
    blocking_changes = [c for c in changes if c.code in _BLOCKING_CHANGES]
    violations = after.violations + blocking_changes
    worse = True if before is None else _worse(before, after, changes)  # CREATE: judged as in enforce
    if kind == "Pod" and mode == "ratchet" and is_mirror_pod(subject):
        mode = "warn"  # mirror Pods have no old version to compare with (the kubelet recreates them)
    return _decide(mode, name, after.results, after.results, changes, violations, after.warnings,
                   worse=worse, exempted_by=exempted_by, operation=operation)  # fmt: skip


def _skip(name: str, why: str = "") -> Verdict:
    return Verdict(True, "skip", [], [], [], [], why or "nothing auditwarden judges", [], None, name)


def _decide(
    mode: Mode,
    name: str,
    results: list[DocumentResult],
    summary_from: list[DocumentResult],
    changes: list[Finding],
    violations: list[Finding],
    warnings: list[Finding],
    *,
    worse: bool,
    exempted_by: str | None,
    operation: Operation,
) -> Verdict:
    non_blocking_changes = [c for c in changes if c.code not in _BLOCKING_CHANGES]
    warnings = warnings + non_blocking_changes
    if not violations:
        decision: Decision = "allow"
    elif mode == "warn" or (mode == "ratchet" and not worse and not (_keys(violations) & _ALWAYS_BLOCKING)):
        decision = "warn"
    else:
        decision = "deny"
    allowed = decision != "deny"
    if decision == "deny" and exempted_by:
        decision, allowed = "exempted", True
        warnings = [
            Finding("exempted", f"allowed only because {exempted_by} is exempt (break-glass); it violates the rules"),
            *warnings,
        ]
    policies = [r for r in summary_from if r.kind == "audit-policy"]
    if policies:
        summary = policies[0].summary
        categories = sorted(policies[0].covered, key=_category_order(policies[0]))
    elif summary_from:
        summary, categories = summary_from[0].summary, []
    else:
        summary, categories = "", []
    if operation == "DELETE" and summary_from:
        summary = f"Deleting {name or 'this object'} removes audit configuration."
    return Verdict(allowed, decision, results, violations, warnings, changes, summary, categories,
                   exempted_by if decision == "exempted" else None, name)  # fmt: skip


def _category_order(result: DocumentResult) -> Any:
    order = list((result.categories or {}).keys())
    return lambda cid: order.index(cid) if cid in order else len(order)
