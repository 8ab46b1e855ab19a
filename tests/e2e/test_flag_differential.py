"""Differential test: kube-apiserver's command line is judged as kube-apiserver judges it.

Hypothesis generates argvs — audit and non-audit flags, every value syntax of their types
(Go ints with prefixes and underscores, float32 out of range and hex, durations that overflow,
Go booleans, CSV slices, IPs), ``--name value`` and ``--name=value`` forms, ``_`` in names,
repeats, unknown flags, ``--``, stray words — and sends them in batches to the flag oracle
(tests/e2e/harness/cmd/flag-oracle: kube-apiserver v1.37.2's own FlagSet, its Args check and
AuditOptions.Validate).  auditwarden (``pflag.parse`` and ``apiserver._value_errors``, the
port of the audit options' validation) must agree on whether kube-apiserver starts, and on
the value of every flag that was set.  CI runs at least 3,000 argvs
(``AUDITWARDEN_FLAG_DIFF_CASES``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support.tools import tool
from webhook.core import apiserver, pflag

pytestmark = pytest.mark.e2e  # slow: kept out of the fast inner loop, run by the full suite

CASES = int(os.environ.get("AUDITWARDEN_FLAG_DIFF_CASES", "3000"))
BATCH = 50

INTS = ["30", "030", "0x1e", "1_0", "-1", "0", "9223372036854775808", "2147483648", "abc", "", "0b101", "1__0", "+5"]
FLOATS = ["10", "1e39", "0x10", "0x0p0", "1.5", "-1", "0", "inf", "NaN", "1_0.5", "0x1p-2", "3.5e38", ".5", "x"]
DURATIONS = ["10s", "9999999999h", "1h30m", "5", "", "-1s", "1.5m", "0", "2562047h", "1e3s", "5x", ".5s"]
BOOLS = ["true", "false", "yes", "1", "T", "False", "maybe", "0", ""]
SLICES = ["a,b", '"a,b",c', 'a"b', "", "x", '"a', "https://127.0.0.1:2379"]
IPS = ["127.0.0.1", "::1", "0.0.0.0", "1.2.3", "010.0.0.1", "fe80::1%eth0", "x"]
VALUES = {"int": INTS, "int32": INTS, "int64": INTS, "float32": FLOATS, "float64": FLOATS, "duration": DURATIONS,
          "bool": BOOLS, "stringSlice": SLICES, "ip": IPS}  # fmt: skip
STRING_VALUES = {
    "audit-log-mode": ["batch", "blocking", "blocking-strict", "bogus"],
    "audit-webhook-mode": ["batch", "blocking", "blocking-strict", "bogus"],
    "audit-log-format": ["json", "legacy", "xml"],
    "audit-log-version": ["audit.k8s.io/v1", "audit.k8s.io/v1beta1", "v1"],
    "audit-webhook-version": ["audit.k8s.io/v1", "audit.k8s.io/v1beta1"],
    "audit-log-path": ["/var/log/audit.log", "-", ""],
    "audit-webhook-config-file": ["/etc/kubernetes/webhook.yaml", ""],
}
NON_AUDIT = ["profiling", "secure-port", "etcd-servers", "bind-address", "request-timeout", "max-requests-inflight",
             "enable-admission-plugins", "goaway-chance", "anonymous-auth", "allow-privileged", "event-ttl",
             "service-cluster-ip-range"]  # fmt: skip


def _audit_flags() -> list[str]:
    return sorted(n for n in pflag.goflags.flag_table() if n.startswith("audit-"))


FLAG_NAMES = _audit_flags() * 2 + NON_AUDIT + ["not-a-flag", "audit-log-max-age", "Profiling"]


@st.composite
def argument(draw: st.DrawFn) -> list[str]:
    """One flag occurrence (or a stray word) in one of pflag's forms."""
    special = draw(st.integers(0, 30))
    if special == 0:
        return ["--", draw(st.sampled_from(["", "x", "--audit-log-maxage=1"]))]
    if special == 1:
        return [draw(st.sampled_from(["x", "", "-", "-v=2", "-v", "2"]))]
    name = draw(st.sampled_from(FLAG_NAMES))
    info = pflag.goflags.flag_table().get(name)
    kind = info["type"] if info else "string"
    values = STRING_VALUES.get(name) or VALUES.get(kind) or ["value", "", "a=b"]
    value = draw(st.sampled_from(values))
    written = name.replace("-", "_") if draw(st.integers(0, 8)) == 0 else name
    form = draw(st.integers(0, 3))
    if kind == "bool" and form == 0:
        return [f"--{written}"]
    if form == 1 and kind != "bool":
        return [f"--{written}", value]
    return [f"--{written}={value}"]


ARGV = st.lists(argument(), min_size=0, max_size=7).map(lambda parts: [a for p in parts for a in p])


def ours(argv: list[str]) -> tuple[bool, dict[str, str]]:
    parsed = pflag.parse(argv)
    f = parsed.values
    audit_errors = apiserver._value_errors(
        f, log_enabled=bool(f.get("audit-log-path")), webhook_enabled=bool(f.get("audit-webhook-config-file"))
    )
    return not (parsed.errors or parsed.unknown or audit_errors), f


@pytest.fixture(scope="module")
def flag_oracle() -> Iterator[subprocess.Popen[str]]:
    binary = tool("flag-oracle")
    if binary is None:
        pytest.fail("flag-oracle is not built: run `bash tests/e2e/build.sh flag-oracle` (scripts/test.sh does)")
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    yield proc
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    proc.wait(timeout=10)


def ask(proc: subprocess.Popen[str], argvs: list[list[str]]) -> list[dict[str, Any]]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("".join(json.dumps({"argv": a}) + "\n" for a in argvs))
    proc.stdin.flush()
    return [json.loads(proc.stdout.readline()) for _ in argvs]


COUNTER = {"argvs": 0, "ok": 0}


@settings(max_examples=max(1, CASES // BATCH), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # fmt: skip
@given(argvs=st.lists(ARGV, min_size=BATCH, max_size=BATCH))
def test_auditwarden_judges_argvs_as_kube_apiservers_flag_set_does(
    flag_oracle: subprocess.Popen[str], argvs: list[list[str]]
) -> None:
    for argv, upstream in zip(argvs, ask(flag_oracle, argvs), strict=True):
        COUNTER["argvs"] += 1
        ok, values = ours(argv)
        assert ok == upstream["ok"], f"verdict differs for {argv}: upstream {upstream['error']!r}"
        if ok:
            COUNTER["ok"] += 1
            for name, shown in (upstream["values"] or {}).items():
                kind = pflag.goflags.flag_table()[name]["type"]
                if kind in ("string",):
                    assert values[name] == shown, f"--{name} differs for {argv}"


def test_enough_argvs_ran() -> None:
    """Runs after the property test in file order: proves the differential run was not vacuous."""
    assert COUNTER["argvs"] >= min(CASES, 3000)
    assert COUNTER["ok"] >= COUNTER["argvs"] // 10
    print(f"flag differential: {COUNTER}")
