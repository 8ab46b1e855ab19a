"""The audit Policy model, loaded and validated exactly as kube-apiserver does.

Upstream sources (``staging/src/k8s.io/apiserver/`` of kubernetes/kubernetes):

* ``pkg/audit/policy/reader.go`` — ``LoadPolicyFromBytes``: strict decode, lenient
  fallback on strict-only errors, group/version allow-list, ``ValidatePolicy``, and the
  zero-rule check ("loaded illegal policy with 0 rules").
* ``pkg/apis/audit/v1/types.go`` — the fields and their JSON names (case-sensitive).
* ``pkg/apis/audit/validation/validation.go`` — what validation rejects.

A policy that fails here makes kube-apiserver exit at start-up; auditwarden reports that as
a violation of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.core import objectmeta, yamlsafe
from webhook.core.jsontypes import json_type
from webhook.core.versions import (
    GROUP_WILDCARD,
    NEWEST,
    V1BETA1_DEPRECATED,
    V1BETA1_REMOVED,
    KubeVersion,
)

# pkg/apis/audit/types.go: the four levels, ordered.
LEVELS: tuple[str, ...] = ("None", "Metadata", "Request", "RequestResponse")
LEVEL_RANK: dict[str, int] = {name: i for i, name in enumerate(LEVELS)}
# pkg/apis/audit/types.go: the four stages (validation.go validOmitStages, same order).
STAGES: tuple[str, ...] = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")

AUDIT_GROUP = "audit.k8s.io"


class PolicyError(ValueError):
    """kube-apiserver would refuse to start with this policy.  ``errors`` lists each reason."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True, slots=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None

    def describe(self) -> str:
        """A short human description used in reports: ``level None, users [system:kube-proxy]``."""
        parts = [f"level {self.level}"]
        for label, values in (
            ("users", self.users),
            ("userGroups", self.user_groups),
            ("verbs", self.verbs),
            ("namespaces", self.namespaces),
            ("nonResourceURLs", self.non_resource_urls),
        ):
            if values:
                parts.append(f"{label} [{_short_list(values)}]")
        if self.resources:
            parts.append(f"resources [{_short_list([_describe_gr(gr) for gr in self.resources])}]")
        if self.omit_stages:
            parts.append(f"omitStages [{', '.join(self.omit_stages)}]")
        return ", ".join(parts)


