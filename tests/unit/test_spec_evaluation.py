"""Evaluating a policy against a request, and the category coverage built on it.

Evaluation follows kube-apiserver's policy checker (upstream:
staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go, with the request attributes of
pkg/endpoints/request/requestinfo.go and the stages of pkg/endpoints/filters/audit.go).  Coverage
follows the category spec (tests/data/spec/categories.yaml) through ``webhook.core.coverage.assess``.
"""

from __future__ import annotations

from typing import Any

import pytest

from webhook.context import packaged_catalog
from webhook.core.checker import Attributes, Decision, Evaluator, User
from webhook.core.coverage import Coverage, assess, shadowed_rules
from webhook.core.policy import Policy, decode_policy
from webhook.core.versions import NEWEST, KubeVersion
from webhook.report import category_json

JANE = User("jane", ("system:authenticated",))
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
KUBE_PROXY = User("system:kube-proxy", ("system:authenticated",))
CATEGORIES = ["authentication", "api-calls", "rbac-denials", "pod-creation", "secret-access", "rbac-changes"]


def policy(*rules: dict[str, Any], version: KubeVersion = NEWEST, **top: Any) -> Policy:
    return decode_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules), **top}, version)


def request(
    verb: str = "get",
    resource: str = "pods",
    *,
    namespace: str = "default",
    group: str = "",
    subresource: str = "",
    name: str = "",
    user: User | None = JANE,
) -> Attributes:
    return Attributes(
        user=user,
        verb=verb,
        namespace=namespace,
        api_group=group,
        resource=resource,
        subresource=subresource,
        name=name,
        is_resource_request=True,
    )


def non_resource(path: str, verb: str = "get", user: User | None = JANE) -> Attributes:
    return Attributes(user=user, verb=verb, path=path, is_resource_request=False)


def evaluate(p: Policy, attrs: Attributes, version: KubeVersion = NEWEST) -> Decision:
    return Evaluator(p, version).evaluate(attrs)


def level(p: Policy, attrs: Attributes, version: KubeVersion = NEWEST) -> str:
    return evaluate(p, attrs, version).level


