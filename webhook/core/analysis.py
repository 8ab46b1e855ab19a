"""Analysis of one recognised document: validity, coverage, flags — and the facts that
change analysis compares between an old and a new version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from webhook.core import apiserver
from webhook.core.builtin import NO_BUILTIN_API, BuiltinAPI
from webhook.core.categories import Catalog, Profile
from webhook.core.coverage import FIX_HINT, PROFILE_CODES, CategoryResult, Coverage, assess
from webhook.core.documents import Document, DocumentKind
from webhook.core.findings import Finding
from webhook.core.policy import Policy, PolicyError, decode_policy, load_policy
from webhook.core.repair import fix_sentence, repair
from webhook.core.versions import KubeVersion

#: What a result describes: a recognised document, or (``auditwarden check`` only) a
#: ConfigMap whose content could not be analysed, or a file that could not be parsed.
ResultKind = DocumentKind | Literal["configmap", "unparseable"]


@dataclass(frozen=True, kw_only=True)
class DocumentResult:
    """The analysis of one recognised document (a policy, a pod, a kubeadm config …).

    Immutable: verdicts that hold results are cached and shared between request threads.
    """

    source: str
    kind: ResultKind
    valid: bool
    categories: tuple[CategoryResult, ...] | None = None  # in catalog order; None when not assessed
    covered_count: int | None = None
    violations: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    summary: str = ""
    # Facts for change analysis (not part of the JSON contract).
    key: str = ""
    covered: frozenset[str] = frozenset()
    flags: Mapping[str, str] | None = None
    repair: tuple[str, ...] = ()  # the full repair, one line per change (for logs)


@dataclass(frozen=True)
class Settings:
    catalog: Catalog
    profile: Profile
    version: KubeVersion
    policy_files: Mapping[str, str]
    require_kind_label: bool = False
    builtin_api: BuiltinAPI = NO_BUILTIN_API


def invalid_policy_finding(err: PolicyError) -> Finding:
    return Finding(
        "policy-invalid",
        "kube-apiserver would refuse to start with this policy: " + "; ".join(err.errors[:5])
        + (f" (+{len(err.errors) - 5} more)" if len(err.errors) > 5 else ""),
    )


def analyse_policy(policy_or_obj: Policy | Any, source: str, key: str, s: Settings) -> DocumentResult:
    try:
        policy = (
            policy_or_obj
            if isinstance(policy_or_obj, Policy)
            else decode_policy(policy_or_obj, s.version)
        )
    except PolicyError as err:
        return _invalid_policy(err, source, key)
    cov: Coverage = assess(policy, s.catalog, s.profile, s.version, s.builtin_api)
    violations, lines = _concrete_fix(policy, cov.violations, s)
    return DocumentResult(
        source=source, kind="audit-policy", valid=True,
        categories=tuple(cov.categories.values()), covered_count=cov.covered_count,
        violations=violations, warnings=tuple(cov.warnings), summary=cov.summary,
        key=key, covered=frozenset(cov.covered), repair=lines,
    )  # fmt: skip


# The repair text of recent policies: one object may carry the same policy many times (a ConfigMap
# with thousands of copies must not cost thousands of repairs).  Keyed by the policy and settings
# (the catalog by identity, kept in the value so its id is not reused while cached).
_RECENT: dict[tuple[Any, ...], tuple[Catalog, str, tuple[str, ...]]] = {}
_RECENT_MAX = 256


def _repair_text(policy: Policy, s: Settings) -> tuple[str, tuple[str, ...]]:
    key = (policy, s.profile, s.version, id(s.catalog))
    hit = _RECENT.get(key)
    if hit is not None and hit[0] is s.catalog:
        return hit[1], hit[2]
    rep = repair(policy, s.catalog, s.profile, s.version)
    sentence, lines = fix_sentence(rep), tuple(rep.lines())
    if len(_RECENT) >= _RECENT_MAX:
        _RECENT.clear()
    _RECENT[key] = (s.catalog, sentence, lines)
    return sentence, lines


#: Above this many rules the concrete repair is left to ``auditwarden fix`` (the webhook's time is bounded).
REPAIR_MAX_RULES = 200


def _concrete_fix(
    policy: Policy, violations: list[Finding], s: Settings
) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """The first profile violation names the concrete rules to add and where (README "auditwarden fix")."""
    first = next((i for i, v in enumerate(violations) if v.code in PROFILE_CODES), None)
    if first is None:
        return tuple(violations), ()
    if len(policy.rules) > REPAIR_MAX_RULES:
        sentence = f"Fix: run `auditwarden fix` for the concrete rules (the policy has over {REPAIR_MAX_RULES} rules)."
        lines: tuple[str, ...] = ()
    else:
        sentence, lines = _repair_text(policy, s)
    v = violations[first]
    message = v.message.replace(FIX_HINT, sentence) if FIX_HINT in v.message else f"{v.message} {sentence}"
    out = list(violations)
    out[first] = Finding(v.code, message, v.rule)
    return tuple(out), lines


def _invalid_policy(err: PolicyError, source: str, key: str) -> DocumentResult:
    return DocumentResult(
        source=source, kind="audit-policy", valid=False, covered_count=0,
        violations=(invalid_policy_finding(err),),
        summary="Audit policy is invalid: kube-apiserver would refuse to start with it.",
        key=key,
    )  # fmt: skip


def analyse_apiserver(doc: Document, source: str, s: Settings) -> list[DocumentResult]:
    if doc.kind == "apiserver-pod":
        found = apiserver.from_pod(doc.obj, s.version)
        if found is None:  # pragma: no cover - discovery only yields pods with the container
            return []
        cfg = found
    elif doc.kind == "k3s-config":
        cfg = apiserver.from_k3s_config(doc.obj, s.version)
    elif doc.kind == "kops-cluster":
        cfg = apiserver.from_kops_cluster(doc.obj)
    else:
        cfg = apiserver.from_cluster_configuration(doc.obj, s.version)
    if cfg.version is not None:
        s = replace(s, version=cfg.version)
    if doc.files:
        s = replace(s, policy_files={**doc.files, **s.policy_files})
    strict = s.profile.name != "baseline"
    fa = apiserver.analyse_flags(cfg, strict_retention=strict, version=s.version)
    warnings = list(fa.warnings)
    sub: DocumentResult | None = None
    if fa.policy_path and fa.policy_path in s.policy_files:
        text = s.policy_files[fa.policy_path]
        try:
            policy: Policy | Any = load_policy(text, s.version)
        except PolicyError as err:
            policy = err
        sub_source = f"{source} --audit-policy-file={fa.policy_path}"
        if isinstance(policy, PolicyError):
            sub = _invalid_policy(policy, sub_source, f"{doc.key}#policy")
        else:
            sub = analyse_policy(policy, sub_source, f"{doc.key}#policy", s)
    elif fa.policy_path:
        warnings.append(
            Finding(
                "policy-content-unseen",
                f"the content of {fa.policy_path} was not supplied, so its category coverage is not judged "
                "(CLI: --policy-file-map; webhook: policySources)",
            )
        )
    result = DocumentResult(
        source=source, kind=doc.kind,
        valid=not cfg.errors and not cfg.refused and not cfg.kubelet
        and not any(f.code == "audit-flag-invalid" for f in fa.violations),
        violations=tuple(fa.violations), warnings=tuple(warnings), summary=fa.summary,
        key=doc.key, flags=dict(cfg.flags),
    )  # fmt: skip
    return [result] if sub is None else [result, sub]


def analyse_openshift(doc: Document, source: str) -> DocumentResult:
    """OpenShift ``APIServer`` config: ``spec.audit.profile: None`` switches auditing off."""
    spec = doc.obj.get("spec")
    audit = spec.get("audit") if isinstance(spec, Mapping) else None
    audit = audit if isinstance(audit, Mapping) else {}
    profile = audit.get("profile", "Default")
    violations: list[Finding] = []
    warnings: list[Finding] = []
    if profile == "None":
        violations.append(
            Finding(
                "audit-profile-none",
                "spec.audit.profile: None disables API-server audit logging for the whole cluster. "
                "Fix: use Default (or WriteRequestBodies/AllRequestBodies).",
            )
        )
    for rule in audit.get("customRules") or []:
        if isinstance(rule, Mapping) and rule.get("profile") == "None":
            warnings.append(
                Finding(
                    "audit-profile-none",
                    f"customRules: requests of group {rule.get('group')!r} are not audited (profile None)",
                )
            )
    return DocumentResult(source=source, kind=doc.kind, valid=True, key=doc.key,
                          violations=tuple(violations), warnings=tuple(warnings),
                          summary=f"OpenShift audit profile {profile}.")  # fmt: skip


def analyse_document(doc: Document, source: str, s: Settings) -> list[DocumentResult]:
    if doc.kind == "audit-policy":
        return [analyse_policy(doc.obj, source, doc.key, s)]
    if doc.kind == "openshift-apiserver":
        return [analyse_openshift(doc, source)]
    return analyse_apiserver(doc, source, s)
