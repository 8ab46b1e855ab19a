"""The policy evaluator: which level and stages a request is audited at.

A line-by-line port of ``staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go``
(``NewPolicyRuleEvaluator`` / ``ruleMatches`` / ``ruleMatchesResource`` /
``ruleMatchesNonResource`` / ``pathMatches``), returning in addition the index of the
rule that matched so reports can say which rule hid a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from webhook.core.policy import Policy, PolicyRule
from webhook.core.versions import GROUP_WILDCARD, NEWEST, KubeVersion

# checker.go DefaultAuditLevel
DEFAULT_LEVEL = "None"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attributes:
    """What the audit checker sees of a request (authorizer.AttributesRecord).

    ``user`` is None for a request that failed authentication: the failed-authentication
    audit filter evaluates the policy with no user (filters/authn_audit.go).
    """

    user: User | None
    verb: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    is_resource_request: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    level: str
    omit_stages: frozenset[str]
    omit_managed_fields: bool
    rule: int | None  # 0-based index of the matching rule; None when no rule matched


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: PolicyRule
    users: frozenset[str]
    groups: frozenset[str]
    verbs: frozenset[str]
    namespaces: frozenset[str]
    omit_stages: frozenset[str]
    omit_managed_fields: bool


class Evaluator:
    """checker.go ``policyRuleEvaluator``: first matching rule wins, default level None."""

    def __init__(self, policy: Policy, version: KubeVersion = NEWEST) -> None:
        self.policy = policy
        self.group_wildcard = version >= GROUP_WILDCARD
        policy_stages = frozenset(policy.omit_stages)
        # NewPolicyRuleEvaluator: every rule's omitStages becomes the union of the policy's
        # and the rule's lists (unionStages).
        self._rules = tuple(
            _CompiledRule(
                rule=r,
                users=frozenset(r.users),
                groups=frozenset(r.user_groups),
                verbs=frozenset(r.verbs),
                namespaces=frozenset(r.namespaces),
                omit_stages=policy_stages | frozenset(r.omit_stages),
                omit_managed_fields=(
                    r.omit_managed_fields if r.omit_managed_fields is not None else policy.omit_managed_fields
                ),
            )
            for r in policy.rules
        )
        self._default = Decision(DEFAULT_LEVEL, policy_stages, policy.omit_managed_fields, None)

    def evaluate(self, attrs: Attributes) -> Decision:
        for index, compiled in enumerate(self._rules):
            if self._matches(compiled, attrs):
                return Decision(
                    compiled.rule.level, compiled.omit_stages, compiled.omit_managed_fields, index
                )
        return self._default

    def _matches(self, c: _CompiledRule, attrs: Attributes) -> bool:
        # ruleMatches
        user = attrs.user
        if c.users and (user is None or user.name not in c.users):
            return False
        if c.groups and (user is None or not any(g in c.groups for g in user.groups)):
            return False
        if c.verbs and attrs.verb not in c.verbs:
            return False
        if c.namespaces or c.rule.resources:
            return self._matches_resource(c, attrs)
        if c.rule.non_resource_urls:
            return _matches_non_resource(c.rule, attrs)
        return True

    def _matches_resource(self, c: _CompiledRule, attrs: Attributes) -> bool:
        # ruleMatchesResource
        if not attrs.is_resource_request:
            return False
        if c.namespaces and attrs.namespace not in c.namespaces:
            return False  # non-namespaced resources use the empty string
        if not c.rule.resources:
            return True
        resource, subresource = attrs.resource, attrs.subresource
        combined = f"{resource}/{subresource}" if subresource else resource
        for gr in c.rule.resources:
            # 1.36+: group "*" matches every API group (Kubernetes commit ea3bfd9e).
            if gr.group != attrs.api_group and not (self.group_wildcard and gr.group == "*"):
                continue
            if not gr.resources:
                return True
            for res in gr.resources:
                if gr.resource_names and attrs.name not in gr.resource_names:
                    continue
                if res == combined or res == "*":
                    return True
                if subresource and res.startswith("*/") and subresource == res[2:]:
                    return True
                if res.endswith("/*") and resource == res[:-2]:
                    return True
        return False


def _matches_non_resource(rule: PolicyRule, attrs: Attributes) -> bool:
    # ruleMatchesNonResource
    if attrs.is_resource_request:
        return False
    return any(_path_matches(attrs.path, spec) for spec in rule.non_resource_urls)


def _path_matches(path: str, spec: str) -> bool:
    # pathMatches: "*", exact, or trailing-* raw string prefix (strings.TrimRight(spec, "*"))
    if spec in ("*", path):
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))