def core(*resources: str, names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    gr: dict[str, Any] = {"group": "", "resources": list(resources)}
    if names:
        gr["resourceNames"] = list(names)
    return [gr]


# ================================================================ §2.1 first match wins


def test_the_first_matching_rule_decides() -> None:
    p = policy({"level": "Request", "resources": core("pods")}, {"level": "RequestResponse"})
    d = evaluate(p, request())
    assert (d.level, d.rule) == ("Request", 0)


def test_a_later_rule_decides_only_when_no_earlier_rule_matches() -> None:
    p = policy({"level": "Request", "resources": core("secrets")}, {"level": "Metadata"})
    d = evaluate(p, request())
    assert (d.level, d.rule) == ("Metadata", 1)


def test_when_no_rule_matches_the_level_is_none() -> None:
    d = evaluate(policy({"level": "Metadata", "resources": core("secrets")}), request())
    assert (d.level, d.rule) == ("None", None)


def test_when_no_rule_matches_the_omit_stages_are_the_policy_ones() -> None:
    p = policy({"level": "Metadata", "users": ["bob"]}, omitStages=["RequestReceived"])
    assert evaluate(p, request()).omit_stages == frozenset({"RequestReceived"})


def test_a_bare_none_rule_first_silences_everything_after_it() -> None:
    p = policy({"level": "None"}, {"level": "RequestResponse"})
    assert level(p, request()) == "None"
    assert level(p, non_resource("/healthz")) == "None"
    assert level(p, request(user=None)) == "None"


# ================================================= §2.5 catch-all and non-resource requests


def test_a_catch_all_rule_matches_resource_requests() -> None:
    assert level(policy({"level": "Metadata"}), request("create", "deployments", group="apps")) == "Metadata"


def test_a_catch_all_rule_matches_non_resource_requests() -> None:
    assert level(policy({"level": "Metadata"}), non_resource("/metrics")) == "Metadata"


def test_a_verbs_only_rule_matches_non_resource_requests_too() -> None:
    assert level(policy({"level": "Metadata", "verbs": ["get"]}), non_resource("/version")) == "Metadata"


# ============================================================ §2.2 users and userGroups


def test_a_rule_with_users_matches_a_listed_user() -> None:
    assert level(policy({"level": "Metadata", "users": ["jane"]}), request()) == "Metadata"


def test_a_rule_with_users_does_not_match_another_user() -> None:
    assert level(policy({"level": "Metadata", "users": ["bob"]}), request()) == "None"


def test_user_names_are_compared_case_sensitively() -> None:
    assert level(policy({"level": "Metadata", "users": ["Jane"]}), request()) == "None"


def test_a_star_in_users_is_a_literal_name_not_a_wildcard() -> None:
    assert level(policy({"level": "Metadata", "users": ["*"]}), request()) == "None"


def test_a_rule_with_user_groups_matches_when_any_group_of_the_user_is_listed() -> None:
    sa = User("system:serviceaccount:ci:deployer", ("system:serviceaccounts", "system:authenticated"))
    p = policy({"level": "Metadata", "userGroups": ["system:nodes", "system:serviceaccounts"]})
    assert level(p, request(user=sa)) == "Metadata"


def test_a_rule_with_user_groups_does_not_match_a_user_outside_them() -> None:
    assert level(policy({"level": "Metadata", "userGroups": ["system:nodes"]}), request()) == "None"


def test_a_rule_with_users_never_matches_a_request_without_user() -> None:
    # failed authentication: filters/authn_audit.go evaluates the policy with no user
    assert level(policy({"level": "Metadata", "users": [""]}), request(user=None)) == "None"


def test_a_rule_with_user_groups_never_matches_a_request_without_user() -> None:
    assert level(policy({"level": "Metadata", "userGroups": ["system:unauthenticated"]}), request(user=None)) == "None"


def test_the_unauthenticated_group_is_the_anonymous_user_not_failed_logins() -> None:
    p = policy({"level": "Metadata", "userGroups": ["system:unauthenticated"]})
    assert level(p, request(user=ANONYMOUS)) == "Metadata"
    assert level(p, request(user=None)) == "None"


def test_a_rule_without_users_or_groups_matches_a_request_without_user() -> None:
    assert level(policy({"level": "Metadata", "verbs": ["list"]}), request("list", user=None)) == "Metadata"


# ==================================================================== §2.2 verbs


def test_a_rule_with_verbs_matches_a_listed_verb() -> None:
    assert level(policy({"level": "Metadata", "verbs": ["get", "list"]}), request("list")) == "Metadata"


def test_a_rule_with_verbs_does_not_match_another_verb() -> None:
    assert level(policy({"level": "Metadata", "verbs": ["create"]}), request("get")) == "None"


def test_a_star_in_verbs_is_literal() -> None:
    assert level(policy({"level": "Metadata", "verbs": ["*"]}), request("get")) == "None"


def test_exec_over_websocket_is_verb_get_so_a_create_only_rule_misses_it() -> None:
    p = policy({"level": "Metadata", "verbs": ["create"], "resources": core("pods/exec")})
    assert level(p, request("create", subresource="exec", name="web-0")) == "Metadata"
    assert level(p, request("get", subresource="exec", name="web-0")) == "None"


# ====================================================== §2.3 resources: group and patterns


def test_a_resource_rule_never_matches_a_non_resource_request() -> None:
    assert level(policy({"level": "Metadata", "resources": core("*")}), non_resource("/api")) == "None"


def test_the_group_must_equal_the_request_group() -> None:
    p = policy({"level": "Metadata", "resources": core("deployments")})
    assert level(p, request("create", "deployments", group="apps")) == "None"


def test_an_omitted_group_is_the_core_group() -> None:
    p = policy({"level": "Metadata", "resources": [{"resources": ["pods"]}]})
    assert level(p, request()) == "Metadata"


def test_a_group_without_resources_matches_every_resource_and_subresource_of_the_group() -> None:
    p = policy({"level": "Metadata", "resources": [{"group": "apps"}]})
    assert level(p, request("create", "deployments", group="apps")) == "Metadata"
    assert level(p, request("update", "deployments", group="apps", subresource="scale")) == "Metadata"
    assert level(p, request()) == "None"


def test_plain_pods_matches_the_pods_resource() -> None:
    assert level(policy({"level": "Metadata", "resources": core("pods")}), request()) == "Metadata"


def test_plain_pods_does_not_match_pods_log() -> None:
    p = policy({"level": "Metadata", "resources": core("pods")})
    assert level(p, request(subresource="log", name="web-0")) == "None"


def test_pods_log_matches_the_log_subresource_but_not_plain_pods() -> None:
    p = policy({"level": "Metadata", "resources": core("pods/log")})
    assert level(p, request(subresource="log", name="web-0")) == "Metadata"
    assert level(p, request()) == "None"


def test_star_matches_every_resource_and_every_subresource_of_the_group() -> None:
    p = policy({"level": "Metadata", "resources": core("*")})
    assert level(p, request("list", "secrets")) == "Metadata"
    assert level(p, request(subresource="log", name="web-0")) == "Metadata"


def test_star_slash_sub_matches_that_subresource_of_any_resource() -> None:
    p = policy({"level": "Metadata", "resources": core("*/status")})
    assert level(p, request("update", "pods", subresource="status", name="a")) == "Metadata"
    assert level(p, request("update", "services", subresource="status", name="a")) == "Metadata"
    assert level(p, request("update", "pods", name="a")) == "None"
    assert level(p, request("get", "pods", subresource="log", name="a")) == "None"


def test_res_slash_star_matches_every_subresource_and_the_bare_resource_too() -> None:
    p = policy({"level": "Metadata", "resources": core("pods/*")})
    assert level(p, request(subresource="exec", name="web-0")) == "Metadata"
    assert level(p, request()) == "Metadata"
    assert level(p, request("get", "services")) == "None"


def test_star_slash_star_matches_nothing() -> None:
    p = policy({"level": "Metadata", "resources": core("*/*")})
    assert level(p, request()) == "None"
    assert level(p, request(subresource="log", name="web-0")) == "None"


def test_resource_names_are_case_sensitive_strings() -> None:
    assert level(policy({"level": "Metadata", "resources": core("Pods")}), request()) == "None"


def test_any_matching_group_resources_entry_is_enough() -> None:
    p = policy({"level": "Metadata", "resources": [{"group": "apps", "resources": ["deployments"]}, *core("pods")]})
    assert level(p, request()) == "Metadata"


def test_group_star_matches_every_group_from_1_36() -> None:
    # ClusterRoleUpdate case of checker_test.go (Kubernetes commit ea3bfd9e)
    p = policy({"level": "Metadata", "resources": [{"group": "*", "resources": ["*/status"]}]}, version=(1, 36))
    attrs = request("update", "clusterroles", namespace="", group="rbac.authorization.k8s.io", subresource="status")
    assert level(p, attrs, (1, 36)) == "Metadata"
    assert level(p, request("update", "pods", subresource="status"), (1, 36)) == "Metadata"


def test_group_star_with_no_resources_matches_everything_from_1_36() -> None:
    p = policy({"level": "Metadata", "resources": [{"group": "*"}]}, version=(1, 37))
    assert level(p, request("create", "deployments", group="apps")) == "Metadata"
    assert level(p, non_resource("/api")) == "None"


# ========================================================== §2.3 namespaces, names


def test_a_rule_with_namespaces_matches_a_request_in_a_listed_namespace() -> None:
    assert level(policy({"level": "Metadata", "namespaces": ["default"]}), request()) == "Metadata"


def test_a_rule_with_namespaces_does_not_match_another_namespace() -> None:
    assert level(policy({"level": "Metadata", "namespaces": ["kube-system"]}), request()) == "None"


def test_namespaces_empty_string_means_cluster_scoped_requests() -> None:
    p = policy({"level": "Metadata", "namespaces": [""]})
    assert level(p, request("list", "nodes", namespace="")) == "Metadata"
    assert level(p, request("list", "secrets", namespace="")) == "Metadata"  # list across all namespaces
    assert level(p, request()) == "None"


def test_a_namespace_objects_own_get_carries_its_own_name_as_namespace() -> None:
    p = policy({"level": "Metadata", "namespaces": [""], "resources": core("namespaces")})
    assert level(p, request("list", "namespaces", namespace="")) == "Metadata"
    assert level(p, request("delete", "namespaces", namespace="team-a", name="team-a")) == "None"


def test_a_namespaces_rule_never_matches_a_non_resource_request() -> None:
    assert level(policy({"level": "Metadata", "namespaces": [""]}), non_resource("/healthz")) == "None"


def test_resource_names_match_a_request_for_a_listed_name() -> None:
    p = policy({"level": "Metadata", "resources": core("secrets", names=("db-password",))})
    assert level(p, request("get", "secrets", name="db-password")) == "Metadata"
    assert level(p, request("get", "secrets", name="other")) == "None"


def test_resource_names_never_match_create() -> None:
    # POST to the collection: the request has no name
    p = policy({"level": "Metadata", "resources": core("secrets", names=("db-password",))})
    assert level(p, request("create", "secrets")) == "None"


def test_resource_names_never_match_a_plain_list() -> None:
    p = policy({"level": "Metadata", "resources": core("secrets", names=("db-password",))})
    assert level(p, request("list", "secrets")) == "None"


# ====================================================================== §2.4 URLs


def test_a_non_resource_url_matches_its_exact_path() -> None:
    assert level(policy({"level": "Metadata", "nonResourceURLs": ["/healthz"]}), non_resource("/healthz")) == "Metadata"


def test_an_exact_non_resource_url_does_not_match_a_longer_path() -> None:
    p = policy({"level": "Metadata", "nonResourceURLs": ["/healthz"]})
    assert level(p, non_resource("/healthz/etcd")) == "None"


def test_a_star_non_resource_url_matches_every_path() -> None:
    assert level(policy({"level": "Metadata", "nonResourceURLs": ["*"]}), non_resource("/openapi/v2")) == "Metadata"


@pytest.mark.parametrize(
    ("spec", "path"),
    [("/api*", "/apis/apps/v1"), ("/api*", "/api"), ("/logs*", "/logsfoo"), ("/healthz*", "/healthz/etcd")],
)
def test_a_trailing_star_is_a_raw_string_prefix(spec: str, path: str) -> None:
    assert level(policy({"level": "Metadata", "nonResourceURLs": [spec]}), non_resource(path)) == "Metadata"


def test_a_trailing_star_prefix_does_not_match_a_shorter_path() -> None:
    assert level(policy({"level": "Metadata", "nonResourceURLs": ["/apis/*"]}), non_resource("/apis")) == "None"


def test_a_non_resource_rule_never_matches_a_resource_request() -> None:
    assert level(policy({"level": "Metadata", "nonResourceURLs": ["*"]}), request()) == "None"


# ================================================================ §2.6 omitStages


def test_omit_stages_are_the_union_of_policy_and_rule_lists() -> None:
    # TestCheckerPolicyOmitStages
    p = policy(
        {"level": "Metadata", "omitStages": ["RequestReceived"]}, omitStages=["RequestReceived", "ResponseStarted"]
    )
    assert evaluate(p, request()).omit_stages == frozenset({"RequestReceived", "ResponseStarted"})


def test_a_rule_cannot_re_enable_a_stage_the_policy_omits() -> None:
    p = policy({"level": "Metadata", "omitStages": []}, omitStages=["ResponseStarted"])
    assert "ResponseStarted" in evaluate(p, request()).omit_stages


def test_rule_omit_stages_apply_only_to_requests_that_rule_matches() -> None:
    p = policy(
        {"level": "Metadata", "resources": core("secrets"), "omitStages": ["RequestReceived"]}, {"level": "Metadata"}
    )
    assert evaluate(p, request("get", "secrets")).omit_stages == frozenset({"RequestReceived"})
    assert evaluate(p, request()).omit_stages == frozenset()


def test_omit_managed_fields_of_the_rule_overrides_the_policy_default() -> None:
    p = policy({"level": "Request", "omitManagedFields": False}, omitManagedFields=True)
    assert evaluate(p, request()).omit_managed_fields is False


def test_omit_managed_fields_is_inherited_when_the_rule_does_not_set_it() -> None:
    p = policy({"level": "Request"}, omitManagedFields=True)
    assert evaluate(p, request()).omit_managed_fields is True


# ============================================================== category coverage


def assess_policy(
    *rules: dict[str, Any], profile: str = "baseline", version: KubeVersion = NEWEST, **top: Any
) -> Coverage:
    catalog = packaged_catalog()
    return assess(policy(*rules, version=version, **top), catalog, catalog.profiles[profile], version)


def codes(cov: Coverage, kind: str = "warnings") -> list[str]:
    return [f.code for f in getattr(cov, kind)]


def messages(cov: Coverage, code: str) -> list[str]:
    return [f.message for f in cov.warnings + cov.violations if f.code == code]


RBAC = "rbac.authorization.k8s.io"

# A policy per category that logs (at Metadata) the requests of that category and little else.
ONLY: dict[str, list[dict[str, Any]]] = {
    "authentication": [
        {"level": "Metadata", "nonResourceURLs": ["/api"]},
        {"level": "Metadata", "verbs": ["list"], "namespaces": ["default"], "resources": core("pods")},
        {"level": "Metadata", "users": ["system:anonymous"]},
        {"level": "Metadata", "resources": core("serviceaccounts/token")},
    ],
    "api-calls": [
        {
            "level": "Metadata",
            "users": ["jane", "system:serviceaccount:ci:deployer"],
            "verbs": ["create", "list", "delete", "patch"],
            "resources": [
                {"group": "apps", "resources": ["deployments"]},
                {"group": "", "resources": ["pods", "namespaces", "configmaps"]},
            ],
        }
    ],
    "rbac-denials": [
        {"level": "Metadata", "verbs": ["list"], "namespaces": [""], "resources": core("secrets")},
        {"level": "Metadata", "namespaces": ["kube-system"], "resources": core("pods", "pods/exec")},
        {
            "level": "Metadata",
            "verbs": ["create"],
            "resources": [{"group": RBAC, "resources": ["clusterrolebindings"]}],
        },
    ],
    "pod-creation": [
        {
            "level": "Metadata",
            "verbs": ["create", "patch"],
            "namespaces": ["default"],
            "resources": core("pods", "pods/exec", "pods/attach", "pods/ephemeralcontainers"),
        }
    ],
    "secret-access": [{"level": "Metadata", "resources": core("secrets")}],
    "rbac-changes": [{"level": "Metadata", "resources": [{"group": RBAC}]}],
}


@pytest.mark.parametrize("category", CATEGORIES)
def test_a_policy_logging_only_that_categorys_requests_covers_exactly_that_category(category: str) -> None:
    cov = assess_policy(*ONLY[category])
    assert cov.covered == [category]
    assert cov.categories[category].level == "Metadata"
    assert cov.categories[category].missed == ()


def test_the_six_categories_are_reported_in_spec_order_even_when_none_is_covered() -> None:
    cov = assess_policy({"level": "None"})
    assert list(cov.categories) == CATEGORIES
    assert cov.covered == []


def test_a_catch_all_metadata_rule_covers_all_six_categories() -> None:
    cov = assess_policy({"level": "Metadata"})
    assert cov.covered == CATEGORIES
    assert cov.violations == []


def test_the_summary_sentence_names_the_covered_categories() -> None:
    rules = ONLY["authentication"] + ONLY["api-calls"] + ONLY["pod-creation"] + ONLY["secret-access"]
    cov = assess_policy(*rules)
    assert cov.summary == (
        "Audit policy covers 4 of 6 event categories (authentication, api-calls, pod-creation, secret-access) "
        "at Metadata level or higher."
    )


def test_the_summary_sentence_for_no_category() -> None:
    assert assess_policy({"level": "None"}).summary == (
        "Audit policy covers 0 of 6 event categories at Metadata level or higher."
    )


def test_a_category_is_covered_only_when_every_probe_is_logged() -> None:
    rules: list[dict[str, Any]] = [
        {"level": "None", "users": ["system:serviceaccount:monitoring:agent"]},
        {"level": "Metadata"},
    ]
    result = assess_policy(*rules).categories["secret-access"]
    assert not result.covered
    assert result.level is None
    assert [m.probe for m in result.missed] == ["secret-list-sa", "secret-watch-cluster"]


def test_a_category_level_is_the_lowest_level_among_its_probes() -> None:
    cov = assess_policy(
        {"level": "RequestResponse", "verbs": ["get"], "resources": core("secrets")}, {"level": "Metadata"}
    )
    assert cov.categories["secret-access"].level == "Metadata"
    assert assess_policy({"level": "RequestResponse"}).categories["secret-access"].level == "RequestResponse"


# ------------------------------------------------------------- failed authentication


def test_failed_logins_are_only_emitted_at_response_started_so_omitting_it_loses_them() -> None:
    cov = assess_policy({"level": "Metadata"}, omitStages=["ResponseStarted"])
    auth = cov.categories["authentication"]
    assert not auth.covered
    assert [m.probe for m in auth.missed] == ["auth-failed-resource", "auth-failed-nonresource"]
    assert "omitStages drop ResponseStarted" in auth.missed[0].reason


def test_failed_logins_are_lost_when_the_matching_rule_omits_response_started() -> None:
    cov = assess_policy({"level": "Metadata", "omitStages": ["ResponseStarted"]})
    assert "authentication" not in cov.covered


def test_failed_logins_are_kept_when_only_response_complete_is_omitted() -> None:
    cov = assess_policy({"level": "Metadata"}, omitStages=["RequestReceived", "ResponseComplete"])
    # only the successful requests (emitted at ResponseComplete) are lost
    assert [m.probe for m in cov.categories["authentication"].missed] == ["auth-anonymous", "auth-token-request"]


def test_a_user_restricted_rule_cannot_log_failed_logins() -> None:
    cov = assess_policy({"level": "Metadata", "userGroups": ["system:authenticated", "system:unauthenticated"]})
    missed = [m for m in cov.categories["authentication"].missed]
    assert [m.probe for m in missed] == ["auth-failed-resource", "auth-failed-nonresource"]
    assert all(m.rule is None and m.reason.startswith("no rule matched") for m in missed)


# -------------------------------------------------------------- long-running probes


def test_a_long_running_probe_is_logged_when_only_response_started_is_kept() -> None:
    cov = assess_policy({"level": "Metadata"}, omitStages=["RequestReceived", "ResponseComplete"])
    missed = [m.probe for m in cov.categories["pod-creation"].missed]
    assert "pod-exec" not in missed and "pod-attach" not in missed
    assert "pod-create-user" in missed


def test_a_long_running_probe_is_logged_when_only_response_complete_is_kept() -> None:
    cov = assess_policy({"level": "Metadata"}, omitStages=["RequestReceived", "ResponseStarted"])
    assert cov.categories["pod-creation"].covered
    assert cov.categories["secret-access"].covered  # includes a watch


def test_a_probe_is_not_logged_when_all_its_stages_are_omitted() -> None:
    cov = assess_policy({"level": "Metadata"}, omitStages=["ResponseStarted", "ResponseComplete"])
    assert cov.covered == []


# -------------------------------------------------------------------- min level


def test_the_stig_profile_needs_request_response_for_every_probe() -> None:
    cov = assess_policy({"level": "Metadata"}, profile="stig")
    assert cov.covered == []
    assert codes(cov, "violations")[0] == "categories-below-minimum"
    reason = cov.categories["api-calls"].missed[0].reason
    assert reason.endswith("which logs it at Metadata, below the required RequestResponse")


def test_the_stig_profile_is_met_by_a_request_response_catch_all() -> None:
    cov = assess_policy({"level": "RequestResponse"}, profile="stig")
    assert cov.covered == CATEGORIES
    assert cov.violations == []


def test_a_request_level_category_does_not_meet_stig() -> None:
    cov = assess_policy(
        {"level": "Request", "resources": core("secrets")}, {"level": "RequestResponse"}, profile="stig"
    )
    assert cov.covered == ["authentication", "api-calls", "pod-creation", "rbac-changes"]
    assert "secret-access" not in cov.covered


# ------------------------------------------------------------------------ profiles


def test_baseline_requires_at_least_three_categories() -> None:
    two = assess_policy(*ONLY["secret-access"], *ONLY["rbac-changes"])
    assert two.covered_count == 2
    assert codes(two, "violations") == ["categories-below-minimum"]
    three = assess_policy(*ONLY["secret-access"], *ONLY["rbac-changes"], *ONLY["pod-creation"])
    assert three.covered_count == 3
    assert three.violations == []


def test_strict_requires_authentication_api_calls_and_rbac_denials() -> None:
    cov = assess_policy(*ONLY["pod-creation"], *ONLY["secret-access"], *ONLY["rbac-changes"], profile="strict")
    assert cov.covered_count == 3
    assert codes(cov, "violations") == ["category-required"] * 3
    assert [m.split(" requires category ")[1].split(",")[0] for m in messages(cov, "category-required")] == [
        "authentication",
        "api-calls",
        "rbac-denials",
    ]


def test_strict_requires_every_stage_but_panic() -> None:
    cov = assess_policy({"level": "Metadata"}, omitStages=["RequestReceived"], profile="strict")
    assert codes(cov, "violations") == ["stage-omitted"]
    assert assess_policy({"level": "Metadata"}, omitStages=["RequestReceived"]).violations == []
    assert assess_policy({"level": "Metadata"}, omitStages=["Panic"], profile="strict").violations == []


# ---------------------------------------------------------------- hiding-rule text


def test_a_probe_hidden_by_a_none_rule_names_that_rule() -> None:
    cov = assess_policy(
        {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
        {"level": "None", "nonResourceURLs": ["/healthz*"]},
        {"level": "None", "users": ["jane"]},
        {"level": "Metadata"},
    )
    miss = cov.categories["api-calls"].missed[0]
    assert (miss.probe, miss.rule) == ("api-create-deployment", 2)
    assert miss.reason == "rule 2 (level None, users [jane]) matched first"


def test_the_hiding_rule_text_has_the_spec_shape() -> None:
    cov = assess_policy({"level": "None", "users": ["system:kube-proxy", "jane"]}, {"level": "Metadata"})
    assert cov.categories["api-calls"].missed[0].reason == (
        "rule 0 (level None, users [system:kube-proxy, jane]) matched first"
    )


def test_a_probe_no_rule_matched_says_so() -> None:
    cov = assess_policy({"level": "Metadata", "resources": core("secrets")})
    miss = cov.categories["api-calls"].missed[0]
    assert miss.rule is None
    assert miss.reason.startswith("no rule matched")


def test_the_missed_entries_serialise_as_probe_rule_reason() -> None:
    cov = assess_policy({"level": "None", "users": ["jane"]}, {"level": "Metadata"})
    entry = category_json(cov.categories["api-calls"])["missed"][0]
    assert entry == {
        "probe": "api-create-deployment",
        "rule": 0,
        "reason": "rule 0 (level None, users [jane]) matched first",
    }


# ===================================================================== warnings


def test_advisory_probes_not_logged_give_a_warning_each() -> None:
    cov = assess_policy(
        {"level": "None", "resources": core("pods/portforward", "nodes/proxy")},
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "list", "watch"]},
        {"level": "Metadata", "users": ["system:anonymous"]},
    )
    advisories = messages(cov, "advisory-not-logged")
    assert len(advisories) == 3
    assert advisories[0].startswith("exec over WebSocket")
    assert advisories[1].startswith("port-forwarding into pods is not logged (portforward: rule 0")
    assert advisories[2].startswith("requests proxied to the kubelet (nodes/proxy) are not logged")


