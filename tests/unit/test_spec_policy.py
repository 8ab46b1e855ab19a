"""Loading and validating an audit Policy exactly as kube-apiserver does.

One test per rule of kube-apiserver's policy loading and validation (upstream:
staging/src/k8s.io/apiserver/pkg/audit/policy/reader.go LoadPolicyFromBytes and
staging/src/k8s.io/apiserver/pkg/apis/audit/validation/validation.go ValidatePolicy).
"""

from __future__ import annotations

from typing import Any

import pytest

from webhook.core.policy import LEVELS, STAGES, Policy, PolicyError, PolicyRule, decode_policy, load_policy
from webhook.core.versions import NEWEST, KubeVersion

V1 = "audit.k8s.io/v1"
METADATA = {"level": "Metadata"}


def doc(*rules: dict[str, Any], api_version: str = V1, **top: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "Policy", "rules": list(rules), **top}


def errors(obj: Any, version: KubeVersion = NEWEST) -> list[str]:
    """Every reason kube-apiserver would give for refusing ``obj`` (empty: it loads)."""
    try:
        decode_policy(obj, version)
    except PolicyError as err:
        return err.errors
    return []


def loads(obj: Any, version: KubeVersion = NEWEST) -> bool:
    return not errors(obj, version)


def rule_errors(rule: dict[str, Any], version: KubeVersion = NEWEST) -> list[str]:
    return errors(doc(rule), version)


# --------------------------------------------------------- §1.1 apiVersion and kind


def test_an_audit_k8s_io_v1_policy_loads() -> None:
    policy = decode_policy(doc(METADATA))
    assert policy.rules == (PolicyRule(level="Metadata"),)
    assert policy.api_version == V1


@pytest.mark.parametrize("version", [(1, 24), (1, 30), (1, 35), (1, 37)])
@pytest.mark.parametrize("api_version", ["audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1"])
def test_v1beta1_and_v1alpha1_policies_are_refused_since_1_24(api_version: str, version: KubeVersion) -> None:
    found = errors(doc(METADATA, api_version=api_version), version)
    assert len(found) == 1
    assert found[0].startswith("failed decoding:")
    assert api_version in found[0]


@pytest.mark.parametrize("api_version", ["audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1"])
def test_v1beta1_and_v1alpha1_still_load_on_a_1_23_target_with_a_deprecation_note(api_version: str) -> None:
    policy = decode_policy(doc(METADATA, api_version=api_version), (1, 23))
    assert policy.api_version == api_version
    assert any("deprecated" in note for note in policy.notes)


def test_v1beta1_loads_without_a_deprecation_note_before_1_21() -> None:
    policy = decode_policy(doc(METADATA, api_version="audit.k8s.io/v1beta1"), (1, 20))
    assert policy.notes == ()


def test_v1_loads_on_every_target_version() -> None:
    for version in [(1, 19), (1, 23), (1, 24), (1, 36), (1, 37)]:
        assert loads(doc(METADATA), version)


def test_a_document_without_apiversion_or_kind_is_an_unknown_group_version() -> None:
    # reader_test.go TestParsePolicyWithNoVersionOrKind
    found = errors({"rules": [METADATA]})
    assert found and "unknown group version" in found[0]


def test_a_document_with_kind_but_no_apiversion_is_refused() -> None:
    assert not loads({"kind": "Policy", "rules": [METADATA]})


def test_a_missing_kind_with_apiversion_v1_is_accepted() -> None:
    # Not asserted by an upstream test: the decoder defaults the kind from the target type.
    assert loads({"apiVersion": V1, "rules": [METADATA]})


def test_a_kind_other_than_policy_is_refused() -> None:
    assert not loads({"apiVersion": V1, "kind": "Event", "rules": [METADATA]})


def test_a_policy_of_another_api_group_is_refused() -> None:
    assert not loads(doc(METADATA, api_version="kyverno.io/v1"))


# ------------------------------------------------------------- §1.1 rule count, empty


def test_a_policy_with_zero_rules_is_refused() -> None:
    # reader.go: "loaded illegal policy with 0 rules" (ValidatePolicy alone accepts it)
    assert errors(doc()) == ["loaded illegal policy with 0 rules"]


def test_a_policy_with_rules_null_has_zero_rules_and_is_refused() -> None:
    assert errors({"apiVersion": V1, "kind": "Policy", "rules": None}) == ["loaded illegal policy with 0 rules"]


