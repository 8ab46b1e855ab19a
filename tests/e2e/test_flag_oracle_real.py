"""A handful of real kube-apiserver v1.37.2 starts confirm the flag oracle.

The differential test (test_flag_differential.py) trusts tests/e2e/harness/cmd/flag-oracle to
say what kube-apiserver does with an argv.  Here the real binary is started with the argvs of
issue 11's "Why" §3 (no etcd is needed: each fails before it would connect) and must fail
with exactly the message the oracle gives — and the one auditwarden quotes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.tools import tool
from webhook.core import apiserver, pflag

pytestmark = pytest.mark.e2e

CASES = [
    ["--not-a-flag=1"],
    ["--profiling=yes"],
    ["--audit-log-batch-throttle-qps=1e39"],
    ["--audit-log-batch-throttle-qps=0x10"],
    ["--audit-log-batch-max-wait=9999999999h"],
    ["stray"],
    # the Kubernetes value types (goflags.check_value)
    ["--service-node-port-range=5-3"],
    ["--log-text-info-buffer-size=Ei"],
    ["--vmodule=a"],
    ["--tls-sni-cert-key=c.crt,c.key:"],
    ["--oidc-required-claim=a"],
    ["--version=v1.36.0"],
    ["-v=2147483648"],
]


def _binary(name: str) -> Path:
    found = tool(name)
    if found is None:
        pytest.fail(f"{name} is not built: run `bash tests/e2e/build.sh` (scripts/test.sh does)")
    return found


def oracle_error(argv: list[str]) -> str:
    out = subprocess.run([str(_binary("flag-oracle"))], input=json.dumps({"argv": argv}) + "\n",
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    answer = json.loads(out.stdout)
    assert not answer["ok"]
    return str(answer["error"])


def ours(argv: list[str]) -> list[str]:
    parsed = pflag.parse(argv)
    f = parsed.values
    audit = apiserver._value_errors(f, log_enabled=bool(f.get("audit-log-path")), webhook_enabled=False)
    return [*parsed.errors, *parsed.unknown, *(x.message for x in audit)]


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(c) for c in CASES])
def test_kube_apiserver_refuses_with_the_oracles_message(argv: list[str]) -> None:
    real = subprocess.run([str(_binary("kube-apiserver")), *argv], capture_output=True, text=True, timeout=120)
    assert real.returncode != 0
    expected = oracle_error(argv)
    assert f"Error: {expected}" in real.stderr
    assert any(expected in message for message in ours(argv))


def test_kube_apiserver_runs_the_audit_validation_the_oracle_runs(tmp_path: Path) -> None:
    key = tmp_path / "sa.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True, timeout=60)
    audit = [f"--audit-log-path={tmp_path}/audit.log", "--audit-log-mode=batch", "--audit-log-batch-throttle-enable",
             "--audit-log-batch-throttle-qps=0x0p0"]  # fmt: skip
    argv = ["--etcd-servers=http://127.0.0.1:1", "--service-account-issuer=https://issuer",
            f"--service-account-key-file={key}", f"--service-account-signing-key-file={key}",
            f"--cert-dir={tmp_path}", "--secure-port=6443", *audit]  # fmt: skip
    real = subprocess.run([str(_binary("kube-apiserver")), *argv], capture_output=True, text=True, timeout=120)
    expected = oracle_error(audit)
    assert expected == "invalid audit batch log throttle QPS 0, must be a positive number"
    assert real.returncode != 0 and expected in real.stderr
    assert any("must be positive" in message for message in ours(audit))


@pytest.mark.parametrize("argv", [["--version"], ["--version=raw"], ["--help"]], ids=" ".join)
def test_help_and_version_print_and_exit_as_the_oracle_says(argv: list[str]) -> None:
    real = subprocess.run([str(_binary("kube-apiserver")), *argv], capture_output=True, text=True, timeout=120)
    assert real.returncode == 0 and real.stdout  # printed, and stopped without serving
    assert "exits instead of serving" in oracle_error(argv)
    assert any("exits instead of serving" in message for message in ours(argv))
