"""``auditwarden fix``'s core (webhook/core/repair.py): the smallest repair, proven.

Guarantees, each checked on every repair (tests/support/repairs.py ``check_repair``):
passes the profile; loses nothing (no request logged at a lower level or with a newly
omitted stage, on the catalog's probes and on requests drawn from the policy's own words);
bounded payloads (Secrets, ConfigMaps, TokenReviews, ServiceAccount tokens never raised above
Metadata unless the profile's minimum is higher); original rules kept in order, changed only by
losing omitStages entries; inserted rules name no users/userGroups and omit no stages.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.repairs import check_repair, corpus_policies, profile_violations, request_set
from webhook.context import packaged_catalog
from webhook.core.categories import Catalog
from webhook.core.policy import Policy, decode_policy, load_policy
from webhook.core.repair import Repair, repair, rule_flow

CATALOG = packaged_catalog()
PROFILES = ("baseline", "strict", "stig")


def policy(text: str) -> Policy:
    return load_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\n" + text)


def fixed(p: Policy, profile: str = "baseline", catalog: Catalog = CATALOG) -> Repair:
    r = repair(p, catalog, catalog.profiles[profile])
    if r.possible and r.needed:
        problems = check_repair(r, catalog, catalog.profiles[profile], request_set(p, catalog))
        assert not problems, problems
    return r


# ---------------------------------------------------------------- worked examples


def test_the_readme_example_gets_narrow_rules_inserted_before_the_none_rule_that_hides_them() -> None:
    # README "Try it": rule 0 hides every read, rule 1 logs pods at RequestResponse.
    p = policy("rules:\n- level: None\n  verbs: [get, list, watch]\n- level: RequestResponse\n"
               "  resources: [{group: '', resources: [pods]}]\n")
    r = fixed(p)
    assert r.needed and r.possible
    first = r.insertions[0]
    # Reads of pods were hidden by rule 0: the rule before it names the hidden verbs, so it steals
    # nothing from rule 1's RequestResponse and can stay at Metadata (the profile's minimum).
    assert first.before == 0 and first.rule.level == "Metadata"
    assert set(first.rule.verbs) <= {"get", "list", "watch"} and first.rule.verbs
    assert "pods" in first.rule.resources[0].resources
    # What no rule matches at all goes at the end, after every user rule.
    assert {i.before for i in r.insertions} <= {0, None}
    assert not profile_violations(r.policy, CATALOG, CATALOG.profiles["baseline"])  # type: ignore[arg-type]


def test_a_policy_that_passes_needs_no_repair() -> None:
    r = fixed(policy("rules:\n- level: Metadata\n"), "strict")
    assert not r.needed and r.possible and r.policy == r.original


def test_a_catch_all_none_policy_is_repaired_with_rules_before_it_at_the_minimum_level() -> None:
    r = fixed(policy("rules:\n- level: None\n"))
    assert r.possible and r.insertions and all(i.before == 0 for i in r.insertions)
    assert all(i.rule.level == "Metadata" for i in r.insertions)


def test_an_empty_tail_gets_rules_appended_at_the_end() -> None:
    r = fixed(policy("rules:\n- level: Metadata\n  resources: [{group: '', resources: [pods]}]\n"))
    assert r.possible and {i.before for i in r.insertions} == {None}
    assert "no rule matches them" in r.insertions[0].why_here


def test_failed_logins_get_a_rule_without_users_and_the_reason_is_said() -> None:
    # userGroups [system:unauthenticated] does not catch a 401: the request has no user at all.
    p = policy("rules:\n- level: Metadata\n  userGroups: [system:unauthenticated]\n- level: None\n")
    r = fixed(p, "strict")
    logins = [i for i in r.insertions if i.failed_login]
    assert logins, r.lines()
    assert all(not i.rule.users and not i.rule.user_groups for i in logins)
    assert "system:unauthenticated" in logins[0].explain()


def test_a_policy_level_response_started_omission_is_removed_with_the_reason() -> None:
    p = policy("omitStages: [ResponseStarted]\nrules:\n- level: Metadata\n")
    r = fixed(p, "strict")
    assert r.possible
    change = next(c for c in r.stage_changes if c.rule is None)
    assert "ResponseStarted" in change.removed
    assert r.policy is not None and "ResponseStarted" not in r.policy.omit_stages


def test_a_failed_login_hidden_by_policy_level_omit_stages_says_no_rule_can_undo_it() -> None:
    # A profile that needs authentication but no particular stage: the entry goes only because
    # failed logins are audited at ResponseStarted alone, and the repair says so.
    profile = replace(CATALOG.profiles["baseline"], name="auth", required_categories=("authentication",))
    catalog = replace(CATALOG, profiles={**CATALOG.profiles, "auth": profile})
    p = policy("omitStages: [ResponseStarted]\nrules:\n- level: Metadata\n")
    r = fixed(p, "auth", catalog)
    assert r.possible and not r.insertions
    (change,) = r.stage_changes
    assert change.rule is None and change.removed == ("ResponseStarted",)
    assert "a failed login" in change.why and "cannot be undone by a rule" in change.why


def test_strict_removes_required_stages_from_logging_rules_only() -> None:
    p = policy("rules:\n- level: None\n  omitStages: [RequestReceived]\n  users: [system:kube-proxy]\n"
               "- level: Metadata\n  omitStages: [RequestReceived]\n")
    r = fixed(p, "strict")
    assert [c.rule for c in r.stage_changes] == [1]
    assert r.policy is not None and r.policy.rules[0].omit_stages == ("RequestReceived",)


def test_a_later_request_response_rule_raises_the_inserted_rule_level_so_nothing_is_lost() -> None:
    # Rule 0 hides jane's pod requests; any rule before it matches other users' too, which rule 1
    # logs at RequestResponse: the inserted rule must log at RequestResponse as well.
    p = policy("rules:\n- level: None\n  users: [jane]\n  resources: [{group: '', resources: [pods]}]\n"
               "- level: RequestResponse\n")
    r = fixed(p, "strict")
    pods = next(i for i in r.insertions if any("pods" in gr.resources for gr in i.rule.resources))
    assert pods.rule.level == "RequestResponse" and "lower no request's level" in pods.why_level


def test_an_inserted_rule_keeps_managed_fields_that_a_later_rule_it_takes_from_kept() -> None:
    p = policy("omitManagedFields: true\nrules:\n- level: None\n  users: [jane]\n"
               "- level: RequestResponse\n  omitManagedFields: false\n  resources: [{group: '', resources: [pods]}]\n")
    r = fixed(p, "strict")
    pods = next(i for i in r.insertions if any("pods" in gr.resources for gr in i.rule.resources))
    assert pods.rule.omit_managed_fields is False and "omitManagedFields: false" in rule_flow(pods.rule)


def test_bounded_payloads_block_a_repair_and_the_reason_names_the_rule_that_forces_it() -> None:
    # A profile that requires secret-access at Metadata; these users' secrets are hidden by rule 0,
    # and rule 1 logs everyone else's at RequestResponse: a rule catching them before rule 0 would
    # have to log them at RequestResponse (or lower rule 1's level for some) — not allowed.
    profile = replace(CATALOG.profiles["baseline"], name="secrets", required_categories=("secret-access",))
    catalog = replace(CATALOG, profiles={**CATALOG.profiles, "secrets": profile})
    p = policy("rules:\n- level: None\n  users: [jane, 'system:serviceaccount:monitoring:agent']\n"
               "  resources: [{group: '', resources: [secrets]}]\n"
               "- level: RequestResponse\n  resources: [{group: ''}]\n")
    r = repair(p, catalog, profile)
    assert not r.possible and r.policy is None
    assert any("bounded payloads" in b and "rule 1" in b for b in r.blocked), r.blocked


def test_stig_may_raise_secrets_because_it_requires_request_response() -> None:
    r = fixed(policy("rules:\n- level: Metadata\n  resources: [{group: '', resources: [secrets]}]\n"
                     "- level: RequestResponse\n"), "stig")
    assert r.possible and any("secrets" in rule_flow(i.rule) for i in r.insertions)


def test_inserted_rules_carry_one_line_explanations_naming_probes_and_position() -> None:
    r = fixed(policy("rules:\n- level: None\n  verbs: [get, list, watch]\n- level: Metadata\n"))
    for line in r.lines():
        assert "\n" not in line
    first = r.insertions[0].explain()
    assert first.startswith("before rule 0:") and "rule 0 (level None" in first


# ---------------------------------------------------------------- corpus


CORPUS = list(corpus_policies())


def test_the_corpus_holds_the_policies_the_table_counts() -> None:
    # 21 policy files, the Talos excerpt, the kops fileAssets policy and the ConfigMap-wrapped ones
    # that load (three corpus policies do not load in kube-apiserver; fix refuses those).
    assert len(CORPUS) >= 24


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize(("name", "p"), CORPUS, ids=[n for n, _ in CORPUS])
def test_every_corpus_policy_that_fails_gets_a_repair_that_passes_and_loses_nothing(
    name: str, p: Policy, profile: str
) -> None:
    r = fixed(p, profile)
    assert r.possible, (name, r.blocked)
    if profile_violations(p, CATALOG, CATALOG.profiles[profile]):
        assert r.needed and r.changed_rules >= 1


# ---------------------------------------------------------------- generated policies

VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
GROUPS = ["", "apps", "rbac.authorization.k8s.io", "authentication.k8s.io"]
RESOURCES = ["pods", "secrets", "configmaps", "deployments", "namespaces", "roles", "clusterrolebindings",
             "serviceaccounts/token", "pods/exec", "pods/*", "*", "*/exec", "tokenreviews"]
USERS = ["jane", "system:kube-proxy", "system:serviceaccount:ci:deployer", "system:anonymous"]
USER_GROUPS = ["system:authenticated", "system:unauthenticated", "system:serviceaccounts", "system:nodes"]
NAMESPACES = ["", "default", "kube-system", "ci"]
URLS = ["/api", "/api*", "/healthz*", "*", "/version"]
STAGES = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]
LEVELS = ["None", "None", "Metadata", "Request", "RequestResponse"]


def _sub(values: list[str], max_size: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=max_size, unique=True)


@st.composite
def valid_rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {"level": draw(st.sampled_from(LEVELS))}
    for key, values in (("users", USERS), ("userGroups", USER_GROUPS), ("verbs", VERBS)):
        if draw(st.integers(0, 3)) == 0:
            rule[key] = draw(_sub(values))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        rule["nonResourceURLs"] = draw(_sub(URLS))
    elif kind in (1, 2):
        grs = []
        for _ in range(draw(st.integers(1, 2))):
            gr: dict[str, Any] = {"group": draw(st.sampled_from(GROUPS))}
            if draw(st.integers(0, 4)):
                gr["resources"] = draw(_sub(RESOURCES))
            grs.append(gr)
        rule["resources"] = grs
        if draw(st.integers(0, 3)) == 0:
            rule["namespaces"] = draw(_sub(NAMESPACES))
    if draw(st.integers(0, 3)) == 0:
        rule["omitStages"] = draw(_sub(STAGES, 2))
    if draw(st.integers(0, 5)) == 0:
        rule["omitManagedFields"] = draw(st.booleans())
    return rule


@st.composite
def valid_policies(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy"}
    if draw(st.integers(0, 3)) == 0:
        doc["omitStages"] = draw(_sub(STAGES, 2))
    if draw(st.integers(0, 3)) == 0:
        doc["omitManagedFields"] = True
    doc["rules"] = draw(st.lists(valid_rules(), min_size=1, max_size=7))
    return doc


STATS: dict[str, int] = {"policies": 0, "needed": 0, "repaired": 0, "blocked": 0}


def _property(doc: dict[str, Any], profile: str) -> None:
    p = decode_policy(doc)
    prof = CATALOG.profiles[profile]
    r = repair(p, CATALOG, prof)
    STATS["policies"] += 1
    if not r.needed:
        assert not profile_violations(p, CATALOG, prof)
        return
    STATS["needed"] += 1
    if not r.possible:
        STATS["blocked"] += 1
        assert r.blocked and all(b for b in r.blocked), "no repair, and no reason given"
        return
    STATS["repaired"] += 1
    problems = check_repair(r, CATALOG, prof, request_set(p, CATALOG, count=300, seed=len(STATS)))
    assert not problems, (problems, yaml.safe_dump(doc, sort_keys=False), r.lines())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(doc=valid_policies(), profile=st.sampled_from(PROFILES))
def test_generated_policies_fast_sample(doc: dict[str, Any], profile: str) -> None:
    """A small, fast sample of the property below (the inner loop)."""
    _property(doc, profile)


EXAMPLES = int(os.environ.get("AUDITWARDEN_REPAIR_EXAMPLES", "1200"))


@pytest.mark.e2e
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          database=None)
@given(doc=valid_policies(), profile=st.sampled_from(PROFILES))
def test_generated_policies_are_repaired_so_that_they_pass_and_lose_nothing(doc: dict[str, Any], profile: str) -> None:
    """At least 1,000 generated policies: when a repair exists it passes and loses nothing;
    when none does, the reason is stated."""
    _property(doc, profile)


@pytest.mark.e2e
def test_the_generated_run_was_not_vacuous() -> None:
    """Runs after the property test in file order."""
    assert STATS["policies"] >= min(EXAMPLES, 1000) + 0
    assert STATS["repaired"] >= STATS["policies"] // 4, STATS
    print(f"repair property: {STATS}")
