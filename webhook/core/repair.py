"""The smallest repair of an audit policy, proven by the evaluator (``auditwarden fix``).

Pure: takes a loaded :class:`~webhook.core.policy.Policy`, the catalog and a profile, and
returns a :class:`Repair` — the rules to insert, the ``omitStages`` entries to remove, the
repaired policy, and the evidence.  Reading and writing files (with comments kept) is the
CLI's job.

The algorithm (README "auditwarden fix"):

1. A policy kube-apiserver would not load is not repaired (fix it first).
2. **Stages.** A profile that requires stages (``strict``) gets them removed from the
   policy's ``omitStages`` and from every logging rule's.  A probe whose every stage is in
   the *policy-level* ``omitStages`` cannot be logged by any rule (upstream unites the
   policy's list with every rule's, ``checker.go`` ``unionStages``): that entry is removed,
   and the repair says why — for a failed login that is ``ResponseStarted``, the only stage
   it is audited at (``filters/authn_audit.go``).
3. **Targets.** The categories the profile requires, plus up to as many other uncovered
   categories as are missing to reach ``minCategories`` (every combination is tried; the one
   with the fewest inserted and changed rules that passes wins, ties go to fewer categories,
   then catalog order).
4. **Insertions.** Each probe of a target category that is not logged well enough is
   grouped by the rule that hides it (the first rule that matches it, or the end of the
   policy when none does).  Just before that rule, one narrow rule per group is inserted
   that matches the group's probes: by API group and resource (``pods/exec`` for a
   subresource), or by exact non-resource URL.  It never names ``users`` or
   ``userGroups`` (a failed login has no user, so such a rule would never match it) and has
   no ``omitStages``.
5. **Loses nothing.** An inserted rule takes requests away from the rules after it.  Its
   level is therefore the highest level of any later rule that can match a request it
   matches (up to the first later rule that matches all of them), and at least the
   profile's minimum.  With no ``omitStages`` of its own it omits only the policy's stages,
   which every later rule omits too.  So no request is logged at a lower level or with a
   stage omitted that was not omitted before.  (When the policy omits managedFields and such a
   later rule keeps them, the inserted rule keeps them too.)
6. **Bounded payloads.** An inserted rule that would log Secrets, ConfigMaps, TokenReviews
   or ServiceAccount tokens above ``Metadata`` (their contents would land in the log) is
   refused unless the profile's minimum level is above ``Metadata`` (``stig``).  Then the
   shape is narrowed (adding the probes' verbs, then their namespaces) or the group split
   (per resource, then per probe), and when even the narrowest rule would need that level
   the repair is impossible and says which rule forces it.
7. Never a rule deleted or reordered; user rules change only by losing ``omitStages``
   entries (step 2).  The result is checked with :func:`~webhook.core.coverage.assess`
   (it passes the profile) and request by request against the original on the catalog's
   probes (it loses nothing) before it is returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

from webhook.core.categories import Catalog, Probe, Profile
from webhook.core.checker import Attributes, Decision, Evaluator, _path_matches
from webhook.core.coverage import PROFILE_CODES, assess, subsumes
from webhook.core.policy import LEVEL_RANK, LEVELS, GroupResources, Policy, PolicyRule
from webhook.core.versions import GROUP_WILDCARD, NEWEST, KubeVersion

__all__ = [
    "SENSITIVE",
    "Insertion",
    "Repair",
    "StageChange",
    "catalog_requests",
    "fix_sentence",
    "flow",
    "loses_something",
    "repair",
    "rule_flow",
    "rule_mapping",
]

#: (API group, resource) whose request or response bodies carry secret material.
SENSITIVE: tuple[tuple[str, str], ...] = (
    ("", "secrets"),
    ("", "configmaps"),
    ("authentication.k8s.io", "tokenreviews"),
    ("", "serviceaccounts/token"),
)


@dataclass(frozen=True, kw_only=True)
class Insertion:
    """One inserted rule.  ``before`` is the 0-based index, in the *original* policy, of the
    rule it is inserted just before (None: appended at the end); ``index`` its index in the
    repaired policy."""

    before: int | None
    index: int
    rule: PolicyRule
    probes: tuple[str, ...]
    categories: tuple[str, ...]
    why_here: str
    why_level: str
    hider: str = ""  # short: "rule 0 logs them at None", "no rule matches them"
    failed_login: bool = False

    @property
    def where(self) -> str:
        return "at the end" if self.before is None else f"before rule {self.before}"

    def explain(self) -> str:
        """One line: what it logs, and why it sits where it does."""
        text = (
            f"{self.where}: {rule_flow(self.rule)} logs {', '.join(self.probes)} "
            f"({', '.join(self.categories)}); {self.why_here}; {self.why_level}"
        )
        if self.failed_login:
            text += (
                "; it names no users or userGroups, because a failed login has no user and a rule "
                "restricted by them (even userGroups [system:unauthenticated]) never matches it"
            )
        return text


@dataclass(frozen=True, kw_only=True)
class StageChange:
    """Stages removed from an ``omitStages`` list: the policy's (``rule`` None) or a rule's."""

    rule: int | None
    removed: tuple[str, ...]
    why: str

    def explain(self) -> str:
        where = "the policy's omitStages" if self.rule is None else f"rule {self.rule}'s omitStages"
        return f"remove {', '.join(self.removed)} from {where}: {self.why}"


@dataclass(frozen=True, kw_only=True)
class Repair:
    """What :func:`repair` found.  ``needed`` False: the policy already passes.  ``possible``
    False: no repair satisfies the constraints, and ``blocked`` says which one blocks it."""

    needed: bool
    possible: bool
    original: Policy | None
    policy: Policy | None
    insertions: tuple[Insertion, ...] = ()
    stage_changes: tuple[StageChange, ...] = ()
    categories: tuple[str, ...] = ()  # the categories the repair makes covered
    blocked: tuple[str, ...] = ()

    @property
    def changed_rules(self) -> int:
        """Inserted plus changed rules (a policy-level omitStages change counts as one)."""
        return len(self.insertions) + len(self.stage_changes)

    def lines(self) -> list[str]:
        if not self.needed:
            return ["the policy already passes; nothing to repair"]
        if not self.possible:
            return [f"no repair: {b}" for b in self.blocked]
        return [c.explain() for c in self.stage_changes] + [
            f"insert {i.explain()}" for i in self.insertions
        ]


# ------------------------------------------------------------------------- rendering


def _flow_str(value: str) -> str:
    if value == "" or not value.replace("-", "").replace(".", "").replace("/", "").isalnum():
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value.lower() in ("y", "n", "yes", "no", "on", "off", "true", "false", "null") or value[0].isdigit():
        return f'"{value}"'
    return value


def flow(value: Any) -> str:
    """A plain value (mapping, list, string, boolean) as one line of flow-style YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return _flow_str(str(value))


