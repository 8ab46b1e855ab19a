"""`auditwarden fix`: the repair applied to files with their layout kept, in every output mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.tools import DATA
from webhook.cli import main

CORPUS = DATA / "corpus"
PROFILES = ("baseline", "strict", "stig")
WEAK = """\
# Our audit policy (team comment, kept)
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ['RequestReceived']   # quoting kept
rules:
  # reads are noisy
  - level: None
    verbs: ["get", "watch", "list"]
  - level: RequestResponse
    resources:
      - group: ""
        resources: ["pods"]
"""


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["fix", *args])


def check(*args: str) -> Any:
    return CliRunner().invoke(main, ["check", *args])


def corpus_copy(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    (target / "INDEX.yaml").unlink()
    (target / "EXPECTED-categories.yaml").unlink()
    return target


def _only_repair_lines(before: str, after: str) -> list[str]:
    """Lines of ``after`` that are not in ``before`` must all belong to inserted rules, and every
    removed line must be an omitStages entry: the rest of the file is untouched, byte for byte."""
    import difflib

    problems = []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        tag, text = line[:2], line[2:].strip()
        if tag == "+ " and not (
            text.startswith(("# auditwarden fix:", "- level:", "verbs:", "resources:", "nonResourceURLs:",
                             "namespaces:"))
        ):  # fmt: skip
            problems.append(f"added: {text}")
        if tag == "- " and not (
            text.startswith("omitStages:") or text.strip("-\"' ") in ("RequestReceived", "ResponseStarted",
                                                                       "ResponseComplete", "Panic")
        ):  # fmt: skip
            problems.append(f"removed: {text}")
    return problems


@pytest.mark.parametrize("profile", PROFILES)
def test_fix_write_repairs_every_failing_corpus_policy_so_check_passes_and_only_repair_lines_change(
    tmp_path: Path, profile: str
) -> None:
    corpus = corpus_copy(tmp_path)
    before = {p: p.read_text() for p in corpus.rglob("*.yaml")}
    weak_files = {r["source"].split("#")[0].split(":")[0] for r in _weak(profile, corpus)}
    assert weak_files
    result = run("--profile", profile, "--write", str(corpus))
    # Three corpus policies do not load in kube-apiserver: fix says so and exits 1 for them.
    assert result.exit_code == 1, result.output
    assert "kube-apiserver would not load this policy" in result.output
    assert _weak(profile, corpus) == []
    changed = set()
    for path, text in before.items():
        after = path.read_text()
        if after != text:
            changed.add(str(path))
            assert not _only_repair_lines(text, after), (path, _only_repair_lines(text, after))
    assert changed == weak_files


def _weak(profile: str, corpus: Path) -> list[dict[str, Any]]:
    """Loadable policies that fail the profile, as `check --format json` reports them."""
    out = json.loads(check("--profile", profile, "--format", "json", str(corpus)).output)
    return [r for r in out["results"] if r["kind"] == "audit-policy" and r["valid"]
            and any(v["code"] in ("categories-below-minimum", "category-required", "stage-omitted")
                    for v in r["violations"])]  # fmt: skip


def test_check_mode_exits_1_and_changes_nothing_then_0_after_write(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(WEAK)
    result = run("--check", str(f))
    assert result.exit_code == 1 and f.read_text() == WEAK
    assert "needs a repair" in result.output
    assert run("--write", str(f)).exit_code == 0
    assert run("--check", str(f)).exit_code == 0
    assert check(str(f)).exit_code == 0


def test_write_keeps_comments_quoting_and_indentation_and_marks_inserted_rules(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(WEAK)
    assert run("--profile", "strict", "--write", str(f)).exit_code == 0
    text = f.read_text()
    assert text.startswith("# Our audit policy (team comment, kept)\n")
    assert "  # reads are noisy\n  - level: None\n    verbs: [\"get\", \"watch\", \"list\"]\n" in text
    assert "omitStages" not in text  # strict requires RequestReceived: the policy-level entry goes
    # Inserted rules sit before the comment of the rule that hid their probes, indented like it.
    head = text.split("  # reads are noisy")[0]
    assert "  # auditwarden fix: logs" in head and "\n  - level: Metadata\n" in head


def test_diff_prints_a_unified_diff_and_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(WEAK)
    result = run("--diff", str(f))
    assert result.exit_code == 1
    assert result.output.startswith(f"--- a/{f}\n+++ b/{f}\n@@ ")
    assert "+  # auditwarden fix: logs" in result.output
    assert f.read_text() == WEAK


def test_json_carries_every_insertion_with_its_reasons(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(WEAK)
    result = run("--format", "json", "--profile", "strict", str(f))
    doc = json.loads(result.output)
    assert doc["summary"]["schemaVersion"] == 1 and doc["summary"]["exitCode"] == 1 == result.exit_code
    (p,) = doc["files"][0]["policies"]
    assert p["needed"] and p["possible"] and p["addedRules"] == len(p["insertions"]) >= 1
    ins = p["insertions"][0]
    assert set(ins) >= {"before", "index", "rule", "probes", "categories", "whyHere", "whyLevel", "failedLogin"}
    assert ins["rule"]["level"] == "Metadata" and ins["before"] == 0
    assert p["stageChanges"] == [{"rule": None, "removed": ["RequestReceived"], "why": p["stageChanges"][0]["why"],
                                  "explanation": p["stageChanges"][0]["explanation"]}]  # fmt: skip
    assert doc["files"][0]["diff"].startswith("---")


def test_a_policy_inside_a_configmap_is_edited_inside_its_block_scalar(tmp_path: Path) -> None:
    body = "".join("    " + line + "\n" if line else "\n" for line in WEAK.splitlines())
    cm = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: audit-policy  # ours\n  namespace: kube-system\n"
          f"data:\n  policy.yaml: |\n{body}  other: value\n")  # fmt: skip
    f = tmp_path / "cm.yaml"
    f.write_text(cm)
    assert run("--write", str(f)).exit_code == 0
    text = f.read_text()
    assert "  name: audit-policy  # ours\n" in text and text.endswith("  other: value\n")
    assert "      # auditwarden fix: logs" in text
    assert check(str(f)).exit_code == 0


def test_an_unloadable_policy_is_not_repaired_and_the_reason_is_given(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n")
    result = run("--write", str(f))
    assert result.exit_code == 1 and "kube-apiserver would not load this policy" in result.output
    assert f.read_text().startswith("apiVersion: audit.k8s.io/v1beta1")


def test_a_passing_policy_is_left_alone_with_exit_0(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    result = run("--write", "--profile", "strict", str(f))
    assert result.exit_code == 0 and "nothing to repair" in result.output


def test_a_json_policy_file_is_rewritten_as_json(tmp_path: Path) -> None:
    f = tmp_path / "policy.json"
    f.write_text('{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}')
    assert run("--write", str(f)).exit_code == 0
    doc = json.loads(f.read_text())
    assert doc["rules"][-1] == {"level": "None"} and len(doc["rules"]) >= 2
    assert check(str(f)).exit_code == 0


def test_a_kops_cluster_policy_in_file_assets_is_repaired_in_place(tmp_path: Path) -> None:
    content = "".join(f"        {line}\n" for line in WEAK.splitlines())
    kops = ("apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  kubeAPIServer:\n"
            "    auditLogPath: /var/log/audit.log\n    auditPolicyFile: /srv/kubernetes/audit.yaml\n"
            "  fileAssets:\n  - name: audit-policy\n    path: /srv/kubernetes/audit.yaml\n    roles: [Master]\n"
            f"    content: |\n{content}")  # fmt: skip
    f = tmp_path / "cluster.yaml"
    f.write_text(kops)
    assert run("--write", str(f)).exit_code == 0
    text = f.read_text()
    assert text.startswith(kops.split("    content: |")[0]) and "          # auditwarden fix: logs" in text
    result = json.loads(check("--format", "json", str(f)).output)
    policy = next(r for r in result["results"] if r["kind"] == "audit-policy")
    assert not [v for v in policy["violations"] if v["code"] == "categories-below-minimum"]


def test_a_talos_machine_config_policy_is_repaired_in_place(tmp_path: Path) -> None:
    body = "".join(f"      {line}\n" for line in WEAK.splitlines() if not line.startswith("#"))
    talos = f"version: v1alpha1\nmachine:\n  type: controlplane\ncluster:\n  apiServer:\n    auditPolicy:\n{body}"
    f = tmp_path / "controlplane.yaml"
    f.write_text(talos)
    assert run("--write", "--profile", "strict", str(f)).exit_code == 0
    text = f.read_text()
    assert "        # auditwarden fix: logs" in text and "omitStages" not in text
    assert check("--profile", "strict", str(f)).exit_code == 0


def test_flow_style_rules_fall_back_to_a_ruamel_dump_that_keeps_comments(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text("# keep me\napiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None}]  # all off\n")
    assert run("--write", str(f)).exit_code == 0
    text = f.read_text()
    assert text.startswith("# keep me\n") and "auditwarden fix: logs" in text
    assert check(str(f)).exit_code == 0
