"""SARIF from `auditwarden check --format sarif`: results point at the line of the offending rule or
flag, carry fingerprints that survive edits elsewhere in the file, and the policy's repair as `fixes`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.support.tools import DATA
from webhook.cli import main

WEAK = """\
# team policy
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  # reads are noisy
  - level: None
    verbs: ["get", "watch", "list"]
  - level: RequestResponse
    resources: [{group: "", resources: ["pods"]}]
  - level: Metadata
    verbs: ["get"]
    resources: [{group: "", resources: ["pods"]}]
"""


def sarif(path: Path, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["check", "--format", "sarif", *args, str(path)])
    results: list[dict[str, Any]] = json.loads(result.output)["runs"][0]["results"]
    return results


def line(result: dict[str, Any]) -> int:
    return int(result["locations"][0]["physicalLocation"]["region"]["startLine"])


def by_rule(results: list[dict[str, Any]], rule_id: str) -> dict[str, Any]:
    return next(r for r in results if r["ruleId"] == rule_id)


def test_results_point_at_the_line_of_the_rule_they_are_about(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(WEAK)
    results = sarif(f)
    lines = WEAK.splitlines()
    # categories-below-minimum: the rule that hid the first missed probe (rule 0).
    assert lines[line(by_rule(results, "categories-below-minimum")) - 1] == "  - level: None"
    # shadowed-rule: the rule that can never match (rule 2, shadowed by rule 0).
    assert line(by_rule(results, "shadowed-rule")) == 10 and lines[9] == "  - level: Metadata"


def test_flag_findings_point_at_the_flag_or_at_the_command_when_it_is_missing() -> None:
    pod = DATA / "corpus" / "static-pods" / "killer-sh-cks-kube-apiserver-auditing.yaml"
    lines = pod.read_text().splitlines()
    results = sarif(pod)
    assert "--audit-log-maxbackup" in lines[line(by_rule(results, "audit-log-maxbackup-too-low")) - 1]
    bare = DATA / "corpus" / "static-pods" / "kubespray-legacy-manifest-no-audit.yaml"
    missing = by_rule(sarif(bare), "audit-policy-file-missing")
    assert bare.read_text().splitlines()[line(missing) - 1].strip() == "- kube-apiserver"


def test_fingerprints_survive_lines_added_elsewhere_and_tell_findings_apart(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(WEAK)
    before = {(r["ruleId"], r["partialFingerprints"]["auditwarden/v1"]) for r in sarif(f)}
    f.write_text("# a new header line\n# and another\n" + WEAK)
    after_results = sarif(f)
    after = {(r["ruleId"], r["partialFingerprints"]["auditwarden/v1"]) for r in after_results}
    assert before == after
    assert line(by_rule(after_results, "categories-below-minimum")) == 8  # moved down by two lines
    prints = [r["partialFingerprints"]["auditwarden/v1"] for r in after_results]
    assert len(set(prints)) == len(prints)


def apply_replacements(text: str, replacements: list[dict[str, Any]]) -> str:
    lines = text.splitlines(keepends=True)
    for rep in sorted(replacements, key=lambda r: r["deletedRegion"]["startLine"], reverse=True):
        region = rep["deletedRegion"]
        assert region["startColumn"] == region["endColumn"] == 1
        lines[region["startLine"] - 1 : region["endLine"] - 1] = [rep["insertedContent"]["text"]]
    return "".join(lines)


def test_the_repair_is_attached_as_a_sarif_fix_that_makes_the_policy_pass(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(WEAK)
    results = sarif(f, "--profile", "strict")
    fixes = [r for r in results if "fixes" in r]
    assert len(fixes) == 1 and fixes[0]["level"] == "error"
    (fix,) = fixes[0]["fixes"]
    assert fix["description"]["text"].startswith("auditwarden fix: ")
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == str(f)
    repaired = apply_replacements(WEAK, change["replacements"])
    # The same text `auditwarden fix --write` produces, and it passes.
    assert CliRunner().invoke(main, ["fix", "--profile", "strict", "--write", str(f)]).exit_code == 0
    assert f.read_text() == repaired
    assert CliRunner().invoke(main, ["check", "--profile", "strict", str(f)]).exit_code == 0
