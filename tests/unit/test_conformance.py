"""Every assertion of upstream's own unit tests (checker_test.go, util_test.go,
reader_test.go, validation_test.go), read from tests/data/conformance/checker-conformance.yaml,
holds for auditwarden's loader, validator and evaluator."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.conformance import attributes
from tests.support.tools import DATA
from webhook.core.checker import Evaluator
from webhook.core.policy import STAGES, Policy, PolicyError, decode_policy, load_policy
from webhook.core.versions import parse_version

DATA: dict[str, Any] = yaml.load(
    (DATA / "conformance" / "checker-conformance.yaml").read_text(), Loader=yaml.CSafeLoader
)


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in cases]


def _version(case: dict[str, Any]) -> tuple[int, int]:
    return parse_version(case.get("minKubernetesVersion", "1.37"))


def test_the_file_holds_146_cases() -> None:
    total = sum(len(DATA[k]) for k in DATA if k.endswith("Cases"))
    assert total == 146


@pytest.mark.parametrize("case", DATA["evaluationCases"], ids=_ids(DATA["evaluationCases"]))
def test_evaluation(case: dict[str, Any]) -> None:
    policy = decode_policy(case["policy"], _version(case))
    decision = Evaluator(policy, _version(case)).evaluate(attributes(case["request"]))
    assert decision.level == case["expected"]["level"]
    assert decision.omit_stages == frozenset(case["expected"]["omitStages"])


@pytest.mark.parametrize("case", DATA["omitManagedFieldsCases"], ids=_ids(DATA["omitManagedFieldsCases"]))
def test_omit_managed_fields(case: dict[str, Any]) -> None:
    policy = decode_policy(case["policy"])
    decision = Evaluator(policy).evaluate(attributes(case["request"]))
    assert decision.omit_managed_fields is case["expected"]["omitManagedFields"]


@pytest.mark.parametrize("case", DATA["unionStagesCases"], ids=_ids(DATA["unionStagesCases"]))
def test_union_stages(case: dict[str, Any]) -> None:
    policy = decode_policy(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": case["policyOmitStages"],
            "rules": [{"level": "Metadata", "omitStages": case["ruleOmitStages"]}],
        }
    )
    decision = Evaluator(policy).evaluate(attributes({"user": None, "verb": "get"}))
    assert decision.omit_stages == frozenset(case["expectedUnion"])


@pytest.mark.parametrize("case", DATA["invertStagesCases"], ids=_ids(DATA["invertStagesCases"]))
def test_invert_stages(case: dict[str, Any]) -> None:
    # util.go InvertStages: the stages that remain emitted.
    assert {s for s in STAGES if s not in case["stages"]} == set(case["expectedInverted"])


@pytest.mark.parametrize("case", DATA["loadCases"], ids=_ids(DATA["loadCases"]))
def test_load(case: dict[str, Any]) -> None:
    expected = case["expected"]
    if not expected["accepted"]:
        with pytest.raises(PolicyError) as err:
            load_policy(case["input"])
        if "errorContains" in expected:
            assert expected["errorContains"] in str(err.value)
        return
    policy: Policy = load_policy(case["input"])
    if "ruleCount" in expected:
        assert len(policy.rules) == expected["ruleCount"]
    for rule, want in zip(policy.rules, expected.get("parsedRules", []), strict=False):
        assert rule.level == want["level"]
        assert list(rule.users) == want.get("users", [])
        assert list(rule.user_groups) == want.get("userGroups", [])
        assert list(rule.verbs) == want.get("verbs", [])
        assert list(rule.namespaces) == want.get("namespaces", [])
        assert list(rule.non_resource_urls) == want.get("nonResourceURLs", [])
        assert [(g.group, list(g.resources)) for g in rule.resources] == [
            (g.get("group", ""), g.get("resources", [])) for g in want.get("resources", [])
        ]


@pytest.mark.parametrize("case", DATA["validationCases"], ids=_ids(DATA["validationCases"]))
def test_validation(case: dict[str, Any]) -> None:
    version = _version(case)
    if case["expectedValid"]:
        decode_policy(case["policy"], version, require_rules=False)
    else:
        with pytest.raises(PolicyError):
            decode_policy(case["policy"], version, require_rules=False)


WILDCARD_CASES = [c for c in DATA["evaluationCases"] if c.get("minKubernetesVersion") == "1.36"]


def test_two_cases_need_the_1_36_group_wildcard() -> None:
    assert len(WILDCARD_CASES) == 2


@pytest.mark.parametrize("case", WILDCARD_CASES, ids=_ids(WILDCARD_CASES))
def test_group_wildcard_is_invalid_before_1_36(case: dict[str, Any]) -> None:
    with pytest.raises(PolicyError, match=r"resources\.group"):
        decode_policy(case["policy"], parse_version("1.35"))