def test_advisory_probes_never_deny_by_themselves() -> None:
    cov = assess_policy({"level": "None", "resources": core("pods/portforward", "nodes/proxy")}, {"level": "Metadata"})
    assert "advisory-not-logged" in codes(cov)
    assert cov.violations == []


def test_no_advisory_warning_when_every_advisory_probe_is_logged() -> None:
    assert "advisory-not-logged" not in codes(assess_policy({"level": "Metadata"}))


def test_secrets_logged_at_request_level_warn_of_their_payload_in_the_log() -> None:
    cov = assess_policy({"level": "Request", "resources": core("secrets")}, {"level": "Metadata"})
    found = messages(cov, "sensitive-payload")
    assert len(found) == 1
    assert found[0].startswith("secrets are logged at Request by rule 0")


def test_configmaps_logged_at_request_response_warn_of_their_payload() -> None:
    cov = assess_policy({"level": "Metadata", "resources": core("secrets")}, {"level": "RequestResponse"})
    found = messages(cov, "sensitive-payload")
    assert [m.split(" ")[0] for m in found] == ["configmaps"]


def test_secrets_and_configmaps_at_metadata_give_no_payload_warning() -> None:
    cov = assess_policy({"level": "Metadata", "resources": core("secrets", "configmaps")}, {"level": "RequestResponse"})
    assert "sensitive-payload" not in codes(cov)


