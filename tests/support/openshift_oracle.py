"""Client for OpenShift's own audit-policy rendering (tests/oracle/openshift/main.go: library-go's
``GetAuditPolicy`` at the version its go.mod pins), built by tests/oracle/build.sh as
``openshift-audit-oracle``.  One persistent process, one JSON line per question:

    in:  the spec.audit object ({"profile": ..., "customRules": [{"group": ..., "profile": ...}]})
    out: {"policy": <the Policy as encoding/json writes it>, "yaml": "<the ConfigMap's policy.yaml>"}
         or {"error": "<GetAuditPolicy's error>"}
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.support.tools import tool

MISSING = "openshift-audit-oracle is not built: run `bash tests/oracle/build.sh` (scripts/test.sh does)"


class OpenShiftOracle:
    def __init__(self) -> None:
        binary = tool("openshift-audit-oracle")
        if binary is None:
            if os.environ.get("AUDITWARDEN_ALLOW_MISSING_TOOLS") == "1":
                pytest.skip(f"{MISSING} (skipped because AUDITWARDEN_ALLOW_MISSING_TOOLS=1)")
            pytest.fail(MISSING)
        self._proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      encoding="utf-8", bufsize=1)  # fmt: skip

    def render(self, audit: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(audit) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"openshift-audit-oracle died (exit status {self._proc.wait(timeout=10)})")
        answer: dict[str, Any] = json.loads(line)
        if "fatal" in answer:
            raise RuntimeError(f"openshift-audit-oracle refused the input line: {answer['fatal']}")
        return answer

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)