@dataclass(frozen=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False
    api_version: str = f"{AUDIT_GROUP}/v1"
    # Things kube-apiserver tolerates but a person should hear about (unknown fields
    # dropped by the lenient fallback, deprecated apiVersion).
    notes: tuple[str, ...] = field(default=(), compare=False)


def _short_list(values: Any, limit: int = 4) -> str:
    items = [str(v) for v in values]
    if len(items) > limit:
        return ", ".join(items[:limit]) + f", … {len(items) - limit} more"
    return ", ".join(items)


def _describe_gr(gr: GroupResources) -> str:
    group = gr.group or "core"
    if not gr.resources:
        return f"{group}:*"
    res = "|".join(gr.resources[:4]) + ("|…" if len(gr.resources) > 4 else "")
    names = f"({'|'.join(gr.resource_names[:2])})" if gr.resource_names else ""
    return f"{group}:{res}{names}"


# --------------------------------------------------------------------------- decoding


class _Decoder:
    """Go-JSON-like decoding of an already parsed YAML/JSON object into the model.

    Mirrors what kube-apiserver's universal decoder does after converting YAML to JSON:
    field names are case-sensitive; an unknown field is a *strict* error, which
    reader.go answers by decoding again leniently (so the field is dropped, and we record
    a note); a value of the wrong JSON type is fatal ("failed decoding"); ``null`` leaves
    the Go zero value.
    """

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def fatal(self, path: str, expected: str, value: Any) -> PolicyError:
        """encoding/json's UnmarshalTypeError text, with the element's own path after it."""
        where = path or "the top level"
        return PolicyError([f"failed decoding: json: {_type_error(path, expected, value)} (at {where})"])

    def obj(self, value: Any, path: str, known: frozenset[str]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fatal(path or "policy", "an object", value)
        for key in value:
            if not isinstance(key, str) or key not in known:
                self.unknown.append(f"{path}.{key}" if path else str(key))
        return value

    def string(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fatal(path, "a string", value)
        return value

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fatal(path, "an array of strings", value)
        return tuple(self.string(v, f"{path}[{i}]") for i, v in enumerate(value))

    def boolean(self, value: Any, path: str) -> bool | None:
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.fatal(path, "a boolean", value)
        return value


# The Go struct that holds a field, by the field's parent in the JSON path (types.go).
_GO_STRUCT = {"": "Policy", "rules": "PolicyRule", "resources": "GroupResources"}
_GO_TYPE = {
    "a string": "string", "an array of strings": "[]string", "a boolean": "bool",
    "an array of PolicyRule": "[]v1.PolicyRule", "an array of GroupResources": "[]v1.GroupResources",
    "an object": "struct", "ObjectMeta": "v1.ObjectMeta",
}  # fmt: skip


def _type_error(path: str, expected: str, value: Any) -> str:
    """``json: cannot unmarshal bool into Go struct field PolicyRule.rules.namespaces of type string``."""
    fields = [re.sub(r"\[\d+\]$", "", part) for part in path.split(".")] if path else []
    go_type = _GO_TYPE.get(expected, expected)
    if path.endswith("]"):  # an element of a list: the list's field, the element's type
        go_type = go_type.removeprefix("[]")
    if not fields:
        return f"cannot unmarshal {json_type(value)} into Go value of type {go_type}"
    parent = fields[-2] if len(fields) > 1 else ""
    struct = _GO_STRUCT.get(parent, "Policy")
    return f"cannot unmarshal {json_type(value)} into Go struct field {struct}.{'.'.join(fields)} of type {go_type}"


_POLICY_FIELDS = frozenset({"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"})
_RULE_FIELDS = frozenset(
    {
        "level",
        "users",
        "userGroups",
        "verbs",
        "resources",
        "namespaces",
        "nonResourceURLs",
        "omitStages",
        "omitManagedFields",
    }
)
_GR_FIELDS = frozenset({"group", "resources", "resourceNames"})


def _decode_rule(d: _Decoder, raw: Any, path: str) -> PolicyRule:
    m = d.obj(raw, path, _RULE_FIELDS)
    resources: list[GroupResources] = []
    raw_res = m.get("resources")
    if raw_res is not None:
        if not isinstance(raw_res, list):
            raise d.fatal(f"{path}.resources", "an array of GroupResources", raw_res)
        for j, item in enumerate(raw_res):
            gp = f"{path}.resources[{j}]"
            g = d.obj(item, gp, _GR_FIELDS)
            resources.append(
                GroupResources(
                    group=d.string(g.get("group"), f"{gp}.group"),
                    resources=d.strings(g.get("resources"), f"{gp}.resources"),
                    resource_names=d.strings(g.get("resourceNames"), f"{gp}.resourceNames"),
                )
            )
    return PolicyRule(
        level=d.string(m.get("level"), f"{path}.level"),
        users=d.strings(m.get("users"), f"{path}.users"),
        user_groups=d.strings(m.get("userGroups"), f"{path}.userGroups"),
        verbs=d.strings(m.get("verbs"), f"{path}.verbs"),
        resources=tuple(resources),
        namespaces=d.strings(m.get("namespaces"), f"{path}.namespaces"),
        non_resource_urls=d.strings(m.get("nonResourceURLs"), f"{path}.nonResourceURLs"),
        omit_stages=d.strings(m.get("omitStages"), f"{path}.omitStages"),
        omit_managed_fields=d.boolean(m.get("omitManagedFields"), f"{path}.omitManagedFields"),
    )


def _check_metadata(d: _Decoder, raw: Any) -> None:
    """``metav1.ObjectMeta``'s JSON types: a wrong one is a fatal decoding error upstream too."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise d.fatal("metadata", "ObjectMeta", raw)
    _check_fields(d, raw, objectmeta.OBJECT_META, "metadata")


def _check_fields(d: _Decoder, raw: Mapping[str, Any], fields: Mapping[str, Any], path: str) -> None:
    for key, kind in fields.items():
        value = raw.get(key)
        if value is None:
            continue
        where = f"{path}.{key}"
        if isinstance(kind, Mapping):  # a nested struct, or a list of them
            items = value if isinstance(value, list) else None
            if items is None:
                raise d.fatal(where, f"[]{key}", value)
            for i, item in enumerate(items):
                if item is None:
                    continue
                if not isinstance(item, Mapping):
                    raise d.fatal(f"{where}[{i}]", "an object", item)
                _check_fields(d, item, kind, f"{where}[{i}]")
            continue
        problem = objectmeta.check(kind, value)
        if problem is not None:
            raise PolicyError([f"failed decoding: {where}: {problem}"])


def _check_type(obj: Mapping[str, Any], version: KubeVersion) -> list[str]:
    """reader.go: the decoded group/version must be in the allow-list.

    Returns notes (deprecation) or raises PolicyError.
    """
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if api_version is not None and not isinstance(api_version, str):
        raise PolicyError([f"failed decoding: apiVersion must be a string, not {json_type(api_version)}"])
    if kind is not None and not isinstance(kind, str):
        raise PolicyError([f"failed decoding: kind must be a string, not {json_type(kind)}"])
    allowed = {f"{AUDIT_GROUP}/v1"}
    if version < V1BETA1_REMOVED:
        allowed |= {f"{AUDIT_GROUP}/v1beta1", f"{AUDIT_GROUP}/v1alpha1"}
    if not api_version:
        # The decoder defaults the missing type from the internal Policy type, whose
        # version "__internal" is not in the allow-list (reader_test.go
        # TestParsePolicyWithNoVersionOrKind).
        raise PolicyError(
            [f"unknown group version field {AUDIT_GROUP}/__internal, Kind=Policy in policy"]
        )
    if api_version not in allowed:
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        if group == AUDIT_GROUP or api_version.startswith(AUDIT_GROUP):
            raise PolicyError(
                [
                    f"failed decoding: no kind \"{kind or 'Policy'}\" is registered for version "
                    f"\"{api_version}\": unsupported apiVersion '{api_version}' (only "
                    f"{AUDIT_GROUP}/v1 loads since Kubernetes 1.24)"
                ]
            )
        raise PolicyError(
            [f"failed decoding: no kind \"{kind or 'Policy'}\" is registered for version \"{api_version}\""]
        )
    if kind not in (None, "", "Policy"):
        raise PolicyError(
            [f"failed decoding: no kind \"{kind}\" is registered for version \"{api_version}\""]
        )
    if api_version != f"{AUDIT_GROUP}/v1" and version >= V1BETA1_DEPRECATED:
        return [f"apiVersion {api_version} is deprecated and removed in Kubernetes 1.24; use {AUDIT_GROUP}/v1"]
    return []


def decode_policy(obj: Any, version: KubeVersion = NEWEST, *, require_rules: bool = True) -> Policy:
    """Load a policy from a parsed YAML/JSON document (reader.go + validation.go).

    ``require_rules=False`` stops after ``ValidatePolicy`` (which accepts an empty policy);
    the loader proper also refuses zero rules.

    Raises :class:`PolicyError` with every reason kube-apiserver would give.
    """
    if obj is None:
        # reader_test.go TestPolicyCntCheck/emptyPolicyFile: the decoder defaults the missing
        # type from the internal Policy type, so the allow-list check fails (as upstream says).
        raise PolicyError([f"unknown group version field {AUDIT_GROUP}/__internal, Kind=Policy in policy (empty)"])
    if not isinstance(obj, Mapping):
        raise PolicyError([f"failed decoding: a policy must be an object, not {json_type(obj)}"])
    notes = _check_type(obj, version)
    d = _Decoder()
    top = d.obj(obj, "", _POLICY_FIELDS)
    _check_metadata(d, top.get("metadata"))
    raw_rules = top.get("rules")
    if raw_rules is not None and not isinstance(raw_rules, list):
        raise d.fatal("rules", "an array of PolicyRule", raw_rules)
    rules = tuple(_decode_rule(d, r, f"rules[{i}]") for i, r in enumerate(raw_rules or ()))
    policy = Policy(
        rules=rules,
        omit_stages=d.strings(top.get("omitStages"), "omitStages"),
        omit_managed_fields=bool(d.boolean(top.get("omitManagedFields"), "omitManagedFields")),
        api_version=str(obj.get("apiVersion")),
        notes=tuple(
            notes
            + [
                f"unknown field {u} is ignored (kube-apiserver falls back to lenient decoding "
                "and drops it; check the indentation)"
                for u in d.unknown
            ]
        ),
    )
    errors = validate_policy(policy, version)
    if errors:
        raise PolicyError(errors)
    if require_rules and not policy.rules:
        raise PolicyError(["loaded illegal policy with 0 rules"])
    return policy


def load_policy(text: str | bytes, version: KubeVersion = NEWEST) -> Policy:
    """Load a policy *file* as kube-apiserver does (``yamlsafe.decode_like_apiserver``).

    A text starting with ``{`` is JSON only; otherwise only its first YAML document counts.
    """
    try:
        doc = yamlsafe.decode_like_apiserver(text)
    except yamlsafe.DocumentError as exc:
        raise PolicyError([f"failed decoding: {exc}"]) from None
    return decode_policy(doc, version)


# ------------------------------------------------------------------------- validation

# k8s.io/apimachinery/pkg/util/validation/validation.go IsDNS1123Subdomain
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com')"
)


def _quote(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return f'"{value}"'


def _invalid(path: str, value: Any, msg: str) -> str:
    return f"{path}: Invalid value: {_quote(value)}: {msg}"


def validate_policy(policy: Policy, version: KubeVersion = NEWEST) -> list[str]:
    """validation.go ValidatePolicy: every field error, in upstream's order."""
    errors: list[str] = []
    errors += _validate_stages(policy.omit_stages, "omitStages")
    for i, rule in enumerate(policy.rules):
        errors += _validate_rule(rule, f"rules[{i}]", version)
    return errors


def _validate_rule(rule: PolicyRule, path: str, version: KubeVersion) -> list[str]:
    errors: list[str] = []
    # validateLevel
    if rule.level == "":
        errors.append(f"{path}.level: Required value")
    elif rule.level not in LEVEL_RANK:
        supported = ", ".join(f'"{lv}"' for lv in LEVELS)
        errors.append(f'{path}.level: Unsupported value: "{rule.level}": supported values: {supported}')
    # validateNonResourceURLs
    for i, url in enumerate(rule.non_resource_urls):
        if url == "*":
            continue
        p = f"{path}.nonResourceURLs[{i}]"
        if not url.startswith("/"):
            errors.append(_invalid(p, url, "non-resource URL rules must begin with a '/' character"))
        if url != "" and "*" in url[:-1]:
            errors.append(
                _invalid(p, url, "non-resource URL wildcards '*' must be the final character of the rule")
            )
    # validateResources
    for gr in rule.resources:
        if gr.group and not (gr.group == "*" and version >= GROUP_WILDCARD):
            if len(gr.group) > 253:
                errors.append(_invalid(f"{path}.resources.group", gr.group, "must be no more than 253 characters"))
            elif not _DNS1123_SUBDOMAIN.fullmatch(gr.group):
                errors.append(_invalid(f"{path}.resources.group", gr.group, _DNS1123_MSG))
        if gr.resource_names and not gr.resources:
            errors.append(
                _invalid(
                    f"{path}.resources.resourceNames",
                    gr.resource_names,
                    "using resourceNames requires at least one resource",
                )
            )
    # validateOmitStages
    errors += _validate_stages(rule.omit_stages, f"{path}.omitStages")
    if rule.non_resource_urls and (rule.resources or rule.namespaces):
        errors.append(
            _invalid(
                f"{path}.nonResourceURLs",
                rule.non_resource_urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            )
        )
    return errors


def _validate_stages(stages: tuple[str, ...], path: str) -> list[str]:
    return [
        _invalid(f"{path}[{i}]", s, "allowed stages are " + ",".join(STAGES))
        for i, s in enumerate(stages)
        if s not in STAGES
    ]