def test_omitting_response_started_at_policy_level_warns_that_failed_logins_disappear() -> None:
    cov = assess_policy({"level": "Metadata"}, omitStages=["ResponseStarted"])
    found = messages(cov, "response-started-omitted")
    assert len(found) == 1
    assert found[0].startswith("the policy's omitStages omit ResponseStarted")


def test_a_catch_all_rule_omitting_response_started_warns() -> None:
    cov = assess_policy({"level": "Metadata", "omitStages": ["ResponseStarted"]})
    assert messages(cov, "response-started-omitted")[0].startswith("rule 0 omit ResponseStarted")


def test_a_user_restricted_rule_omitting_response_started_does_not_warn() -> None:
    cov = assess_policy(
        {"level": "Metadata", "users": ["jane"], "omitStages": ["ResponseStarted"]}, {"level": "Metadata"}
    )
    assert "response-started-omitted" not in codes(cov)


def test_no_response_started_warning_when_nothing_omits_it() -> None:
    cov = assess_policy({"level": "Metadata", "omitStages": ["RequestReceived"]})
    assert "response-started-omitted" not in codes(cov)


def test_unknown_fields_surface_as_warnings() -> None:
    cov = assess_policy({"level": "Metadata", "Users": ["x"]})
    assert "policy-unknown-field" in codes(cov)


