"""OpenShift's ``APIServer`` ``cluster`` object: the audit Policy its operators render from ``spec.audit``.

On OpenShift nobody writes the audit policy file: the API-server operators (kube-apiserver,
openshift-apiserver, oauth-apiserver) render it from ``apiservers.config.openshift.io/cluster``
``spec.audit`` and write it into a ConfigMap (``policy.yaml``) that the API servers read.  This is
that rendering, ported from OpenShift's own code:

* ``github.com/openshift/library-go`` ``pkg/operator/apiserver/audit/audit_policies.go``
  (pinned in ``webhook/data/openshift/PROVENANCE.md``):

  - ``init``: the base policy is ``manifests/base-policy.yaml`` decoded into ``auditv1.Policy``;
    each profile's rules are ``manifests/<lower-case profile>-rules.yaml`` unmarshalled with
    ``sigs.k8s.io/yaml`` into ``[]auditv1.PolicyRule`` — Go's ``encoding/json`` rules: field names
    match case-insensitively and unknown fields are dropped (the WriteRequestBodies and
    AllRequestBodies manifests spell ``resource:`` for ``machineconfiguration.openshift.io``, so
    that entry names the group with no resources: every resource of the group);
  - ``GetAuditPolicy``: the base policy's rules; then, for each ``customRules`` entry in order,
    the rules of its profile with ``userGroups`` replaced by ``[group]``; then the rules of
    ``profile``.  An unknown profile is an error (``unknown audit profile %q``);
  - ``pkg/operator/apiserver/controller/auditpolicy`` ``syncAuditPolicy`` sets ``kind: Policy``,
    ``apiVersion: audit.k8s.io/v1``; ``GetAuditPolicy`` names it ``policy``.

* ``github.com/openshift/api`` ``config/v1/types_apiserver.go`` and its CRD
  (``apiservers.config.openshift.io``): ``spec`` is required; ``spec.audit`` defaults to
  ``{profile: Default}`` and ``profile`` to ``Default`` (a null counts as absent: the API server
  prunes nulls of non-nullable fields before it defaults); ``profile`` and each custom rule's
  ``profile`` are one of Default, WriteRequestBodies, AllRequestBodies, None; a custom rule needs
  a non-empty ``group`` and a ``profile``, and ``customRules`` is a map keyed by ``group`` (no
  group twice).  The API server applies these defaults and refuses what breaks these rules, so
  an object read from a cluster is always defaulted and valid; a file is defaulted and checked here.

What a user can change is ``spec.audit.profile`` and ``spec.audit.customRules``; the base policy
and each profile's rules come with the OpenShift release.  :func:`fix_sentence` says which
setting would make a policy meet the profile, or that none can.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.core import yamlsafe

#: configv1.AuditProfileType, in the order of the API's enum (types_apiserver.go).
PROFILES: tuple[str, ...] = ("Default", "WriteRequestBodies", "AllRequestBodies", "None")
#: The profiles that log something, weakest first: the candidates a fix may name.
LOGGING_PROFILES: tuple[str, ...] = ("Default", "WriteRequestBodies", "AllRequestBodies")
#: library-go's manifest files (``manifests/``), as shipped in ``webhook/data/openshift/``.
MANIFEST_FILES: tuple[str, ...] = ("base-policy.yaml", *(f"{p.lower()}-rules.yaml" for p in PROFILES))

# auditv1.PolicyRule and auditv1.GroupResources: JSON names in struct order, with their shape.
_RULE_FIELDS: tuple[tuple[str, str], ...] = (
    ("level", "string"), ("users", "strings"), ("userGroups", "strings"), ("verbs", "strings"),
    ("resources", "groupResources"), ("namespaces", "strings"), ("nonResourceURLs", "strings"),
    ("omitStages", "strings"), ("omitManagedFields", "bool"),
)  # fmt: skip
_GR_FIELDS: tuple[tuple[str, str], ...] = (("group", "string"), ("resources", "strings"),
                                           ("resourceNames", "strings"))  # fmt: skip
_POLICY_FIELDS: tuple[tuple[str, str], ...] = (("rules", "rules"), ("omitStages", "strings"),
                                               ("omitManagedFields", "bool"))  # fmt: skip


class ManifestError(ValueError):
    """A manifest file library-go would panic on (the packaged files never are)."""


class RenderError(ValueError):
    """``GetAuditPolicy`` refuses the audit settings (an unknown profile)."""


@dataclass(frozen=True)
class Manifests:
    """library-go's base policy and each profile's rules, decoded as its ``init`` decodes them."""

    base: Mapping[str, Any]  # the base Policy's rules, omitStages, omitManagedFields (Go JSON shape)
    rules: Mapping[str, tuple[Mapping[str, Any], ...]]  # profile -> its rules (Go JSON shape)


def parse_manifests(texts: Mapping[str, str]) -> Manifests:
    """The manifests from their texts (file name -> text, the names of :data:`MANIFEST_FILES`)."""
    try:
        base_doc = yamlsafe.load_file(texts["base-policy.yaml"])[0]
        base = _go_struct(base_doc, _POLICY_FIELDS, "base-policy.yaml")
        rules = {}
        for profile in PROFILES:
            name = f"{profile.lower()}-rules.yaml"
            raw = yamlsafe.load_file(texts[name])[0]
            rules[profile] = tuple(_go_rules(raw, name))
    except (KeyError, IndexError, yamlsafe.DocumentError) as exc:
        raise ManifestError(f"OpenShift audit manifests: {exc}") from None
    return Manifests(base=base, rules=rules)


def go_policy(raw: Any) -> dict[str, Any]:
    """A policy document unmarshalled into ``auditv1.Policy`` and marshalled back (encoding/json's rules):
    the form :func:`render` returns, to compare a policy written by hand or by upstream with it."""
    if not isinstance(raw, Mapping):
        raise ManifestError("a policy: expected an object")
    out: dict[str, Any] = {k: raw[k] for k in ("kind", "apiVersion") if isinstance(raw.get(k), str) and raw[k]}
    meta = raw.get("metadata")
    if isinstance(meta, Mapping) and meta:
        out["metadata"] = dict(meta)
    return {**out, **_go_struct(raw, _POLICY_FIELDS, "policy")}


def _go_struct(raw: Any, fields: Sequence[tuple[str, str]], where: str) -> dict[str, Any]:
    """``raw`` unmarshalled into a Go struct with ``fields`` and marshalled back (encoding/json).

    A key matches its field exactly or else case-insensitively; the last key for a field wins;
    unknown keys are dropped; empty values are omitted (every field but ``level`` is omitempty).
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ManifestError(f"{where}: expected an object")
    exact = {name: (name, shape) for name, shape in fields}
    folded = {name.lower(): (name, shape) for name, shape in fields}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            continue
        field = exact.get(key) or folded.get(key.lower())
        if field is None:
            continue  # unknown field: encoding/json drops it
        name, shape = field
        out[name] = _go_value(value, shape, f"{where}.{name}")
    return {name: out[name] for name, _ in fields if name in out and (name == "level" or out[name])}


def _go_value(value: Any, shape: str, where: str) -> Any:
    if shape == "string":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ManifestError(f"{where}: expected a string")
        return value
    if shape == "bool":
        if value is None:
            return False
        if not isinstance(value, bool):
            raise ManifestError(f"{where}: expected a boolean")
        return value
    if shape == "strings":
        return [_go_value(v, "string", where) for v in _go_items(value, where)]
    if shape == "groupResources":
        return [_go_struct(v, _GR_FIELDS, where) for v in _go_items(value, where)]
    return _go_rules(value, where)


def _go_items(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(f"{where}: expected a list")
    return value


def _go_rules(value: Any, where: str) -> list[dict[str, Any]]:
    rules = []
    for i, item in enumerate(_go_items(value, where)):
        rule = _go_struct(item, _RULE_FIELDS, f"{where}[{i}]")
        rule.setdefault("level", "")
        rules.append(rule)
    return rules


# --------------------------------------------------------------------- the APIServer object


def effective_audit(obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``spec.audit`` as the API server stores it (CRD defaults applied), and why it would refuse the object.

    The returned settings are meaningful only when the list of errors is empty.
    """
    errors: list[str] = []
    spec = obj.get("spec")
    if spec is None:
        return {}, ["spec: Required value"]
    if not isinstance(spec, Mapping):
        return {}, [f"spec: Invalid value: {_go_type(spec)}: spec in body must be of type object"]
    # A null is pruned before defaulting (none of these fields is nullable): it counts as absent.
    audit_raw = spec.get("audit")
    if audit_raw is None:
        audit_raw = {"profile": "Default"}
    if not isinstance(audit_raw, Mapping):
        return {}, [f"spec.audit: Invalid value: {_go_type(audit_raw)}: spec.audit in body must be of type object"]
    profile = audit_raw.get("profile")
    audit: dict[str, Any] = {"profile": "Default" if profile is None else profile}
    _check_profile(audit["profile"], "spec.audit.profile", errors)
    rules = audit_raw.get("customRules")
    if rules is not None:
        if not isinstance(rules, list):
            errors.append(f"spec.audit.customRules: Invalid value: {_go_type(rules)}: spec.audit.customRules in "
                          "body must be of type array")  # fmt: skip
            rules = []
        custom: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            where = f"spec.audit.customRules[{i}]"
            if not isinstance(rule, Mapping):
                errors.append(f"{where}: Invalid value: {_go_type(rule)}: {where} in body must be of type object")
                continue
            group, profile = rule.get("group"), rule.get("profile")
            if group is None:
                errors.append(f"{where}.group: Required value")
            elif not isinstance(group, str):
                errors.append(f"{where}.group: Invalid value: {_go_type(group)}: {where}.group in body must be of "
                              "type string")  # fmt: skip
            elif not group:
                errors.append(f'{where}.group: Invalid value: "": {where}.group in body should be at least 1 '
                              "chars long")  # fmt: skip
            elif group in seen:
                errors.append(f"{where}: Duplicate value: {{\"group\":{json.dumps(group)}}}")
            else:
                seen.add(group)
            if profile is None:
                errors.append(f"{where}.profile: Required value")
            else:
                _check_profile(profile, f"{where}.profile", errors)
            custom.append({"group": group, "profile": profile})
        if custom:
            audit["customRules"] = custom
    return audit, errors


def _check_profile(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"{where}: Invalid value: {_go_type(value)}: {where} in body must be of type string")
    elif value not in PROFILES:
        supported = ", ".join(json.dumps(p) for p in PROFILES)
        errors.append(f"{where}: Unsupported value: {json.dumps(value)}: supported values: {supported}")


def _go_type(value: Any) -> str:
    from webhook.core.jsontypes import json_type

    return f'"{json_type(value)}"'


# --------------------------------------------------------------------------- GetAuditPolicy


def render(audit: Mapping[str, Any], manifests: Manifests) -> dict[str, Any]:
    """``GetAuditPolicy(audit)`` with the kind and apiVersion ``syncAuditPolicy`` sets: the policy the
    operators write, in the shape encoding/json gives it.  Raises :class:`RenderError` as it errs."""
    rules = [dict(r) for r in manifests.base.get("rules", ())]
    for cr in audit.get("customRules") or ():
        group, profile = str(cr.get("group") or ""), str(cr.get("profile") or "")
        if profile not in manifests.rules:
            raise RenderError(f"unknown audit profile {_q(profile)} in customRules for group {_q(group)}")
        rules += [_with_groups(r, [group]) for r in manifests.rules[profile]]
    profile = str(audit.get("profile") or "")
    if profile not in manifests.rules:
        raise RenderError(f"unknown audit profile {_q(profile)}")
    rules += [dict(r) for r in manifests.rules[profile]]
    policy: dict[str, Any] = {"kind": "Policy", "apiVersion": "audit.k8s.io/v1", "metadata": {"name": "policy"}}
    if rules:
        policy["rules"] = rules
    for name in ("omitStages", "omitManagedFields"):
        if manifests.base.get(name):
            policy[name] = manifests.base[name]
    return policy


def _with_groups(rule: Mapping[str, Any], groups: list[str]) -> dict[str, Any]:
    """``groupRules[i].UserGroups = []string{cr.Group}``, fields kept in struct order."""
    out = {**rule, "userGroups": groups}
    return {name: out[name] for name, _ in _RULE_FIELDS if name in out}


def _q(s: str) -> str:
    """Go's ``%q`` for the strings an audit setting holds (printable text: as JSON quotes it)."""
    return json.dumps(s, ensure_ascii=False)


# ------------------------------------------------------------------------ origins and fixes


def rule_origins(audit: Mapping[str, Any], manifests: Manifests) -> list[str]:
    """Where each rule of :func:`render`'s policy comes from, in words a user can act on."""
    out = ["the operator's base policy (no spec.audit setting changes it)"] * len(manifests.base.get("rules", ()))
    for cr in audit.get("customRules") or ():
        group, profile = cr.get("group"), cr.get("profile")
        n = len(manifests.rules.get(str(profile), ()))
        out += [f"spec.audit.customRules[group={group}] (profile {profile})"] * n
    profile = audit.get("profile")
    out += [f"spec.audit.profile {profile}"] * len(manifests.rules.get(str(profile), ()))
    return out


def fix_sentence(
    audit: Mapping[str, Any],
    responsible: Sequence[int],
    manifests: Manifests,
    meets: Callable[[dict[str, Any]], bool],
) -> str:
    """What to change in ``spec.audit`` so that the rendered policy ``meets`` the profile.

    ``responsible``: the indices of the rules that hid the missed events.  The settings that made
    those rules (the top-level profile, a custom rule) are set, together, to the weakest logging
    profile with which ``meets(policy)`` holds.  When the base policy is responsible, or no
    profile suffices, the sentence says that spec.audit cannot reach it.
    """
    base = len(manifests.base.get("rules", ()))
    custom = list(audit.get("customRules") or ())
    spans: list[tuple[int, int, int | None]] = []  # (first rule, end, custom rule index or None: top level)
    at = base
    for i, cr in enumerate(custom):
        n = len(manifests.rules.get(str(cr.get("profile")), ()))
        spans.append((at, at + n, i))
        at += n
    spans.append((at, at + len(manifests.rules.get(str(audit.get("profile")), ())), None))
    settings = sorted({owner for r in responsible for lo, hi, owner in spans if lo <= r < hi},
                      key=lambda o: -1 if o is None else o)  # fmt: skip
    if not settings:
        settings = [None]  # nothing matched, or only the base policy: try the top level anyway
    for candidate in LOGGING_PROFILES:
        changed: dict[str, Any] = {**audit, "customRules": [dict(cr) for cr in custom]}
        for owner in settings:
            if owner is None:
                changed["profile"] = candidate
            else:
                changed["customRules"][owner]["profile"] = candidate
        if not changed["customRules"]:
            del changed["customRules"]
        if changed == {**audit} or not meets(render(changed, manifests)):
            continue
        what = [
            f"spec.audit.profile: {candidate}" if owner is None
            else f"spec.audit.customRules[group={custom[owner].get('group')}].profile: {candidate} (or remove "
                 "that custom rule)"
            for owner in settings
        ]  # fmt: skip
        return f"Fix: set {' and '.join(what)} in the APIServer cluster object."
    return ("No spec.audit setting meets this: no profile (Default, WriteRequestBodies, AllRequestBodies) or "
            "customRules entry renders a policy that does; the rules responsible come with the OpenShift "
            "release (library-go's audit manifests).")  # fmt: skip