def rule_flow(rule: PolicyRule) -> str:
    """A rule as one line of flow-style YAML: ``{level: Metadata, resources: [{group: "", resources: [secrets]}]}``."""
    return flow(rule_mapping(rule))


def rule_mapping(rule: PolicyRule) -> dict[str, Any]:
    """A rule as the plain mapping a policy file holds (field names of ``audit.k8s.io/v1``)."""
    out: dict[str, Any] = {"level": rule.level}
    if rule.users:
        out["users"] = list(rule.users)
    if rule.user_groups:
        out["userGroups"] = list(rule.user_groups)
    if rule.verbs:
        out["verbs"] = list(rule.verbs)
    if rule.resources:
        out["resources"] = [
            {"group": gr.group}
            | ({"resources": list(gr.resources)} if gr.resources else {})
            | ({"resourceNames": list(gr.resource_names)} if gr.resource_names else {})
            for gr in rule.resources
        ]
    if rule.namespaces:
        out["namespaces"] = list(rule.namespaces)
    if rule.non_resource_urls:
        out["nonResourceURLs"] = list(rule.non_resource_urls)
    if rule.omit_managed_fields is not None:
        out["omitManagedFields"] = rule.omit_managed_fields
    return out


# ------------------------------------------------------------------- rule geometry