# ------------------------------------------------------------------ shadowed rules


def shadowed(*rules: dict[str, Any], version: KubeVersion = NEWEST) -> list[tuple[int, int]]:
    return shadowed_rules(policy(*rules, version=version), version >= (1, 36))


def test_a_rule_after_a_catch_all_is_shadowed_and_warned_about() -> None:
    cov = assess_policy({"level": "Metadata"}, {"level": "RequestResponse", "resources": core("secrets")})
    found = messages(cov, "shadowed-rule")
    assert found == [
        "rule 1 (level RequestResponse, resources [core:secrets]) can never match: rule 0 (level Metadata) "
        "matches every request it would."
    ]


@pytest.mark.parametrize(
    ("first", "later"),
    [
        ({"resources": core("pods/*")}, {"resources": core("pods/log")}),
        ({"resources": core("pods/*")}, {"resources": core("pods")}),
        ({"resources": core("*/log")}, {"resources": core("pods/log")}),
        ({"resources": core("*")}, {"resources": core("secrets", "configmaps")}),
        ({"resources": [{"group": ""}]}, {"resources": core("secrets")}),
        ({"nonResourceURLs": ["/api*"]}, {"nonResourceURLs": ["/apis", "/api/v1"]}),
        ({"nonResourceURLs": ["*"]}, {"nonResourceURLs": ["/healthz"]}),
        ({"users": ["a", "b"]}, {"users": ["a"], "verbs": ["get"]}),
        ({"userGroups": ["g1", "g2"]}, {"userGroups": ["g2"]}),
        ({"verbs": ["get", "list"]}, {"verbs": ["list"], "resources": core("pods")}),
        ({"namespaces": ["kube-system"]}, {"namespaces": ["kube-system"], "resources": core("secrets")}),
        ({"resources": core("secrets")}, {"resources": core("secrets", names=("a",))}),
    ],
)
def test_a_rule_whose_requests_an_earlier_rule_all_matches_is_shadowed(
    first: dict[str, Any], later: dict[str, Any]
) -> None:
    assert shadowed({"level": "None", **first}, {"level": "Metadata", **later}) == [(0, 1)]


