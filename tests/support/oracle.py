"""Client for the Go differential oracle (tests/oracle/main.go).

The oracle runs kube-apiserver's own audit-policy loader and evaluator
(``k8s.io/apiserver/pkg/audit/policy``); one persistent process answers one JSON line per
question.
"""

from __future__ import annotations

import json
import os
import subprocess
from types import TracebackType
from typing import Any

import pytest

from tests.support.tools import tool


class Oracle:
    def __init__(self) -> None:
        binary = tool("auditwarden-oracle")
        if binary is None:
            message = "auditwarden-oracle is not built: run `bash tests/oracle/build.sh` (scripts/test.sh does)"
            if os.environ.get("AUDITWARDEN_ALLOW_MISSING_TOOLS") == "1":
                pytest.skip(message)
            pytest.fail(message)
        self._proc = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def check(self, policy_text: str, requests: list[dict[str, Any]], validate_only: bool = False) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        line = json.dumps({"policy": policy_text, "requests": requests, "validateOnly": validate_only})
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self._proc.stdout.readline())
        if "fatal" in answer:
            raise RuntimeError(answer["fatal"])
        return answer

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)

    def __enter__(self) -> Oracle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