def _res_matches(spec: str, combined: str) -> bool:
    """checker.go ruleMatchesResource for one resource entry and a concrete ``resource[/sub]``."""
    resource, _, sub = combined.partition("/")
    if spec in ("*", combined):
        return True
    if sub and spec.startswith("*/") and spec[2:] == sub:
        return True
    return spec.endswith("/*") and spec[:-2] == resource


def _group_matches(spec: str, group: str, group_wildcard: bool) -> bool:
    return spec == group or (group_wildcard and spec == "*")


def _may_overlap(j: PolicyRule, r: PolicyRule, group_wildcard: bool) -> bool:
    """Can some request match both ``j`` and the inserted rule ``r``?  (Conservative: True
    when unsure.)  ``r`` names no users or groups, and its resources and URLs are concrete."""
    if j.verbs and r.verbs and not set(j.verbs) & set(r.verbs):
        return False
    j_res, r_res = bool(j.namespaces or j.resources), bool(r.namespaces or r.resources)
    if j_res:
        if not r_res:
            return False  # r only matches non-resource requests
        if j.namespaces and r.namespaces and not set(j.namespaces) & set(r.namespaces):
            return False
        if not j.resources or not r.resources:
            return True
        for a in j.resources:
            for b in r.resources:
                if not _group_matches(a.group, b.group, group_wildcard):
                    continue
                if not a.resources or not b.resources:
                    return True
                if a.resource_names and b.resource_names and not set(a.resource_names) & set(b.resource_names):
                    continue
                if any(_res_matches(s, c) for s in a.resources for c in b.resources):
                    return True
        return False
    if j.non_resource_urls:
        if r_res:
            return False
        if not r.non_resource_urls:
            return True
        return any(
            "*" in url or _path_matches(url, spec) for url in r.non_resource_urls for spec in j.non_resource_urls
        )
    return True  # j matches resource and non-resource requests alike


def _touches_sensitive(rule: PolicyRule, group_wildcard: bool) -> list[str]:
    found = []
    for group, resource in SENSITIVE:
        for gr in rule.resources:
            if _group_matches(gr.group, group, group_wildcard) and (
                not gr.resources or any(_res_matches(s, resource) for s in gr.resources)
            ):
                found.append(resource)
                break
    if not rule.resources and not rule.non_resource_urls:
        found = [r for _, r in SENSITIVE]
    return found


# ------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Miss:
    probe: Probe
    category: str
    hider: int | None  # the rule that matched first, None = no rule matched


@dataclass(frozen=True)
class _Built:
    before: int | None
    rule: PolicyRule
    misses: tuple[_Miss, ...]
    why_level: str


