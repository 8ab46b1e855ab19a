"""The repository's ``.pre-commit-hooks.yaml``, run by the real ``pre-commit`` (from PyPI) against a
temporary git repository, as a user's repository would use it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.tools import REPO

HOOKS = REPO / ".pre-commit-hooks.yaml"
WEAK = """\
# our audit policy
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  # reads are noisy
  - level: None
    verbs: ["get", "list", "watch"]
  - level: Metadata
    resources: [{group: "", resources: ["pods"]}]
"""


def pre_commit(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=900, check=False)  # fmt: skip


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, text=True, capture_output=True, check=True).stdout


def test_the_hooks_manifest_is_valid_for_pre_commit(tmp_path: Path) -> None:
    result = pre_commit("validate-manifest", str(HOOKS), cwd=tmp_path, home=tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    hooks = {h["id"]: h for h in yaml.safe_load(HOOKS.read_text())}
    assert set(hooks) == {"auditwarden-check", "auditwarden-fix"}
    assert hooks["auditwarden-check"]["entry"] == "auditwarden check"
    assert hooks["auditwarden-fix"]["entry"] == "auditwarden fix --write"


def _snapshot(tmp_path: Path) -> tuple[Path, str]:
    """This working tree (tracked files, as they are now) as a one-commit repository: the hook
    repository pre-commit installs from, as it would from a release tag."""
    snap = tmp_path / "auditwarden"
    files = git("ls-files", "-z", cwd=REPO).split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (snap / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, snap / name)
    git("init", "-q", cwd=snap)
    git("add", "-A", cwd=snap)
    git("commit", "-q", "-m", "snapshot", cwd=snap)
    return snap, git("rev-parse", "HEAD", cwd=snap).strip()


@pytest.mark.e2e
def test_pre_commit_runs_check_then_fix_then_check_passes(tmp_path: Path) -> None:
    snap, rev = _snapshot(tmp_path)
    user = tmp_path / "user-repo"
    user.mkdir()
    git("init", "-q", cwd=user)
    (user / "audit").mkdir()
    policy = user / "audit" / "policy.yaml"
    policy.write_text(WEAK)
    (user / "README.md").write_text("not yaml\n")
    hooks = [{"id": hook, "files": "^audit/", "args": ["--profile", "strict"]}
             for hook in ("auditwarden-check", "auditwarden-fix")]  # fmt: skip
    (user / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": str(snap), "rev": rev,
                                                                             "hooks": hooks}]}))  # fmt: skip
    git("add", "-A", cwd=user)
    home = tmp_path / "pre-commit-home"

    first = pre_commit("run", "auditwarden-check", "--all-files", cwd=user, home=home)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Failed" in first.stdout and "Fix: add before rule 0: - level: Metadata" in first.stdout

    fixed = pre_commit("run", "auditwarden-fix", "--all-files", cwd=user, home=home)
    # A hook that edits files fails the commit, so the repair is reviewed before it is committed.
    assert fixed.returncode == 1 and "files were modified by this hook" in fixed.stdout, fixed.stdout
    text = policy.read_text()
    assert text.startswith("# our audit policy\n") and "  # auditwarden fix: logs" in text
    assert '  # reads are noisy\n  - level: None\n    verbs: ["get", "list", "watch"]\n' in text

    git("add", "-A", cwd=user)
    second = pre_commit("run", "--all-files", cwd=user, home=home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("Passed") == 2
