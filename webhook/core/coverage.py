"""Category coverage: does a policy record the events that matter?

Each category of the catalog is defined by probe requests.  The policy is evaluated for
every probe exactly as kube-apiserver would (:class:`~webhook.core.checker.Evaluator`); a
probe is *logged* when the matching rule's level is not None and at least one stage at
which its event is emitted is not omitted.  A category is *covered* when all its probes are
logged at the profile's minimum level or higher.  The report names, for every probe that
is not, the rule that hid it.

Besides the profile's verdict, this module produces warnings that never deny by
themselves: advisory probes, secret payloads in the log, failed logins made invisible by
``omitStages``, and rules that can never match.
"""

from __future__ import annotations

from dataclasses import dataclass

from webhook.core.builtin import NO_BUILTIN_API, BuiltinAPI
from webhook.core.categories import Catalog, Probe, Profile
from webhook.core.checker import Attributes, Decision, Evaluator, User
from webhook.core.findings import Code, Finding
from webhook.core.nevermatch import never_matches
from webhook.core.policy import LEVEL_RANK, GroupResources, Policy, PolicyRule
from webhook.core.versions import GROUP_WILDCARD, NEWEST, KubeVersion


@dataclass(frozen=True, kw_only=True)
class Miss:
    """A probe the policy does not log well enough, and the rule that hid it."""

    probe: str
    rule: int | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class CategoryResult:
    """One category's outcome: covered (at ``level``, the lowest level of its probes) or not."""

    id: str
    covered: bool
    level: str | None
    missed: tuple[Miss, ...] = ()


@dataclass
class Coverage:
    profile: Profile
    categories: dict[str, CategoryResult]
    violations: list[Finding]
    warnings: list[Finding]

    @property
    def covered(self) -> list[str]:
        return [cid for cid, r in self.categories.items() if r.covered]

    @property
    def covered_count(self) -> int:
        return len(self.covered)

    @property
    def summary(self) -> str:
        names = ", ".join(self.covered)
        listed = f" ({names})" if names else ""
        return (
            f"Audit policy covers {self.covered_count} of {len(self.categories)} event categories"
            f"{listed} at {self.profile.min_level} level or higher."
        )


def rule_label(policy: Policy, index: int | None) -> str:
    if index is None:
        return "no rule matched"
    return f"rule {index} ({policy.rules[index].describe()}) matched first"


def _logged(decision: Decision, probe: Probe) -> bool:
    return decision.level != "None" and not probe.stages <= decision.omit_stages


def _why_not(policy: Policy, decision: Decision, probe: Probe, min_level: str) -> str:
    if decision.rule is None:
        return "no rule matched (the default level is None)"
    label = rule_label(policy, decision.rule)
    if decision.level == "None":
        return label
    if probe.stages <= decision.omit_stages:
        omitted = ", ".join(sorted(probe.stages))
        return f"{label}, but its omitStages drop {omitted}, the stage this event is emitted at"
    return f"{label}, which logs it at {decision.level}, below the required {min_level}"


def assess(
    policy: Policy,
    catalog: Catalog,
    profile: Profile,
    version: KubeVersion = NEWEST,
    api: BuiltinAPI = NO_BUILTIN_API,
    *,
    warnings: bool = True,
) -> Coverage:
    """Evaluate every probe, decide the profile's verdict, and collect warnings (unless ``warnings`` is False).

    ``api``, the table of built-in resources, enables the warnings on rule entries that can never
    match (:mod:`webhook.core.nevermatch`).
    """
    evaluator = Evaluator(policy, version)
    min_rank = LEVEL_RANK[profile.min_level]
    results: dict[str, CategoryResult] = {}
    for category in catalog.categories:
        missed: list[Miss] = []
        lowest: int | None = None
        for probe in category.probes:
            decision = evaluator.evaluate(probe.attributes)
            rank = LEVEL_RANK[decision.level]
            if _logged(decision, probe) and rank >= min_rank:
                lowest = rank if lowest is None else min(lowest, rank)
            else:
                reason = _why_not(policy, decision, probe, profile.min_level)
                missed.append(Miss(probe=probe.id, rule=decision.rule, reason=reason))
        covered = not missed
        level = None if not covered or lowest is None else _level_name(lowest)
        results[category.id] = CategoryResult(id=category.id, covered=covered, level=level, missed=tuple(missed))

    coverage = Coverage(profile, results, [], [])
    _profile_violations(policy, coverage)
    if warnings:
        coverage.warnings.extend(_warnings(policy, evaluator, catalog, version))
        coverage.warnings.extend(never_matches(policy, api))
    return coverage


def _level_name(rank: int) -> str:
    return next(name for name, r in LEVEL_RANK.items() if r == rank)


def _first_miss(result: CategoryResult, *, named: bool = True) -> str:
    m = result.missed[0]
    more = f" (+{len(result.missed) - 1} more probes)" if len(result.missed) > 1 else ""
    text = f"probe {m.probe}: {m.reason}{more}"
    return f"{result.id}: {text}" if named else text