class _Blocked(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _combined(a: Attributes) -> str:
    return f"{a.resource}/{a.subresource}" if a.subresource else a.resource


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _shapes(misses: Sequence[_Miss], level: str) -> list[PolicyRule]:
    """Candidate rules for a group of probes of one kind, widest first."""
    attrs = [m.probe.attributes for m in misses]
    verbs = _unique(a.verb for a in attrs if a.verb)
    if not attrs[0].is_resource_request:
        urls = _unique(a.path for a in attrs)
        base = PolicyRule(level=level, non_resource_urls=urls)
        return [base, replace(base, verbs=verbs)] if verbs else [base]
    by_group: dict[str, list[str]] = {}
    for a in attrs:
        res = by_group.setdefault(a.api_group, [])
        if a.resource and _combined(a) not in res:
            res.append(_combined(a))
    grs = tuple(GroupResources(group=g, resources=tuple(r)) for g, r in by_group.items())
    base = PolicyRule(level=level, resources=grs)
    shapes = [base]
    if verbs:
        shapes.append(replace(base, verbs=verbs))
    shapes.append(replace(shapes[-1], namespaces=_unique(a.namespace for a in attrs)))
    if all(a.name for a in attrs) and all(a.resource for a in attrs):
        named = tuple(
            GroupResources(group=a.api_group, resources=(_combined(a),), resource_names=(a.name,)) for a in attrs
        )
        shapes.append(replace(shapes[-1], resources=_merge_named(named)))
    return shapes


def _merge_named(grs: tuple[GroupResources, ...]) -> tuple[GroupResources, ...]:
    # One entry per (group, resource) with all its names; distinct entries stay distinct so a
    # name of one resource is never allowed for another.
    merged: dict[tuple[str, str], list[str]] = {}
    for gr in grs:
        names = merged.setdefault((gr.group, gr.resources[0]), [])
        names += [n for n in gr.resource_names if n not in names]
    return tuple(GroupResources(group=g, resources=(r,), resource_names=tuple(n)) for (g, r), n in merged.items())


class _Planner:
    def __init__(self, policy: Policy, profile: Profile, version: KubeVersion) -> None:
        self.policy = policy
        self.profile = profile
        self.group_wildcard = version >= GROUP_WILDCARD
        self.min_rank = LEVEL_RANK[profile.min_level]
        self.bounded = self.min_rank <= LEVEL_RANK["Metadata"]

    def _needed(self, before: int | None, rule: PolicyRule) -> tuple[int, int | None, bool]:
        """The highest level (rank) of a later rule that can match a request ``rule`` matches, that
        rule, and whether one of those rules keeps managedFields the policy omits."""
        need, who, keeps_fields = 0, None, False
        rules = self.policy.rules
        for j in range(len(rules) if before is None else before, len(rules)):
            if not _may_overlap(rules[j], rule, self.group_wildcard):
                continue
            rank = LEVEL_RANK[rules[j].level]
            if rank > need:
                need, who = rank, j
            keeps_fields = keeps_fields or (rules[j].omit_managed_fields is False and rank > 0)
            if subsumes(rules[j], rule, self.group_wildcard):
                break
        return need, who, keeps_fields

    def _try(self, before: int | None, misses: Sequence[_Miss]) -> _Built | str:
        """The best shape for the group, or why none is allowed."""
        best: _Built | None = None
        refusal = ""
        for shape in _shapes(misses, self.profile.min_level):
            need, who, keeps_fields = self._needed(before, shape)
            rank = max(self.min_rank, need)
            level = LEVELS[rank]
            rule = replace(shape, level=level)
            if keeps_fields and self.policy.omit_managed_fields:
                rule = replace(rule, omit_managed_fields=False)  # what it takes over kept managedFields
            sensitive = _touches_sensitive(rule, self.group_wildcard)
            if self.bounded and rank > LEVEL_RANK["Metadata"] and sensitive:
                refusal = (
                    f"a rule logging {', '.join(m.probe.id for m in misses)} {_where(before)} would have to log "
                    f"{', '.join(sensitive)} at {level}, because rule {who} ({self.policy.rules[who or 0].describe()}) "
                    f"logs some requests it would catch at {level} and the repair may lower no request's level; "
                    f"the {self.profile.name} profile does not require more than {self.profile.min_level}, and "
                    "bounded payloads forbid raising them above Metadata"
                )
                continue
            if rank > self.min_rank:
                why = (
                    f"level {level}, not {self.profile.min_level}: rule {who} "
                    f"({self.policy.rules[who or 0].describe()}) logs requests this rule now catches at {level}, "
                    "and the repair may lower no request's level"
                )
            else:
                why = f"level {level}, the {self.profile.name} profile's minimum"
            if best is None or LEVEL_RANK[best.rule.level] > rank:
                best = _Built(before, rule, tuple(misses), why)
        return best if best is not None else refusal

    def build(self, before: int | None, misses: Sequence[_Miss]) -> list[_Built]:
        """Rules for one group: merged if allowed, else split per resource, then per probe."""
        tried = self._try(before, misses)
        if isinstance(tried, _Built):
            return [tried]
        if len(misses) == 1:
            raise _Blocked(tried)
        keys: dict[str, list[_Miss]] = {}
        for m in misses:
            a = m.probe.attributes
            keys.setdefault(f"{a.api_group}/{_combined(a)}" if a.is_resource_request else a.path, []).append(m)
        parts = list(keys.values()) if len(keys) > 1 else [[m] for m in misses]
        out: list[_Built] = []
        for part in parts:
            out += self.build(before, part)
        return out


def _where(before: int | None) -> str:
    return "at the end of the policy" if before is None else f"before rule {before}"


def _logged(decision: Decision, probe: Probe, min_rank: int) -> bool:
    return (
        decision.level != "None"
        and not probe.stages <= decision.omit_stages
        and LEVEL_RANK[decision.level] >= min_rank
    )


def _stage_changes(
    policy: Policy, profile: Profile, probes: Sequence[tuple[Probe, str]]
) -> tuple[Policy, list[StageChange]]:
    """Step 2: required stages out of every omitStages; policy-level stages no rule can undo."""
    changes: list[StageChange] = []
    policy_stages = list(policy.omit_stages)
    removed_policy: list[str] = []
    reasons: list[str] = []
    required = [s for s in profile.required_stages if s in policy_stages]
    if required:
        removed_policy += required
        reasons.append(f"the {profile.name} profile requires stage {', '.join(required)}")
    for probe, category in probes:
        remaining = [s for s in policy_stages if s not in removed_policy]
        if probe.stages <= set(remaining):
            stage = "ResponseComplete" if "ResponseComplete" in probe.stages else sorted(probe.stages)[0]
            removed_policy.append(stage)
            what = "a failed login" if probe.attributes.user is None else f"probe {probe.id}"
            reasons.append(
                f"{what} ({category}) is audited only at {', '.join(sorted(probe.stages))}, and a policy-level "
                "omitStages entry cannot be undone by a rule (kube-apiserver adds it to every rule's)"
            )
    if removed_policy:
        changes.append(StageChange(rule=None, removed=tuple(removed_policy), why="; ".join(reasons)))
        policy = replace(policy, omit_stages=tuple(s for s in policy_stages if s not in removed_policy))
    rules = list(policy.rules)
    for i, rule in enumerate(rules):
        drop = tuple(s for s in profile.required_stages if s in rule.omit_stages)
        if drop and rule.level != "None":
            rules[i] = replace(rule, omit_stages=tuple(s for s in rule.omit_stages if s not in drop))
            changes.append(
                StageChange(rule=i, removed=drop, why=f"the {profile.name} profile requires stage {', '.join(drop)}")
            )
    return replace(policy, rules=tuple(rules)), changes


def _plan(
    policy: Policy, catalog: Catalog, profile: Profile, version: KubeVersion, targets: Sequence[str],
    cache: dict[Any, Any],
) -> tuple[Policy, list[StageChange], list[Insertion]]:
    """The repair for one choice of target categories.  ``cache`` is shared by the choices of
    one :func:`repair` call (decisions and rules of a staged policy do not depend on the choice)."""
    wanted = [c for c in catalog.categories if c.id in targets]
    probes = [(p, c.id) for c in wanted for p in c.probes]
    staged, changes = _stage_changes(policy, profile, probes)
    key = staged.omit_stages, tuple(r.omit_stages for r in staged.rules)
    if key not in cache:
        cache[key] = (Evaluator(staged, version), _Planner(staged, profile, version), {}, {})
    evaluator, planner, decisions, built_for = cache[key]
    min_rank = LEVEL_RANK[profile.min_level]
    groups: dict[tuple[int | None, bool], list[_Miss]] = {}
    for probe, category in probes:
        if probe.id not in decisions:
            decisions[probe.id] = evaluator.evaluate(probe.attributes)
        decision = decisions[probe.id]
        if _logged(decision, probe, min_rank):
            continue
        group = (decision.rule, probe.attributes.is_resource_request)
        groups.setdefault(group, []).append(_Miss(probe, category, decision.rule))
    built: list[_Built] = []
    for (before, _), misses in groups.items():
        ids = (before, tuple((m.probe.id, m.category) for m in misses))
        if ids not in built_for:
            try:
                built_for[ids] = planner.build(before, misses)
            except _Blocked as exc:
                built_for[ids] = exc
        result = built_for[ids]
        if isinstance(result, _Blocked):
            raise result
        built += result
    # Apply: insert just before each original index (end of policy for None), in order.
    end = len(staged.rules)
    built.sort(key=lambda b: (end if b.before is None else b.before))
    rules: list[PolicyRule] = []
    insertions: list[Insertion] = []
    queue = list(built)
    for i in range(end + 1):
        while queue and (end if queue[0].before is None else queue[0].before) == i:
            b = queue.pop(0)
            insertions.append(_insertion(b, len(rules), staged))
            rules.append(b.rule)
        if i < end:
            rules.append(staged.rules[i])
    return replace(staged, rules=tuple(rules), notes=()), changes, insertions


def _insertion(b: _Built, index: int, policy: Policy) -> Insertion:
    if b.before is None:
        why_here = "no rule matches them (the default level is None), so it goes at the end"
        short = "no rule matches them"
    else:
        hider = policy.rules[b.before]
        stages = set().union(*(m.probe.stages for m in b.misses))
        if hider.level == "None":
            what = "logs them at None"
        elif LEVEL_RANK[hider.level] >= 1 and stages <= set(policy.omit_stages) | set(hider.omit_stages):
            what = f"omits {', '.join(sorted(stages))}, the stage they are audited at"
        else:
            what = f"logs them at {hider.level}, below the profile's minimum"
        why_here = f"rule {b.before} ({hider.describe()}) matches them first and {what}"
        short = f"rule {b.before} matches them first and {what}"
    return Insertion(
        before=b.before,
        index=index,
        rule=b.rule,
        probes=_unique(m.probe.id for m in b.misses),
        categories=_unique(m.category for m in b.misses),
        why_here=why_here,
        why_level=b.why_level,
        hider=short,
        failed_login=any(m.probe.attributes.user is None for m in b.misses),
    )


# ------------------------------------------------------------------------- evidence


def _passes(policy: Policy, catalog: Catalog, profile: Profile, version: KubeVersion) -> tuple[bool, list[str]]:
    cov = assess(policy, catalog, profile, version, warnings=False)
    return not any(v.code in PROFILE_CODES for v in cov.violations), [c for c in cov.covered]


def loses_something(
    original: Policy, repaired: Policy, requests: Iterable[Attributes], version: KubeVersion = NEWEST
) -> list[str]:
    """Requests the repaired policy logs at a lower level, or with a stage omitted that the
    original did not omit (the "loses nothing" guarantee; empty when it holds)."""
    before, after = Evaluator(original, version), Evaluator(repaired, version)
    out = []
    for attrs in requests:
        old, new = before.evaluate(attrs), after.evaluate(attrs)
        if old.level == "None":
            continue  # nothing was logged, so nothing can be lost
        if LEVEL_RANK[new.level] < LEVEL_RANK[old.level]:
            out.append(f"{attrs}: level {old.level} -> {new.level}")
        elif new.omit_stages - old.omit_stages:
            out.append(f"{attrs}: newly omits {sorted(new.omit_stages - old.omit_stages)}")
        elif new.omit_managed_fields and not old.omit_managed_fields:
            out.append(f"{attrs}: newly omits managedFields")
    return out


def catalog_requests(catalog: Catalog) -> list[Attributes]:
    return [p.attributes for c in catalog.categories for p in c.probes] + [p.attributes for p in catalog.advisories]


# ------------------------------------------------------------------------- entry point


def repair(policy: Policy, catalog: Catalog, profile: Profile, version: KubeVersion = NEWEST) -> Repair:
    """The smallest repair this algorithm finds that makes ``policy`` pass ``profile``."""
    passes, covered = _passes(policy, catalog, profile, version)
    if passes:
        return Repair(needed=False, possible=True, original=policy, policy=policy)
    required = [c for c in profile.required_categories if c not in covered]
    optional = [c.id for c in catalog.categories if c.id not in covered and c.id not in profile.required_categories]
    short = max(0, profile.min_categories - len(covered) - len(required))
    blocked: list[str] = []
    cache: dict[Any, Any] = {}
    candidates: list[tuple[int, int, Policy, list[StageChange], list[Insertion]]] = []
    # Up to as many extra categories as are missing: a smaller choice can still pass when a stage
    # change or an inserted rule covers another category on the way.
    choices = [c for n in range(min(short, len(optional)) + 1) for c in combinations(optional, n)]
    for order, extra in enumerate(choices):
        try:
            repaired, changes, insertions = _plan(policy, catalog, profile, version, [*required, *extra], cache)
        except _Blocked as exc:
            if exc.reason not in blocked:
                blocked.append(exc.reason)
            continue
        candidates.append((len(changes) + len(insertions), order, repaired, changes, insertions))
    # The fewest changes first (ties: catalog order); the first that proves out is the repair.
    for _, _, repaired, changes, insertions in sorted(candidates, key=lambda c: (c[0], c[1])):
        ok, now = _passes(repaired, catalog, profile, version)
        if not ok:
            continue  # an incidental loss of a category already covered: the next choice
        lost = loses_something(policy, repaired, catalog_requests(catalog), version)
        if lost:  # the construction forbids this; refuse rather than show a lossy patch
            blocked.append(f"internal check failed, the candidate would lose {lost[0]}")
            continue
        return Repair(
            needed=True, possible=True, original=policy, policy=repaired,
            insertions=tuple(insertions), stage_changes=tuple(changes),
            categories=tuple(c for c in now if c not in covered),
        )  # fmt: skip
    if not blocked:
        blocked.append(
            f"no choice of categories reaches the {profile.name} profile's {profile.min_categories} categories"
        )
    return Repair(needed=True, possible=False, original=policy, policy=None, blocked=tuple(blocked))


def fix_sentence(rep: Repair, limit: int = 700) -> str:
    """The repair in one sentence for a denial (``add before rule 0: - level: Metadata, …``),
    at most about ``limit`` characters; what does not fit is counted and left to ``auditwarden fix``."""
    if not rep.needed:
        return ""
    if not rep.possible:
        return f"Fix: no repair within auditwarden fix's constraints: {rep.blocked[0]}."
    parts: list[str] = []
    by_removed: dict[tuple[str, ...], list[int]] = {}
    for c in rep.stage_changes:
        if c.rule is None:
            parts.append(f"remove {', '.join(c.removed)} from the policy's omitStages")
        else:
            by_removed.setdefault(c.removed, []).append(c.rule)
    for removed, rules in by_removed.items():
        which = f"rule {rules[0]}" if len(rules) == 1 else f"rules {', '.join(str(r) for r in rules)}"
        parts.append(f"remove {', '.join(removed)} from the omitStages of {which}")
    parts += [f"add {i.where}: - {rule_flow(i.rule)[1:-1]}" for i in rep.insertions]
    shown: list[str] = []
    for n, part in enumerate(parts):
        if shown and len("; ".join([*shown, part])) > limit:
            shown.append(f"and {len(parts) - n} more (run auditwarden fix)")
            break
        shown.append(part)
    return "Fix: " + "; ".join(shown) + " (auditwarden fix --write applies this)."
