"""The composite GitHub Action (`action.yml`): validated, and its steps run locally as the runner
runs them (`bash --noprofile --norc -eo pipefail`, inputs through `${{ }}` expressions, outputs
through `$GITHUB_OUTPUT`).  The upload step is a `uses:` of GitHub's own action: checked, not run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import REPO

ACTION: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text())
EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
WEAK = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verbs: [get, list, watch]\n- level: None\n"
GOOD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


class Runner:
    """Just enough of the Actions runner for this action's expressions and steps."""

    def __init__(self, inputs: dict[str, str], action_path: Path, workspace: Path, path_dirs: list[str],
                 skip: tuple[str, ...] = ()) -> None:  # fmt: skip
        declared = ACTION["inputs"]
        unknown = set(inputs) - set(declared)
        assert not unknown, f"undeclared inputs {unknown}"
        self.inputs = {name: str(spec.get("default", "")) for name, spec in declared.items()} | inputs
        self.action_path = action_path
        self.workspace = workspace
        self.path_dirs = path_dirs
        self.outputs: dict[str, dict[str, str]] = {}
        self.ran: list[str] = []
        self.used: list[dict[str, Any]] = []
        self.skip = skip
        self.failure = ""

    def value(self, ref: str) -> str | bool:
        ref = ref.strip()
        if ref == "always()":
            return True
        if m := re.fullmatch(r"'([^']*)'", ref):
            return m.group(1)
        if m := re.fullmatch(r"inputs\.([\w-]+)", ref):
            assert m.group(1) in self.inputs, f"undeclared input {m.group(1)}"
            return self.inputs[m.group(1)]
        if ref == "github.action_path":
            return str(self.action_path)
        if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", ref):
            return self.outputs.get(m.group(1), {}).get(m.group(2), "")
        raise AssertionError(f"expression this test does not model: {ref!r}")

    def condition(self, expr: str) -> bool:
        result = True
        for part in expr.split("&&"):
            if m := re.fullmatch(r"\s*(.+?)\s*(==|!=)\s*(.+?)\s*", part):
                left, right = self.value(m.group(1)), self.value(m.group(3))
                result = result and ((left == right) == (m.group(2) == "=="))
            else:
                result = result and bool(self.value(part))
        return result

    def substitute(self, text: str) -> str:
        return EXPR.sub(lambda m: str(self.value(m.group(1))), text)

    def run(self) -> int:
        """Run every step; the exit code of the first failing run step (0 when none fails)."""
        for step in ACTION["runs"]["steps"]:
            if step["name"] in self.skip:
                continue
            cond = step.get("if")
            if cond is not None and not self.condition(EXPR.sub(lambda m: m.group(1), str(cond))):
                continue
            if "uses" in step:
                self.used.append({"uses": step["uses"], "with": {k: self.substitute(str(v))
                                                                 for k, v in step.get("with", {}).items()}})
                continue
            assert step["shell"] == "bash"
            out_file = self.workspace / f".github_output_{len(self.ran)}"
            out_file.write_text("")
            env = {**os.environ, **{k: self.substitute(str(v)) for k, v in step.get("env", {}).items()},
                   "GITHUB_OUTPUT": str(out_file), "PATH": os.pathsep.join([*self.path_dirs, os.environ["PATH"]])}
            assert "${{" not in step["run"], "inputs reach scripts through env, never spliced into the script"
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                  cwd=self.workspace, env=env, text=True, capture_output=True, timeout=900,
                                  check=False)  # fmt: skip
            self.ran.append(step["name"])
            if "id" in step:
                self.outputs[step["id"]] = dict(
                    line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line
                )
            if proc.returncode != 0:
                self.failure = proc.stdout + proc.stderr
                return proc.returncode
        return 0


def test_the_action_is_a_valid_composite_action() -> None:
    assert ACTION["name"] and ACTION["description"]
    assert ACTION["runs"]["using"] == "composite"
    steps = ACTION["runs"]["steps"]
    ids = {s["id"] for s in steps if "id" in s}
    text = (REPO / "action.yml").read_text()
    for ref in EXPR.findall(text):
        for m in re.finditer(r"inputs\.([\w-]+)", ref):
            assert m.group(1) in ACTION["inputs"], ref
        for m in re.finditer(r"steps\.([\w-]+)\.", ref):
            assert m.group(1) in ids, ref
    for step in steps:
        assert set(step) <= {"name", "id", "if", "shell", "env", "run", "uses", "with"}, step
        assert ("run" in step) != ("uses" in step)
        if "run" in step:
            assert step["shell"] == "bash"
        else:
            assert re.fullmatch(r"github/codeql-action/upload-sarif@v\d+", step["uses"])
    for name, spec in ACTION["outputs"].items():
        assert EXPR.fullmatch(spec["value"]), name


def _workspace(tmp_path: Path, policy: str) -> Path:
    ws = tmp_path / "ws"
    (ws / "audit").mkdir(parents=True)
    (ws / "audit" / "policy.yaml").write_text(policy)
    return ws


# This test's Python already has auditwarden: the fast tests skip the install step (the e2e test runs it).
HERE = [str(Path(sys.executable).parent)]
NO_INSTALL = ("Install auditwarden",)


@pytest.mark.parametrize(("policy", "code"), [(WEAK, "1"), (GOOD, "0")])
def test_the_check_steps_report_the_exit_code_write_sarif_and_fail_only_on_violations(
    tmp_path: Path, policy: str, code: str
) -> None:
    ws = _workspace(tmp_path, policy)
    steps = ACTION["runs"]["steps"]
    runner = Runner({"paths": "audit", "profile": "strict"}, REPO, ws, HERE, NO_INSTALL)
    result = runner.run()
    assert runner.outputs["check"]["exit-code"] == code
    sarif = json.loads((ws / "auditwarden.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert runner.used == [{"uses": steps[2]["uses"], "with": {"sarif_file": "auditwarden.sarif",
                                                               "category": "auditwarden"}}]  # fmt: skip
    if code == "1":
        assert result == 1 and "Fail on violations" in runner.ran
        assert any(r["level"] == "error" for r in sarif["runs"][0]["results"])
    else:
        assert result == 0 and "Fail on violations" not in runner.ran


def test_fail_on_violation_false_lets_the_job_go_on(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, WEAK)
    runner = Runner({"paths": "audit", "fail-on-violation": "false", "upload-sarif": "false"}, REPO, ws, HERE,
                    NO_INSTALL)  # fmt: skip
    assert runner.run() == 0
    assert runner.outputs["check"]["exit-code"] == "1" and runner.used == []


@pytest.mark.e2e
def test_all_steps_install_auditwarden_from_the_action_path_into_a_fresh_python(tmp_path: Path) -> None:
    src = tmp_path / "action-src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    ws = _workspace(tmp_path, WEAK)
    runner = Runner({"paths": "audit"}, src, ws, [str(venv / "bin")])
    assert runner.run() == 1, runner.failure
    assert runner.ran == ["Install auditwarden", "Check audit configuration", "Fail on violations"]
    assert (venv / "bin" / "auditwarden").exists()
    assert runner.outputs["check"]["exit-code"] == "1"