#: The generic advice; analysis replaces it with the concrete rules of :func:`webhook.core.repair.repair`.
FIX_HINT = "Fix: add rules (before any broader None rule) that log these requests."
PROFILE_CODES: frozenset[str] = frozenset({"categories-below-minimum", "category-required", "stage-omitted"})


def _profile_violations(policy: Policy, coverage: Coverage) -> None:
    profile = coverage.profile
    uncovered = [r for r in coverage.categories.values() if not r.covered]
    if coverage.covered_count < profile.min_categories:
        coverage.violations.append(
            Finding(
                "categories-below-minimum",
                f"the policy covers {coverage.covered_count} of {len(coverage.categories)} event "
                f"categories at {profile.min_level} level or higher; the {profile.name} profile requires "
                f"at least {profile.min_categories}. {FIX_HINT} Not covered: "
                + "; ".join(_first_miss(r) for r in uncovered)
                + ".",
                uncovered[0].missed[0].rule if uncovered else None,
            )
        )
    for cid in profile.required_categories:
        result = coverage.categories[cid]
        if not result.covered:
            coverage.violations.append(
                Finding(
                    "category-required",
                    f"the {profile.name} profile requires category {cid}, which is not covered: "
                    f"{_first_miss(result, named=False)}",
                    result.missed[0].rule,
                )
            )
    for stage in profile.required_stages:
        places = []
        if stage in policy.omit_stages:
            places.append("the policy's omitStages")
        places += [
            f"rule {i}" for i, r in enumerate(policy.rules) if r.level != "None" and stage in r.omit_stages
        ]
        if places:
            coverage.violations.append(
                Finding(
                    "stage-omitted",
                    f"the {profile.name} profile requires stage {stage}, which is omitted by "
                    f"{', '.join(places)}. Fix: remove {stage} from omitStages.",
                    None if stage in policy.omit_stages else int(places[0].split()[1]),
                )
            )


# ------------------------------------------------------------------------- warnings

_jane = User("jane", ("system:authenticated",))
_sa = User(
    "system:serviceaccount:monitoring:agent",
    ("system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"),
)


def _namespaced(user: User, verb: str, namespace: str, resource: str, name: str = "") -> Attributes:
    """A core/v1 request on a namespaced resource (a collection when ``name`` is empty)."""
    path = f"/api/v1/namespaces/{namespace}/{resource}" + (f"/{name}" if name else "")
    return Attributes(user, verb, namespace, "", "v1", resource, "", name, path)


# Requests whose bodies carry secret material at Request/RequestResponse level.
_SENSITIVE_PROBES = [
    _namespaced(_jane, "get", "default", "secrets", "db-password"),
    _namespaced(_jane, "update", "default", "secrets", "db-password"),
    _namespaced(_jane, "create", "default", "secrets"),
    _namespaced(_sa, "list", "kube-system", "secrets"),
    _namespaced(_jane, "get", "default", "configmaps", "settings"),
    _namespaced(_jane, "update", "default", "configmaps", "settings"),
]


def _warnings(policy: Policy, evaluator: Evaluator, catalog: Catalog, version: KubeVersion) -> list[Finding]:
    out: list[Finding] = []
    for note in policy.notes:
        code: Code = "policy-deprecated-version" if note.startswith("apiVersion") else "policy-unknown-field"
        out.append(Finding(code, note))
    for probe in catalog.advisories:
        decision = evaluator.evaluate(probe.attributes)
        if not _logged(decision, probe):
            out.append(
                Finding(
                    "advisory-not-logged",
                    f"{probe.warning} ({probe.id}: {_why_not(policy, decision, probe, 'Metadata')})",
                    decision.rule,
                )
            )
    flagged: dict[str, tuple[str, int | None]] = {}
    for attrs in _SENSITIVE_PROBES:
        decision = evaluator.evaluate(attrs)
        if LEVEL_RANK[decision.level] >= LEVEL_RANK["Request"] and attrs.resource not in flagged:
            flagged[attrs.resource] = (decision.level, decision.rule)
    for resource, (level, rule) in flagged.items():
        out.append(
            Finding(
                "sensitive-payload",
                f"{resource} are logged at {level} by rule {rule}: their contents (passwords, tokens) are "
                f"written to the audit log. Log {resource} at Metadata.",
                rule,
            )
        )
    # Failed authentication is only ever audited at ResponseStarted (filters/authn_audit.go).
    hiders = []
    if "ResponseStarted" in policy.omit_stages:
        hiders.append("the policy's omitStages")
    hiders += [
        f"rule {i}"
        for i, r in enumerate(policy.rules)
        if r.level != "None" and "ResponseStarted" in r.omit_stages and not r.users and not r.user_groups
    ]
    if hiders:
        out.append(
            Finding(
                "response-started-omitted",
                f"{', '.join(hiders)} omit ResponseStarted: failed-authentication events (emitted only at "
                "that stage) disappear from the audit log.",
            )
        )
    if len(policy.rules) > SHADOW_CHECK_MAX_RULES:
        out.append(
            Finding(
                "shadowed-rule-check-skipped",
                f"the policy has {len(policy.rules)} rules; the check for rules that can never match runs "
                f"only up to {SHADOW_CHECK_MAX_RULES}",
            )
        )
    for i, j in shadowed_rules(policy, version >= GROUP_WILDCARD):
        out.append(
            Finding(
                "shadowed-rule",
                f"rule {j} ({policy.rules[j].describe()}) can never match: rule {i} "
                f"({policy.rules[i].describe()}) matches every request it would.",
                j,
            )
        )
    return out


