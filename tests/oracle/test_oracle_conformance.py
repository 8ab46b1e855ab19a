"""The oracle itself agrees with every assertion of upstream's unit tests — so a disagreement
in the differential test is auditwarden's fault, not the oracle's.

The oracle is built on k8s.io/apiserver v0.37.2, so it has 1.37 semantics: every case whose
``minKubernetesVersion`` is at most 1.37 applies as recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.oracle import Oracle
from tests.support.tools import DATA

ORACLE_VERSION = (1, 37)
DATA: dict[str, Any] = yaml.safe_load((DATA / "conformance" / "checker-conformance.yaml").read_text())


def applies(case: dict[str, Any]) -> bool:
    wanted = case.get("minKubernetesVersion")
    if wanted is None:
        return True
    major, minor = (int(part) for part in str(wanted).split(".")[:2])
    return (major, minor) <= ORACLE_VERSION


def cases(kind: str) -> list[Any]:
    return [pytest.param(c, id=c["id"]) for c in DATA[kind] if applies(c)]


@pytest.fixture(scope="module")
def oracle() -> Iterator[Oracle]:
    with Oracle() as o:
        yield o


@pytest.mark.parametrize("case", cases("evaluationCases"))
def test_oracle_evaluation(oracle: Oracle, case: dict[str, Any]) -> None:
    answer = oracle.check(json.dumps(case["policy"]), [case["request"]])
    assert answer["valid"], answer["error"]
    assert len(answer["results"]) == 1
    got = answer["results"][0]
    assert got["level"] == case["expected"]["level"]
    assert set(got["omitStages"]) == set(case["expected"]["omitStages"])


@pytest.mark.parametrize("case", cases("omitManagedFieldsCases"))
def test_oracle_omit_managed_fields(oracle: Oracle, case: dict[str, Any]) -> None:
    answer = oracle.check(json.dumps(case["policy"]), [case["request"]])
    assert answer["valid"], answer["error"]
    assert answer["results"][0]["omitManagedFields"] is case["expected"]["omitManagedFields"]


@pytest.mark.parametrize("case", cases("loadCases"))
def test_oracle_load(oracle: Oracle, case: dict[str, Any]) -> None:
    answer = oracle.check(case["input"], [], validate_only=True)
    assert answer["valid"] is case["expected"]["accepted"], answer["error"]
    assert answer["results"] == []
    if answer["valid"]:
        assert answer["error"] == ""
    else:
        assert answer["error"]
    if "errorContains" in case["expected"]:
        assert case["expected"]["errorContains"] in answer["error"]


@pytest.mark.parametrize("case", cases("validationCases"))
def test_oracle_validation(oracle: Oracle, case: dict[str, Any]) -> None:
    answer = oracle.check(yaml.safe_dump(case["policy"], sort_keys=False), [], validate_only=True)
    if case["expectedValid"] and not case["policy"].get("rules"):
        # ValidatePolicy accepts it; LoadPolicyFromBytes then rejects any policy with 0 rules (see loaderNote).
        assert not answer["valid"]
        assert "0 rules" in answer["error"]
    else:
        assert answer["valid"] is case["expectedValid"], answer["error"]


def test_every_input_line_gets_one_answer(oracle: Oracle) -> None:
    policy = (
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Request, verbs: [create]}, {level: Metadata}]\n"
    )
    reqs: list[dict[str, Any]] = [
        {"user": None, "verb": "create", "resource": "pods", "isResourceRequest": True},
        {"user": {"name": "jane", "groups": ["devs"]}, "verb": "get", "path": "/healthz"},
        {},
    ]
    answer = oracle.check(policy, reqs)
    assert [r["level"] for r in answer["results"]] == ["Request", "Metadata", "Metadata"]
    checked = oracle.check(policy, reqs, validate_only=True)
    assert {k: checked[k] for k in ("valid", "error", "results")} == {"valid": True, "error": "", "results": []}
    assert [r["Level"] for r in checked["decoded"]["Rules"]] == ["Request", "Metadata"]


def test_the_oracle_refuses_v1beta1_and_accepts_v1_without_kind(oracle: Oracle) -> None:
    rules = "rules:\n- level: Metadata\n"
    beta = oracle.check("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\n" + rules, [], True)
    assert not beta["valid"]
    assert 'no kind "Policy" is registered for version "audit.k8s.io/v1beta1"' in beta["error"]
    assert oracle.check("apiVersion: audit.k8s.io/v1\n" + rules, [], True)["valid"]


def test_the_oracle_accepts_unknown_fields_leniently_and_keeps_stdout_clean(oracle: Oracle) -> None:
    # The lenient fallback logs a warning through klog; a stray line on stdout would desync the next answer.
    text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  bogus: 1\n"
    assert oracle.check(text, [], True)["valid"]
    empty = oracle.check("", [], True)
    assert empty["error"] == "unknown group version field audit.k8s.io/__internal, Kind=Policy in policy"
