"""The oracle itself agrees with every assertion of upstream's unit tests — so a disagreement
in the differential test is auditwarden's fault, not the oracle's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.oracle import Oracle
from tests.support.tools import SHARED

DATA: dict[str, Any] = yaml.safe_load((SHARED / "conformance" / "checker-conformance.yaml").read_text())


@pytest.fixture(scope="module")
def oracle() -> Iterator[Oracle]:
    with Oracle() as o:
        yield o


@pytest.mark.parametrize("case", DATA["evaluationCases"], ids=[c["id"] for c in DATA["evaluationCases"]])
def test_oracle_evaluation(oracle: Oracle, case: dict[str, Any]) -> None:
    answer = oracle.check(json.dumps(case["policy"]), [case["request"]])
    assert answer["valid"], answer["error"]
    assert answer["results"][0]["level"] == case["expected"]["level"]
    assert set(answer["results"][0]["omitStages"]) == set(case["expected"]["omitStages"])


@pytest.mark.parametrize("case", DATA["loadCases"], ids=[c["id"] for c in DATA["loadCases"]])
def test_oracle_load(oracle: Oracle, case: dict[str, Any]) -> None:
    answer = oracle.check(case["input"], [], validate_only=True)
    assert answer["valid"] is case["expected"]["accepted"]
    if "errorContains" in case["expected"]:
        assert case["expected"]["errorContains"] in answer["error"]


def test_the_oracle_refuses_v1beta1_and_accepts_v1_without_kind(oracle: Oracle) -> None:
    rules = "rules:\n- level: Metadata\n"
    assert not oracle.check("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\n" + rules, [], True)["valid"]
    assert oracle.check("apiVersion: audit.k8s.io/v1\n" + rules, [], True)["valid"]