# ------------------------------------------------------------- rule subsumption (sound)


@dataclass(frozen=True, slots=True)
class _Sets:
    users: frozenset[str]
    groups: frozenset[str]
    verbs: frozenset[str]
    namespaces: frozenset[str]

    @staticmethod
    def of(rule: PolicyRule) -> _Sets:
        return _Sets(
            frozenset(rule.users), frozenset(rule.user_groups), frozenset(rule.verbs), frozenset(rule.namespaces)
        )


def _subset_or_any(inner: frozenset[str], outer: frozenset[str]) -> bool:
    """A list matcher ``outer`` accepts everything ``inner`` accepts (empty = everything)."""
    return not outer or (bool(inner) and inner <= outer)


# The pairwise check is quadratic; beyond this many rules it is skipped (a warning says so).
SHADOW_CHECK_MAX_RULES = 1000


def shadowed_rules(policy: Policy, group_wildcard: bool = True) -> list[tuple[int, int]]:
    """Pairs (earlier, later) where rule ``later`` can never match because of ``earlier``."""
    if len(policy.rules) > SHADOW_CHECK_MAX_RULES:
        return []
    sets = [_Sets.of(r) for r in policy.rules]
    out = []
    for j, later in enumerate(policy.rules):
        for i in range(j):
            if _subsumes(policy.rules[i], sets[i], later, sets[j], group_wildcard):
                out.append((i, j))
                break
    return out


def subsumes(first: PolicyRule, later: PolicyRule, group_wildcard: bool = True) -> bool:
    """True only when every request ``later`` matches is matched by ``first`` (conservative)."""
    return _subsumes(first, _Sets.of(first), later, _Sets.of(later), group_wildcard)


def _subsumes(first: PolicyRule, fs: _Sets, later: PolicyRule, ls: _Sets, group_wildcard: bool) -> bool:
    """True only when *every* request ``later`` matches is already matched by ``first``.

    Conservative: when in doubt, False (so a "shadowed" warning is always right).
    """
    if not _subset_or_any(ls.users, fs.users):
        return False
    if not _subset_or_any(ls.groups, fs.groups):
        return False
    if not _subset_or_any(ls.verbs, fs.verbs):
        return False
    first_res = bool(first.namespaces or first.resources)
    later_res = bool(later.namespaces or later.resources)
    if not first_res and not first.non_resource_urls:
        return True  # first matches resource and non-resource requests alike
    if first.non_resource_urls:
        if later_res or not later.non_resource_urls:
            return False
        return all(
            any(_url_covers(spec, url) for spec in first.non_resource_urls) for url in later.non_resource_urls
        )
    # first takes the resource branch: later must too.
    if not later_res:
        return False
    if not _subset_or_any(ls.namespaces, fs.namespaces):
        return False
    if not first.resources:
        return True
    if not later.resources:
        return False
    return all(_gr_covered(gr, first.resources, group_wildcard) for gr in later.resources)


def _url_covers(spec: str, url: str) -> bool:
    if spec in ("*", url):
        return True
    if not spec.endswith("*"):
        return False
    prefix = spec.rstrip("*")
    if url == "*":
        return prefix == ""
    return url.rstrip("*").startswith(prefix)


def _res_covers(outer: str, inner: str) -> bool:
    if outer in ("*", inner):
        return True
    base, _, sub = inner.partition("/")
    if outer.endswith("/*") and outer[:-2] == base and base != "*":
        return True
    return bool(outer.startswith("*/") and sub and sub == outer[2:])


def _gr_covered(gr: GroupResources, firsts: tuple[GroupResources, ...], group_wildcard: bool) -> bool:
    for f in firsts:
        if f.group != gr.group and not (group_wildcard and f.group == "*"):
            continue
        if not f.resources:
            return True
        if not gr.resources:
            if any(r == "*" for r in f.resources) and not f.resource_names:
                return True
            continue
        if not _subset_or_any(frozenset(gr.resource_names), frozenset(f.resource_names)):
            continue
        if all(any(_res_covers(o, i) for o in f.resources) for i in gr.resources):
            return True
    return False
