"""The one function that decides a verdict: :func:`judge`.

The CLI (``auditwarden check``), the admission webhook and the tests all call it.  It takes
the new and old versions of an object (already parsed from JSON/YAML into plain Python
objects), the admission operation and the mode, and returns a :class:`Verdict`.

INTERFACE STUB — implementation in progress; the signature and the dataclasses are stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from webhook.core.categories import Catalog
from webhook.core.findings import Finding

Mode = Literal["enforce", "ratchet", "warn"]
Operation = Literal["CREATE", "UPDATE", "DELETE"]
Profile = Literal["baseline", "strict", "stig"]


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
class DocumentResult:
    """The analysis of one recognised document (a policy, a pod, a kubeadm config ...)."""

    source: str
    kind: str  # "audit-policy" | "apiserver-pod" | "kubeadm-config" | "configmap" | "unknown"
    valid: bool
    categories: dict[str, Any] | None = None  # see README "JSON format"
    covered_count: int | None = None
    violations: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    summary: str = ""


@dataclass
class Verdict:
    """What :func:`judge` decided.

    ``allowed`` is the admission answer after the mode and exemptions were applied;
    ``violations`` are the reasons that block (or would block, in ``warn`` mode or when
    exempted); ``warnings`` never block.  ``decision`` is one of ``allow`` (nothing found),
    ``deny``, ``warn`` (allowed although violations were found: warn mode, ratchet without
    worsening), ``exempted`` (allowed because of a break-glass exemption) or ``skip`` (the
    object carries nothing auditwarden judges).
    """

    allowed: bool
    decision: Literal["allow", "deny", "warn", "exempted", "skip"]
    results: list[DocumentResult]
    violations: list[Finding]
    warnings: list[Finding]
    changes: list[Finding]  # what the change dropped or weakened (UPDATE/DELETE)
    summary: str  # one sentence, e.g. the coverage sentence of the judged policy
    categories: list[str]  # ids of covered categories of the judged policy (may be empty)
    exempted_by: str | None = None


@dataclass(frozen=True)
class Context:
    """Everything judge() needs besides the objects.  Built once at start-up.

    Adapters build it with :func:`webhook.context.build_context`, which reads the packaged
    (or the user's) category catalog; the core itself reads no files.
    """

    catalog: Catalog
    profile: Profile = "baseline"
    kubernetes_version: tuple[int, int] = (1, 37)
    # Contents of policy files referenced by --audit-policy-file, by path
    # (CLI --policy-file-map, webhook policySources lookups).
    policy_files: Mapping[str, str] = field(default_factory=dict)


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
    raise NotImplementedError
