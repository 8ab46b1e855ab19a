"""Client for the Go differential oracle (tests/oracle/main.go).

The oracle runs kube-apiserver's own audit-policy loader and evaluator
(``k8s.io/apiserver/pkg/audit/policy`` of k8s.io/apiserver v0.37.2); one persistent process
answers one JSON line per question:

    in:  {"policy": "<policy file text>", "requests": [ATTRS, ...], "validateOnly": false}
    out: {"valid": bool, "error": "<load error or empty>",
          "results": [{"level": ..., "omitStages": [...sorted], "omitManagedFields": bool}, ...],
          "decoded": <the loaded Policy, Go field names> (when valid)}

    in:  {"yaml": "<text>"}
    out: {"json": "<sigs.k8s.io/yaml.YAMLToJSON of the text>" or null, "error": "..."}

ATTRS has the shape of the ``request`` entries of tests/data/conformance/checker-conformance.yaml
(missing keys are Go zero values: ``isResourceRequest`` defaults to false there).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from types import TracebackType
from typing import Any

import pytest

from tests.support.tools import tool

MISSING = "auditwarden-oracle is not built: run `bash tests/oracle/build.sh` (scripts/test.sh does)"


class OracleError(RuntimeError):
    """The oracle died or refused an input line (a bug in the caller or the oracle, never a verdict)."""


class Oracle:
    def __init__(self) -> None:
        binary = tool("auditwarden-oracle")
        if binary is None:
            if os.environ.get("AUDITWARDEN_ALLOW_MISSING_TOOLS") == "1":
                pytest.skip(f"{MISSING} (skipped because AUDITWARDEN_ALLOW_MISSING_TOOLS=1)")
            pytest.fail(MISSING)
        self._proc = subprocess.Popen(
            [str(binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )

    def to_json(self, text: str) -> dict[str, Any]:
        """``sigs.k8s.io/yaml.YAMLToJSON(text)``: ``{"json": "<JSON text>" or None, "error": "..."}``."""
        return self._ask({"yaml": text})

    def check(self, policy_text: str, requests: list[dict[str, Any]], validate_only: bool = False) -> dict[str, Any]:
        """Load ``policy_text`` with upstream's loader and evaluate each request; the parsed answer line."""
        return self._ask({"policy": policy_text, "requests": requests, "validateOnly": validate_only})

    def _ask(self, question: dict[str, Any]) -> dict[str, Any]:
        return self.ask_many([question])[0]

    def ask_many(self, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send a batch of question lines at once, then read the answers (one round trip)."""
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None or self._proc.poll() is not None:
            raise OracleError(f"auditwarden-oracle is not running (exit status {self._proc.returncode})")
        try:
            stdin.write("".join(json.dumps(q) + "\n" for q in questions))
            stdin.flush()
        except BrokenPipeError as err:
            raise OracleError(f"auditwarden-oracle died (exit status {self._proc.poll()})") from err
        answers = []
        for _ in questions:
            reply = stdout.readline()
            if not reply:
                raise OracleError(f"auditwarden-oracle closed its output (exit status {self._proc.wait(timeout=10)})")
            answer: dict[str, Any] = json.loads(reply)
            if "fatal" in answer:
                raise OracleError(f"auditwarden-oracle refused the input line: {answer['fatal']}")
            answers.append(answer)
        return answers

    def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> Oracle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