@pytest.mark.parametrize(
    ("first", "later"),
    [
        ({"resources": core("pods")}, {"resources": core("pods/log")}),
        ({"resources": core("pods/log")}, {"resources": core("pods")}),
        ({"resources": core("pods/*")}, {"resources": core("*/log")}),
        ({"resources": core("*/*")}, {"resources": core("pods")}),
        ({"resources": core("*")}, {"resources": [{"group": "apps", "resources": ["deployments"]}]}),
        ({"resources": core("*")}, {"namespaces": ["default"]}),
        ({"resources": core("secrets", names=("a",))}, {"resources": core("secrets")}),
        ({"users": ["jane"]}, {"resources": core("secrets")}),
        ({"users": ["jane"]}, {"userGroups": ["system:authenticated"]}),
        ({"verbs": ["get"]}, {"verbs": ["get", "list"]}),
        ({"namespaces": ["kube-system"]}, {"resources": core("secrets")}),
        ({"namespaces": [""]}, {"nonResourceURLs": ["/healthz"]}),
        ({"nonResourceURLs": ["/healthz"]}, {"nonResourceURLs": ["/healthz*"]}),
        ({"nonResourceURLs": ["/apis*"]}, {"nonResourceURLs": ["/api"]}),
        ({"nonResourceURLs": ["*"]}, {"resources": core("pods")}),
        ({"resources": core("pods")}, {}),
    ],
)
def test_a_rule_that_can_still_match_something_is_not_flagged_as_shadowed(
    first: dict[str, Any], later: dict[str, Any]
) -> None:
    assert shadowed({"level": "None", **first}, {"level": "Metadata", **later}) == []


def test_group_star_shadows_any_group_from_1_36() -> None:
    rules = ({"level": "None", "resources": [{"group": "*"}]}, {"level": "Metadata", "resources": core("pods")})
    assert shadowed(*rules, version=(1, 37)) == [(0, 1)]


def test_a_shadowed_rule_is_reported_once_naming_the_first_shadowing_rule() -> None:
    assert shadowed({"level": "None"}, {"level": "Metadata"}, {"level": "Request", "users": ["jane"]}) == [
        (0, 1),
        (0, 2),
    ]


def test_a_policy_without_overlap_has_no_shadowed_rule_warning() -> None:
    cov = assess_policy({"level": "Metadata", "resources": core("secrets")}, {"level": "RequestResponse"})
    assert "shadowed-rule" not in codes(cov)
