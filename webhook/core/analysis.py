"""Analysis of one recognised document: validity, coverage, flags — and the facts that
change analysis compares between an old and a new version."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from webhook.core import apiserver, openshift
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
    openshift_manifests: openshift.Manifests | None = None  # library-go's audit manifests (OpenShift APIServer)


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


def analyse_openshift(doc: Document, source: str, s: Settings) -> DocumentResult:
    """OpenShift ``APIServer``: the policy the operators render from ``spec.audit``, judged as any policy.

    The findings say what can be changed (``spec.audit.profile``, ``spec.audit.customRules``) and
    where each rule of the rendered policy comes from (:mod:`webhook.core.openshift`).  They point
    at no rule of the file: the policy is not in it.
    """
    audit, errors = openshift.effective_audit(doc.obj)
    if errors:
        return DocumentResult(
            source=source, kind=doc.kind, valid=False, covered_count=0, key=doc.key,
            violations=(Finding("openshift-audit-invalid",
                                "the API server would refuse this APIServer object (CRD "
                                "apiservers.config.openshift.io): "
                                + "; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else "")
                                + ". Fix: use one of the profiles " + ", ".join(openshift.PROFILES)
                                + " and a non-empty group per custom rule."),),
            summary="The APIServer object is invalid: the API server would refuse it.",
        )  # fmt: skip
    profile = audit["profile"]
    custom = audit.get("customRules") or []
    violations: list[Finding] = []
    warnings: list[Finding] = []
    if profile == "None":
        violations.append(Finding(
            "audit-profile-none",
            "spec.audit.profile: None switches audit logging off for every OpenShift API server (kube-apiserver, "
            "openshift-apiserver, oauth-apiserver). Fix: set spec.audit.profile: Default (or WriteRequestBodies, "
            "AllRequestBodies) in the APIServer cluster object.",
        ))  # fmt: skip
    for cr in custom:
        if cr["profile"] == "None":
            warnings.append(Finding(
                "audit-profile-none",
                f"spec.audit.customRules: requests of users in group {cr['group']} are not audited (profile None). "
                "Fix: give that custom rule another profile, or remove it.",
            ))  # fmt: skip
    settings = f"OpenShift spec.audit.profile {profile}" + (
        " with customRules " + ", ".join(f"{cr['group']}: {cr['profile']}" for cr in custom) if custom else ""
    )
    if s.openshift_manifests is None:
        warnings.append(Finding("policy-content-unseen", "the OpenShift audit manifests were not loaded, so the "
                                "rendered policy's category coverage is not judged"))  # fmt: skip
        return DocumentResult(source=source, kind=doc.kind, valid=True, key=doc.key, violations=tuple(violations),
                              warnings=tuple(warnings), summary=f"{settings}.")  # fmt: skip
    manifests = s.openshift_manifests
    try:
        policy = decode_policy(openshift.render(audit, manifests), s.version)
    except (openshift.RenderError, PolicyError) as err:  # pragma: no cover - valid settings always render
        return DocumentResult(source=source, kind=doc.kind, valid=False, covered_count=0, key=doc.key,
                              violations=(Finding("openshift-audit-invalid", f"the operators cannot render the "
                                                  f"audit policy: {err}"),),
                              summary=f"{settings}: no audit policy can be rendered.")  # fmt: skip
    cov = assess(policy, s.catalog, s.profile, s.version, s.builtin_api)
    origins = openshift.rule_origins(audit, manifests)
    categories = tuple(
        replace(c, missed=tuple(replace(m, reason=_from(m.reason, m.rule, origins)) for m in c.missed))
        for c in cov.categories.values()
    )

    def meets(codes: frozenset[str]) -> Callable[[dict[str, Any]], bool]:
        def check(rendered: dict[str, Any]) -> bool:
            other = assess(decode_policy(rendered, s.version), s.catalog, s.profile, s.version, warnings=False)
            return not any(v.code in codes for v in other.violations)

        return check

    # The fix goes with the first violation of its kind: categories (below the minimum, a required
    # one missing) or a required stage.
    fixed: set[str] = set()
    for v in cov.violations:
        message = v.message.replace(f" {FIX_HINT}", "")
        group = "stage" if v.code == "stage-omitted" else "categories" if v.code in _BELOW else None
        if group == "stage":
            message = message.split(" Fix:")[0].replace("the policy's omitStages",
                                                          "the operator's base policy's omitStages")
        message = _with_origins(message, origins)
        if group is not None and group not in fixed:
            fixed.add(group)
            responsible = (_stage_rules(policy, s.profile) if group == "stage"
                           else [m.rule for c in categories for m in c.missed if m.rule is not None])  # fmt: skip
            codes = frozenset({"stage-omitted"}) if group == "stage" else _BELOW
            message = f"{message} {openshift.fix_sentence(audit, responsible, manifests, meets(codes))}"
        violations.append(Finding(v.code, message))
    warnings += [Finding(w.code, _with_origins(w.message, origins)) for w in cov.warnings]
    summary = cov.summary.replace("Audit policy covers", f"{settings}: the audit policy the operators render covers")
    return DocumentResult(
        source=source, kind=doc.kind, valid=True, categories=categories, covered_count=cov.covered_count,
        violations=tuple(violations), warnings=tuple(warnings), summary=summary, key=doc.key,
        covered=frozenset(cov.covered),
    )  # fmt: skip


_BELOW: frozenset[str] = frozenset({"categories-below-minimum", "category-required"})
_RULE_REF = re.compile(r"\brule (\d+)\b")


def _from(reason: str, rule: int | None, origins: list[str]) -> str:
    """A miss's reason with where its rule comes from."""
    if rule is None or not 0 <= rule < len(origins):
        return reason
    return f"{reason} [rule {rule}: {origins[rule]}]"


def _with_origins(message: str, origins: list[str]) -> str:
    """A message about rules of the rendered policy, with where each rule it names comes from."""
    named = dict.fromkeys(int(n) for n in _RULE_REF.findall(message) if int(n) < len(origins))
    if not named or "[rule " in message:
        return message
    return f"{message} [{'; '.join(f'rule {n}: {origins[n]}' for n in named)}]"


def _stage_rules(policy: Policy, profile: Profile) -> list[int]:
    required = set(profile.required_stages)
    return [i for i, r in enumerate(policy.rules) if r.level != "None" and set(r.omit_stages) & required]


def analyse_document(doc: Document, source: str, s: Settings) -> list[DocumentResult]:
    if doc.kind == "audit-policy":
        return [analyse_policy(doc.obj, source, doc.key, s)]
    if doc.kind == "openshift-apiserver":
        return [analyse_openshift(doc, source, s)]
    return analyse_apiserver(doc, source, s)
