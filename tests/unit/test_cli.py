"""`auditwarden check` and `auditwarden evaluate` as a CI pipeline uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.support.tools import DATA
from webhook.cli import main

CORPUS = DATA / "corpus"
GOOD = CORPUS / "policies" / "k8s-website-audit-policy.yaml"
TWO_CATEGORIES = CORPUS / "policies" / "killer-sh-cks-not-that-noisy.yaml"
CATEGORY_IDS = ["authentication", "api-calls", "rbac-denials", "pod-creation", "secret-access", "rbac-changes"]


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


def test_a_good_policy_passes_with_exit_0_and_prints_the_summary_line() -> None:
    result = run("check", str(GOOD))
    assert result.exit_code == 0, result.output
    assert (
        "Audit policy covers 6 of 6 event categories (authentication, api-calls, rbac-denials, pod-creation, "
        "secret-access, rbac-changes) at Metadata level or higher." in result.output
    )


def test_a_policy_covering_two_categories_fails_with_exit_1_naming_the_hiding_rule() -> None:
    result = run("check", str(TWO_CATEGORIES))
    assert result.exit_code == 1
    assert "Audit policy covers 2 of 6 event categories (pod-creation, rbac-changes)" in result.output
    assert "rule 0 (level None, verbs [get, watch, list]) matched first" in result.output


def test_json_output_is_the_documented_contract() -> None:
    result = run("check", "--format", "json", str(TWO_CATEGORIES), str(GOOD))
    doc = json.loads(result.output)
    assert set(doc) == {"results", "summary"}
    assert len(doc["results"]) == 2
    for r in doc["results"]:
        assert set(r) == {"source", "kind", "valid", "categories", "coveredCount", "violations", "warnings", "summary"}
        assert r["kind"] == "audit-policy"
        assert list(r["categories"]) == CATEGORY_IDS
        for c in r["categories"].values():
            assert set(c) == {"covered", "level", "missed"}
            for m in c["missed"]:
                assert set(m) == {"probe", "rule", "reason"}
    bad = doc["results"][0]
    assert bad["coveredCount"] == 2
    assert [v["code"] for v in bad["violations"]] == ["categories-below-minimum"]
    assert doc["summary"]["failed"] == 1 and doc["summary"]["exitCode"] == 1


def test_multi_document_files_name_each_document_path_colon_n(tmp_path: Path) -> None:
    f = tmp_path / "two.yaml"
    f.write_text(GOOD.read_text() + "\n---\n" + TWO_CATEGORIES.read_text())
    doc = json.loads(run("check", "--format", "json", str(f)).output)
    assert [r["source"] for r in doc["results"]] == [f"{f}:1", f"{f}:2"]


def test_a_configmap_wrapping_a_policy_is_recognised(tmp_path: Path) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "audit-policy", "namespace": "kube-system"},
        "data": {"policy.yaml": TWO_CATEGORIES.read_text()},
    }
    f = tmp_path / "cm.json"
    f.write_text(json.dumps(cm))
    doc = json.loads(run("check", "--format", "json", str(f)).output)
    assert doc["results"][0]["source"] == f"{f}#data[policy.yaml]"
    assert doc["results"][0]["coveredCount"] == 2


def test_sarif_output_is_sarif_2_1_0_with_errors_and_warnings() -> None:
    doc = json.loads(run("check", "--format", "sarif", str(TWO_CATEGORIES)).output)
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    assert {r["level"] for r in results} >= {"error"}
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == str(TWO_CATEGORIES)
    rule_ids = {r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rule_ids


def test_missing_input_is_exit_2() -> None:
    assert run("check", "/nonexistent/policy.yaml").exit_code == 2


def test_bad_kubernetes_version_is_a_usage_error_exit_2() -> None:
    assert run("check", "--kubernetes-version", "banana", str(GOOD)).exit_code == 2


def test_policy_file_map_judges_the_referenced_policy(tmp_path: Path) -> None:
    pod = CORPUS / "static-pods" / "kubespray-legacy-manifest-audit.yaml"
    target = "/etc/kubernetes/audit-policy/apiserver-audit-policy.yaml"
    result = run("check", "--format", "json", "--policy-file-map", f"{target}={TWO_CATEGORIES}", str(pod))
    doc = json.loads(result.output)
    kinds = [r["kind"] for r in doc["results"]]
    assert kinds == ["apiserver-pod", "audit-policy"]
    assert doc["results"][1]["coveredCount"] == 2


def test_older_target_version_refuses_the_group_wildcard(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources: [{group: '*'}]\n")
    assert run("check", str(f)).exit_code == 0
    result = run("check", "--kubernetes-version", "1.35", "--format", "json", str(f))
    assert result.exit_code == 1
    assert json.loads(result.output)["results"][0]["valid"] is False


def test_every_corpus_file_gets_a_verdict_without_a_crash() -> None:
    result = run("check", "--format", "json", str(CORPUS / "policies"), str(CORPUS / "static-pods"),
                 str(CORPUS / "kubeadm"), str(CORPUS / "distro-configs"))  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    doc = json.loads(result.output)
    judged = {r["source"].split("#")[0].split(":")[0] for r in doc["results"]} | set(doc["summary"]["skipped"])
    files = {str(p) for d in ("policies", "static-pods", "kubeadm", "distro-configs") for p in (CORPUS / d).glob("*")}
    assert files <= judged


def test_evaluate_prints_level_stages_and_rule_per_request(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n"
        "- level: None\n  users: [system:kube-proxy]\n- level: Metadata\n  omitStages: [Panic]\n"
    )
    lines = [
        {"user": {"name": "system:kube-proxy", "groups": []}, "verb": "watch", "resource": "endpoints"},
        {"user": None, "verb": "get", "path": "/api", "isResourceRequest": False},
    ]
    result = run("evaluate", str(f), stdin="\n".join(json.dumps(x) for x in lines) + "\n")
    assert result.exit_code == 0
    assert [json.loads(x) for x in result.output.splitlines()] == [
        {"level": "None", "omitStages": ["RequestReceived"], "rule": 0},
        {"level": "Metadata", "omitStages": ["Panic", "RequestReceived"], "rule": 1},
    ]


def test_evaluate_with_an_invalid_policy_exits_2_with_the_reason(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n")
    result = run("evaluate", str(f), stdin="")
    assert result.exit_code == 2
    assert "Unsupported value" in result.output


def test_the_console_script_runs_without_importing_flask_or_the_kubernetes_client() -> None:
    heavy = "('flask', 'gunicorn', 'kubernetes', 'cryptography')"
    code = (
        f"import sys, runpy; sys.argv=['auditwarden','check','--format','json',{str(GOOD)!r}];"
        "\ntry: runpy.run_module('webhook', run_name='__main__')\nexcept SystemExit: pass\n"
        f"print(sorted(m for m in {heavy} if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert yaml.safe_load(proc.stdout)["summary"]["passed"] == 1


@pytest.mark.parametrize("profile, exit_code", [("baseline", 0), ("strict", 1), ("stig", 1)])
def test_profiles_judge_the_same_policy_differently(profile: str, exit_code: int) -> None:
    # k8s-website policy: covers all six at Metadata, omits RequestReceived (strict: stage-omitted),
    # secrets only at Metadata (stig wants RequestResponse).
    assert run("check", "--profile", profile, str(GOOD)).exit_code == exit_code


def test_require_kind_label_makes_an_unlabelled_escaped_policy_configmap_fail(tmp_path: Path) -> None:
    text = GOOD.read_text().replace("apiVersion: audit.k8s.io/v1", 'apiVersion: "audit\\x2ek8s.io/v1"')
    assert "audit.k8s.io/v1" not in text
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "audit-policy", "namespace": "kube-system"},
          "data": {"policy.yaml": text}}  # fmt: skip
    f = tmp_path / "cm.json"
    f.write_text(json.dumps(cm))
    relaxed = run("check", str(f))
    assert relaxed.exit_code == 0, relaxed.output
    assert "label-missing" in relaxed.output and "covers 6 of 6" in relaxed.output
    strict = run("check", "--require-kind-label", str(f))
    assert strict.exit_code == 1, strict.output
    assert "label-required" in strict.output
