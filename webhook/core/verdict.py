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
3. Add what the caller found out itself (:class:`Facts`): a ``policySources`` lookup that
   failed, an analysis that missed its deadline.  These are findings like any other.
4. Apply the mode: ``enforce`` denies any violation; ``ratchet`` denies only when the new
   version is worse than the old (a CREATE has no old version and is judged as in
   enforce; an invalid policy or invalid flag value is always denied — the apiserver would
   not start — and so is a fact of the caller's); ``warn`` never denies.  Mirror Pods have
   no old version the kubelet would update, so ``ratchet`` judges their content as ``warn``.
5. A break-glass exemption turns a denial into an allowance, always reported.

Steps 4 and 5 happen here and nowhere else: the webhook applies no mode or exemption of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from webhook.core import apiserver
from webhook.core.analysis import DocumentResult, Settings, analyse_document
from webhook.core.builtin import NO_BUILTIN_API, BuiltinAPI
from webhook.core.categories import Catalog
from webhook.core.documents import discover, object_name
from webhook.core.findings import Code, Finding
from webhook.core.openshift import Manifests
from webhook.core.precheck import is_kubelet_cleanup, is_mirror_pod
from webhook.core.versions import NEWEST, KubeVersion

__all__ = [
    "Context",
    "DocumentResult",
    "Exemptions",
    "Facts",
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
_ALWAYS_BLOCKING: frozenset[Code] = frozenset(
    {"policy-invalid", "audit-flag-invalid", "apiserver-flags-invalid", "static-pod-invalid"}
)
# Change findings that are violations (in every mode but warn).
_BLOCKING_CHANGES: frozenset[Code] = frozenset({"audit-flag-dropped", "configuration-dropped",
                                                "configuration-deleted"})  # fmt: skip
_BELOW_PROFILE: frozenset[Code] = frozenset({"categories-below-minimum", "category-required"})


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


@dataclass(frozen=True)
class Facts:
    """What the caller found out itself, outside the objects, to be judged with them.

    ``violations`` block in every mode but ``warn`` — in ``ratchet`` too, since there is no
    old version of a fact to compare with (e.g. a ``policySources`` lookup that failed with
    ``denyOnPolicySourceError``, an analysis that missed its deadline); ``warnings`` never
    block.  With ``unanalysed`` the objects are not analysed at all: the analysis already
    failed, and the violations say why.
    """

    violations: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    unanalysed: bool = False


NO_FACTS = Facts()


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What :func:`judge` decided.

    ``allowed`` is the admission answer after the mode and exemptions were applied;
    ``violations`` are the reasons that block (or would block, in ``warn`` mode or when
    exempted); ``warnings`` never block.  ``decision`` is ``allow`` (no violation),
    ``deny``, ``warn`` (allowed although violations were found: warn mode, or ratchet
    without worsening), ``exempted`` (allowed by a break-glass exemption) or ``skip``
    (the object carries nothing auditwarden judges).

    Immutable: verdicts are cached and shared between request threads.
    """

    allowed: bool
    decision: Decision
    results: tuple[DocumentResult, ...] = ()
    violations: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    changes: tuple[Finding, ...] = ()  # what the change dropped or weakened (UPDATE/DELETE)
    summary: str = ""  # one sentence, e.g. the coverage sentence of the judged policy
    categories: tuple[str, ...] = ()  # ids of covered categories of the judged policy (may be empty)
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
    # An unlabelled ConfigMap carrying audit configuration is a violation, not a warning.
    require_kind_label: bool = False
    # Built-in resources and API groups, for the "rule can never match" warnings.
    builtin_api: BuiltinAPI = NO_BUILTIN_API
    # library-go's audit manifests, to render an OpenShift APIServer's policy (webhook/data/openshift/).
    openshift_manifests: Manifests | None = None

    def settings(self) -> Settings:
        return Settings(
            self.catalog, self.catalog.profiles[self.profile], self.kubernetes_version, self.policy_files,
            require_kind_label=self.require_kind_label, builtin_api=self.builtin_api,
            openshift_manifests=self.openshift_manifests,
        )  # fmt: skip


@dataclass(frozen=True)
class _Analysed:
    relevant: bool
    results: list[DocumentResult]
    violations: list[Finding]
    warnings: list[Finding]


_NOTHING = _Analysed(False, [], [], [])


def _analyse(obj: Mapping[str, Any] | None, source: str, s: Settings) -> _Analysed:
    if obj is None:
        return _NOTHING
    found = discover(obj, require_label=s.require_kind_label)
    results: list[DocumentResult] = []
    for doc in found.documents:
        bare = doc.key in ("policy", "pod", "clusterConfiguration", "config", "cluster", "apiserver")
        doc_source = source if bare and source else (f"{source}#{doc.key}" if source else doc.key)
        results += analyse_document(doc, doc_source, s)
    violations = list(found.violations) + [v for r in results for v in r.violations]
    # The label recommendation comes last: the webhook shows only the first few warnings.
    label = [w for w in found.warnings if w.code == "label-missing"]
    warnings = [w for w in found.warnings if w.code != "label-missing"]
    warnings += [w for r in results for w in r.warnings] + label
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


def _keys(findings: Sequence[Finding]) -> set[Code]:
    return {f.code for f in findings}


def _doc_keys(analysed: _Analysed) -> set[tuple[str, Code]]:
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
    if lost and _keys(after.violations) & _BELOW_PROFILE:
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
            too_low_now = apiserver.RETENTION_TOO_LOW[name] in too_low
            if now is not None and old_value is not None and now < old_value and too_low_now:
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
    facts: Facts = NO_FACTS,
) -> Verdict:
    """Decide the verdict for a ConfigMap, a Pod, or a bare document (Policy, ClusterConfiguration)."""
    subject = new if new is not None else old
    name = object_name(subject) if isinstance(subject, Mapping) else ""
    kind = subject.get("kind") if isinstance(subject, Mapping) else None
    if is_kubelet_cleanup(kind, operation):
        return _skip(name, "deleting a mirror Pod is the kubelet's own clean-up")
    if facts.unanalysed:
        return _decide(mode, mode, name, _NOTHING, [], [], worse=True, facts=facts, exempted_by=exempted_by,
                       operation=operation)  # fmt: skip
    s = context.settings()

    if operation == "DELETE":
        removed = _analyse(old, source, s)
        if not removed.results:
            return _skip(name)
        changes = compare(removed.results, [], deleted=True)
        gone = _Analysed(True, [], [], [])
        return _decide(mode, mode, name, gone, changes, removed.results, worse=True, facts=facts,
                       exempted_by=exempted_by, operation=operation)  # fmt: skip

    after = _analyse(new, source, s)
    before = _analyse(old, source, s) if operation == "UPDATE" and old is not None else None
    if not after.relevant and not (before and before.relevant) and not facts.violations:
        return _skip(name)
    changes = compare(before.results, after.results, deleted=False) if before else []
    worse = True if before is None else _worse(before, after, changes)  # CREATE: judged as in enforce
    content_mode = mode
    if kind == "Pod" and mode == "ratchet" and is_mirror_pod(subject):
        content_mode = "warn"  # mirror Pods have no old version to compare with (the kubelet recreates them)
    return _decide(mode, content_mode, name, after, changes, after.results, worse=worse, facts=facts,
                   exempted_by=exempted_by, operation=operation)  # fmt: skip


def _skip(name: str, why: str = "") -> Verdict:
    return Verdict(allowed=True, decision="skip", summary=why or "nothing auditwarden judges", object_name=name)


def _decide(
    mode: Mode,
    content_mode: Mode,
    name: str,
    after: _Analysed,
    changes: list[Finding],
    summary_from: list[DocumentResult],
    *,
    worse: bool,
    facts: Facts,
    exempted_by: str | None,
    operation: Operation,
) -> Verdict:
    """Steps 4 and 5: the mode (``content_mode`` for what the objects carry, ``mode`` for the
    caller's facts), then the exemption, with its warning."""
    content = after.violations + [c for c in changes if c.code in _BLOCKING_CHANGES]
    violations = content + list(facts.violations)
    warnings = after.warnings + [c for c in changes if c.code not in _BLOCKING_CHANGES] + list(facts.warnings)
    ratchet_lets_pass = content_mode == "ratchet" and not worse and not (_keys(content) & _ALWAYS_BLOCKING)
    facts_block = bool(facts.violations) and mode != "warn"
    content_blocks = bool(content) and not (content_mode == "warn" or ratchet_lets_pass)
    decision: Decision
    if facts_block or content_blocks:
        decision = "deny"
    elif violations:
        decision = "warn"
    else:
        decision = "allow"
    if decision == "deny" and exempted_by:
        decision = "exempted"
        warnings = [
            Finding("exempted", f"allowed only because {exempted_by} is exempt (break-glass); it violates the rules"),
            *warnings,
        ]
    policies = [r for r in summary_from if r.categories is not None]  # a policy, or one rendered (OpenShift)
    categories: tuple[str, ...] = ()
    if policies:
        summary = policies[0].summary
        categories = tuple(c.id for c in policies[0].categories or () if c.covered)
    elif summary_from:
        summary = summary_from[0].summary
    else:
        summary = ""
    if operation == "DELETE" and summary_from:
        summary = f"Deleting {name or 'this object'} removes audit configuration."
    return Verdict(
        allowed=decision != "deny", decision=decision, results=tuple(after.results), violations=tuple(violations),
        warnings=tuple(warnings), changes=tuple(changes), summary=summary, categories=categories,
        exempted_by=exempted_by if decision == "exempted" else None, object_name=name,
    )  # fmt: skip