def test_a_policy_without_a_rules_field_is_refused() -> None:
    assert errors({"apiVersion": V1, "kind": "Policy"}) == ["loaded illegal policy with 0 rules"]


def test_validation_alone_accepts_a_policy_without_rules() -> None:
    assert decode_policy(doc(), require_rules=False).rules == ()


@pytest.mark.parametrize("text", ["", "\n", "# just a comment\n", "---\n"])
def test_an_empty_policy_file_is_refused(text: str) -> None:
    # reader_test.go TestPolicyCntCheck/emptyPolicyFile
    with pytest.raises(PolicyError):
        load_policy(text)


def test_a_policy_file_loads_from_yaml_text() -> None:
    policy = load_policy("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    assert [r.level for r in policy.rules] == ["Metadata"]


def test_a_policy_file_loads_from_json_text() -> None:
    policy = load_policy('{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}')
    assert [r.level for r in policy.rules] == ["None"]


def test_only_the_first_yaml_document_of_a_policy_file_counts() -> None:
    text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n---\nrules: 17\n"
    assert [r.level for r in load_policy(text).rules] == ["None"]


def test_yaml_that_does_not_parse_is_a_decoding_failure() -> None:
    with pytest.raises(PolicyError, match="failed decoding"):
        load_policy("apiVersion: audit.k8s.io/v1\nrules: [\n")


# ------------------------------------------- §1.1 strict decoding with lenient fallback


def test_an_unknown_field_is_tolerated_with_a_note() -> None:
    # reader_test.go TestParsePolicyWithUnknownField: `verbs` mis-indented into a resources item
    policy = decode_policy(doc({"level": "Metadata", "resources": [{"group": "", "verbs": ["get"]}]}))
    assert policy.rules[0].verbs == ()
    assert any("rules[0].resources[0].verbs" in note for note in policy.notes)


def test_an_unknown_top_level_field_is_tolerated_with_a_note() -> None:
    policy = decode_policy(doc(METADATA, spec={"x": 1}))
    assert any("unknown field spec" in note for note in policy.notes)


def test_an_unknown_rule_field_is_dropped_so_it_does_not_restrict_the_rule() -> None:
    policy = decode_policy(doc({"level": "None", "user": ["system:kube-proxy"]}))
    assert policy.rules[0].users == ()
    assert any("rules[0].user" in note for note in policy.notes)


def test_field_names_are_case_sensitive_so_capital_level_leaves_level_missing() -> None:
    # `Level:` is an unknown field the lenient pass drops; the rule has no level -> invalid
    assert errors(doc({"Level": "Metadata"})) == ["rules[0].level: Required value"]


def test_capitalised_field_names_are_dropped_like_any_unknown_field() -> None:
    policy = decode_policy(doc({"level": "None", "Users": ["system:kube-proxy"]}))
    assert policy.rules[0].users == ()


# --------------------------------------------------------------- §1.1 type errors


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        ({"apiVersion": V1, "kind": "Policy", "rules": {"level": "Metadata"}}, "rules"),
        (doc({"level": 1}), "rules[0].level"),
        (doc({"level": True}), "rules[0].level"),
        (doc({"level": "Metadata", "users": "jane"}), "rules[0].users"),
        (doc({"level": "Metadata", "users": [7]}), "rules[0].users[0]"),
        (doc({"level": "Metadata", "verbs": [None, {"a": 1}]}), "rules[0].verbs[1]"),
        (doc({"level": "Metadata", "resources": ["pods"]}), "rules[0].resources[0]"),
        (doc({"level": "Metadata", "resources": [{"resources": "pods"}]}), "rules[0].resources[0].resources"),
        (doc({"level": "Metadata", "omitManagedFields": "true"}), "rules[0].omitManagedFields"),
        (doc(METADATA, omitStages="RequestReceived"), "omitStages"),
        (doc(METADATA, omitManagedFields="yes"), "omitManagedFields"),
        (doc(METADATA, metadata={"name": 5}), "metadata.name"),
        (doc(METADATA, metadata=["x"]), "metadata"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_fatal(obj: dict[str, Any], where: str) -> None:
    found = errors(obj)
    assert len(found) == 1
    assert found[0].startswith("failed decoding:")
    assert where in found[0]


@pytest.mark.parametrize("value", [[], "rules", 3, True])
def test_a_document_that_is_not_an_object_is_fatal(value: Any) -> None:
    found = errors(value)
    assert found and found[0].startswith("failed decoding")


def test_a_null_rule_is_a_rule_without_level() -> None:
    # JSON null decodes to the zero PolicyRule, whose level is empty
    assert errors(doc(None)) == ["rules[0].level: Required value"]  # type: ignore[arg-type]


def test_null_list_fields_are_the_same_as_omitted() -> None:
    policy = decode_policy(doc({"level": "Metadata", "users": None, "resources": None}))
    assert policy.rules[0] == PolicyRule(level="Metadata")


def test_apiversion_of_the_wrong_type_is_fatal() -> None:
    assert errors({"apiVersion": 1, "kind": "Policy", "rules": [METADATA]})[0].startswith("failed decoding")


# --------------------------------------------------------------- §1.3 validation: levels


@pytest.mark.parametrize("level", LEVELS)
def test_each_of_the_four_levels_is_valid(level: str) -> None:
    assert rule_errors({"level": level}) == []


def test_a_rule_without_level_is_refused_as_required() -> None:
    assert rule_errors({"users": ["jane"]}) == ["rules[0].level: Required value"]


def test_an_empty_level_is_refused_as_required() -> None:
    assert rule_errors({"level": ""}) == ["rules[0].level: Required value"]


@pytest.mark.parametrize("level", ["metadata", "METADATA", "none", "Full", "RequestResponse "])
def test_levels_are_case_sensitive_and_any_other_value_is_not_supported(level: str) -> None:
    found = rule_errors({"level": level})
    assert len(found) == 1
    assert found[0].startswith("rules[0].level: Unsupported value")


# ----------------------------------------------------------- §1.3 validation: stages


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_may_be_omitted_at_policy_and_rule_level(stage: str) -> None:
    assert errors(doc({"level": "Metadata", "omitStages": [stage]}, omitStages=[stage])) == []


def test_an_unknown_policy_omit_stage_is_refused() -> None:
    found = errors(doc(METADATA, omitStages=["ResponseStarted", "Started"]))
    assert len(found) == 1
    assert found[0].startswith('omitStages[1]: Invalid value: "Started": allowed stages are')


def test_an_unknown_rule_omit_stage_is_refused() -> None:
    found = rule_errors({"level": "Metadata", "omitStages": ["requestreceived"]})
    assert len(found) == 1
    assert found[0].startswith("rules[0].omitStages[0]: Invalid value")


# ---------------------------------------------------- §1.3 validation: nonResourceURLs


@pytest.mark.parametrize("url", ["*", "/", "/healthz", "/healthz*", "/api*", "/logs/*", "/version/"])
def test_a_non_resource_url_starting_with_slash_or_exactly_star_is_valid(url: str) -> None:
    assert rule_errors({"level": "Metadata", "nonResourceURLs": [url]}) == []


@pytest.mark.parametrize("url", ["healthz", "", "api/*", "**"])
def test_a_non_resource_url_must_begin_with_a_slash(url: str) -> None:
    found = rule_errors({"level": "Metadata", "nonResourceURLs": [url]})
    assert any("must begin with a '/' character" in e for e in found)


@pytest.mark.parametrize("url", ["/logs/*.log", "/logs/*/*", "/api**", "/*/healthz"])
def test_a_wildcard_in_a_non_resource_url_must_be_the_final_character(url: str) -> None:
    found = rule_errors({"level": "Metadata", "nonResourceURLs": [url]})
    assert len(found) == 1
    assert "wildcards '*' must be the final character of the rule" in found[0]
    assert found[0].startswith("rules[0].nonResourceURLs[0]")


def test_a_rule_cannot_apply_to_both_resources_and_non_resource_urls() -> None:
    found = rule_errors(
        {"level": "Metadata", "nonResourceURLs": ["/healthz"], "resources": [{"group": "", "resources": ["pods"]}]}
    )
    assert found == [
        'rules[0].nonResourceURLs: Invalid value: ["/healthz"]: '
        "rules cannot apply to both regular resources and non-resource URLs"
    ]


def test_a_rule_cannot_apply_to_both_namespaces_and_non_resource_urls() -> None:
    found = rule_errors({"level": "Metadata", "nonResourceURLs": ["/healthz"], "namespaces": ["default"]})
    assert len(found) == 1
    assert "rules cannot apply to both regular resources and non-resource URLs" in found[0]


# --------------------------------------------------------------- §1.3 validation: group


@pytest.mark.parametrize(
    "group", ["", "apps", "rbac.authorization.k8s.io", "networking.k8s.io", "example-1.com", "a" * 253]
)
def test_a_group_that_is_empty_or_a_dns_subdomain_is_valid(group: str) -> None:
    assert rule_errors({"level": "Metadata", "resources": [{"group": group}]}) == []


@pytest.mark.parametrize(
    "group",
    [
        "rbac.authorization.k8s.io/v1beta1",
        "RBAC.authorization.k8s.io",
        "Apps",
        "-apps",
        "apps-",
        "apps..io",
        "apps_v1",
        "core/v1",
        "a" * 254,
    ],
)
def test_a_group_that_is_not_a_lower_case_dns_subdomain_is_refused(group: str) -> None:
    found = rule_errors({"level": "Metadata", "resources": [{"group": group}]})
    assert len(found) == 1
    assert found[0].startswith("rules[0].resources.group: Invalid value")


@pytest.mark.parametrize("version", [(1, 19), (1, 30), (1, 35)])
def test_group_star_is_invalid_before_1_36(version: KubeVersion) -> None:
    found = rule_errors({"level": "Metadata", "resources": [{"group": "*", "resources": ["*/status"]}]}, version)
    assert len(found) == 1
    assert found[0].startswith('rules[0].resources.group: Invalid value: "*"')


@pytest.mark.parametrize("version", [(1, 36), (1, 37)])
def test_group_star_is_valid_from_1_36(version: KubeVersion) -> None:
    assert rule_errors({"level": "Metadata", "resources": [{"group": "*", "resources": ["*/status"]}]}, version) == []


def test_a_group_star_with_more_characters_is_invalid_even_on_1_36() -> None:
    assert rule_errors({"level": "Metadata", "resources": [{"group": "*.k8s.io"}]}, (1, 36))


# -------------------------------------------------------- §1.3 validation: resourceNames


def test_resource_names_require_at_least_one_resource() -> None:
    found = rule_errors({"level": "Metadata", "resources": [{"group": "", "resourceNames": ["kube-root-ca.crt"]}]})
    assert len(found) == 1
    assert "using resourceNames requires at least one resource" in found[0]
    assert found[0].startswith("rules[0].resources.resourceNames")


def test_resource_names_with_a_resource_are_valid() -> None:
    rule = {"level": "Metadata", "resources": [{"group": "", "resources": ["configmaps"], "resourceNames": ["a"]}]}
    assert rule_errors(rule) == []


# ---------------------------------------------------------- §1.3 not validated at all


@pytest.mark.parametrize(
    "rule",
    [
        {"level": "None", "users": ["*", "", "SYSTEM:KUBE-PROXY"]},
        {"level": "None", "userGroups": ["not a group!"]},
        {"level": "None", "verbs": ["impersonate", "*", "GET"]},
        {"level": "None", "namespaces": ["", "Not_A_Namespace"]},
        {"level": "None", "resources": [{"group": "", "resources": ["pods/log/x", "*/*", "Pods", "a/b/c"]}]},
        {"level": "None", "resources": [{"group": "", "resources": ["secrets"], "resourceNames": ["", "*"]}]},
    ],
)
def test_users_groups_verbs_namespaces_resource_strings_and_names_are_not_validated(rule: dict[str, Any]) -> None:
    assert rule_errors(rule) == []


# --------------------------------------------------------------- §1.3 aggregation


def test_all_validation_errors_are_reported_together_in_upstream_order() -> None:
    found = errors(
        doc(
            {"level": "Verbose"},
            {"level": "Metadata", "nonResourceURLs": ["healthz"], "omitStages": ["Nope"]},
            omitStages=["Never"],
        )
    )
    assert [e.split(":")[0] for e in found] == [
        "omitStages[0]",
        "rules[0].level",
        "rules[1].nonResourceURLs[0]",
        "rules[1].omitStages[0]",
    ]


# ------------------------------------------------------------------ the model


def test_the_rule_description_names_its_level_and_matchers() -> None:
    policy = decode_policy(doc({"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]}))
    assert policy.rules[0].describe() == "level None, users [system:kube-proxy], verbs [watch]"


def test_policy_level_fields_are_kept() -> None:
    policy = decode_policy(doc(METADATA, omitStages=["RequestReceived"], omitManagedFields=True))
    assert policy == Policy(
        rules=(PolicyRule(level="Metadata"),), omit_stages=("RequestReceived",), omit_managed_fields=True
    )


def test_metadata_is_allowed_and_ignored() -> None:
    assert loads(doc(METADATA, metadata={"name": "audit", "labels": {"a": "b"}}))
