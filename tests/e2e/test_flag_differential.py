"""Differential test: kube-apiserver's command line is judged as kube-apiserver judges it.

Hypothesis generates argvs — audit and non-audit flags, every value syntax of their types
(Go ints with prefixes and underscores, float32 out of range and hex, durations that overflow,
Go booleans, CSV slices, IPs, ``k=v`` maps, ``k:v`` multimaps and feature gates, named cert
keys, port ranges, quantities, ``pattern=N`` vmodules, ``--version`` values, klog levels),
``--name value`` and ``--name=value`` forms, ``_`` in names, repeats, unknown flags, ``--``,
stray words — and sends them in batches to the flag oracle of a release
(tests/e2e/harness/cmd/flag-oracle built against that release's k8s.io/kubernetes: its own
FlagSet, its Args check and AuditOptions.Validate).  auditwarden, targeting that release
(``pflag.parse`` and ``apiserver._value_errors``, the port of the audit options' validation),
must agree on whether kube-apiserver starts, and on the value of every string flag that was
set.  CI runs at least 3,000 argvs against the newest release (``AUDITWARDEN_FLAG_DIFF_CASES``)
and 1,000 against each older one whose flag table auditwarden has
(``AUDITWARDEN_FLAG_DIFF_CASES_OLDER``).
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
from webhook.core import apiserver, goflags, pflag
from webhook.core.versions import NEWEST, KubeVersion

pytestmark = pytest.mark.e2e  # slow: kept out of the fast inner loop, run by the full suite

CASES = int(os.environ.get("AUDITWARDEN_FLAG_DIFF_CASES", "3000"))
CASES_OLDER = int(os.environ.get("AUDITWARDEN_FLAG_DIFF_CASES_OLDER", "1000"))
OLDER = [v for v in goflags.known_versions() if v != NEWEST]
BATCH = 50

INTS = ["30", "030", "0x1e", "1_0", "-1", "0", "9223372036854775808", "2147483648", "abc", "", "0b101", "1__0", "+5"]
FLOATS = ["10", "1e39", "0x10", "0x0p0", "1.5", "-1", "0", "inf", "NaN", "1_0.5", "0x1p-2", "3.5e38", ".5", "x"]
DURATIONS = ["10s", "9999999999h", "1h30m", "5", "", "-1s", "1.5m", "0", "2562047h", "1e3s", "5x", ".5s"]
BOOLS = ["true", "false", "yes", "1", "T", "False", "maybe", "0", ""]
SLICES = ["a,b", '"a,b",c', 'a"b', "", "x", '"a', "https://127.0.0.1:2379"]
IPS = ["127.0.0.1", "::1", "0.0.0.0", "1.2.3", "010.0.0.1", "fe80::1%eth0", "x", "", " 127.0.0.1 ", "::ffff:1.2.3.4",
       "1::1.2.3.4", "1.2.3.4.5"]  # fmt: skip
UINTS = ["10250", "0", "-1", "0x10", "18446744073709551615", "18446744073709551616", "1_0", "x"]
INT32_SLICES = ["23,24", "", "x", "2147483648", "0x17", '"23",24']
LEVELS = ["2", "0", "2147483647", "2147483648", "-1", "0x2", "x", ""]
TO_STRING = ["a=b", "a=b,c=d", '"a=b"', "a", 'a=b,"c=d,e"', "a=b,c", "", "=", 'a="b']
MAPS = ["a=b,c=d", "a", "a=b,,c", "=x", "", " k = v ", "a=b=c", "x,", ",", "a=b,c"]
MAP_BOOLS = ["a=true,b=false", "a=yes", "a", "", " a = t ", "a=1,b", "=0"]
MULTIMAPS = ["kube:Foo=true", "Foo=true", "a:b,c", "", ",", ":", "kube:A=true,B=false", " x : y "]
CERT_KEYS = ["c.crt,c.key", "c.crt,c.key:a.com,b.com", "c.crt,c.key:", "c.crt", "a,b,c", "c.crt,c.key: ", ":x",
             " c.crt , c.key ", "c.crt,c.key:a:b", ""]  # fmt: skip
PORT_RANGES = ["30000-32767", "30000+100", "8080", "", " 1-2 ", "5-3", "70000", "1-70000", "x", "1+-2", "-5", "+5",
               "0x10", "1_0", "1+9223372036854775807", "9223372036854775808", "1-2-3", "+1-2", "65535+1",
               "-0"]  # fmt: skip
QUANTITIES = ["0", "1Ki", "512", "1.5M", "Ei", "Pi", "Ti", "Gi", ".", "-", "+", "1e3", "1E", "1e", "e-10", ".e-10",
              ".e-9", "1.5.5", "1kK", "Mi5", "1e4294967296", "", "-1Gi", "1n", "1u", "0.1m", "00", "-.5Ki", "+.Ki",
              "1e-10", "1234567890123456789", "x", " 1", "1 ", "1e+", "5E-2", "0.5Ki", "007"]  # fmt: skip
VMODULES = ["a=1,b=2", "a=x", "a", "=1", "a=1=2", "a=2147483648", "a=2147483647", "a=-1", "", ",", "a=0", "a*=3",
            "a=+1", "a=0x1"]  # fmt: skip
VALUES = {"int": INTS, "int32": INTS, "int64": INTS, "float32": FLOATS, "float64": FLOATS, "duration": DURATIONS,
          "bool": BOOLS, "stringSlice": SLICES, "ip": IPS, "uint": UINTS, "int32Slice": INT32_SLICES,
          "Level": LEVELS, "stringToString": TO_STRING, "mapStringString": MAPS, "mapStringBool": MAP_BOOLS,
          "colonSeparatedMultimapStringString": MULTIMAPS, "namedCertKey": CERT_KEYS, "portRange": PORT_RANGES,
          "quantity": QUANTITIES, "pattern=N,...": VMODULES}  # fmt: skip


# Random texts over the alphabet of a type's syntax, beside the listed values.
ALPHABETS = {"quantity": "0123456789.+-eEinumkKMGTP", "portRange": "0123456789-+ x", "pattern=N,...": "ab*=,-019",
             "namedCertKey": "ab,: ", "mapStringString": "ab=, ", "mapStringBool": "ab=,tf1 ",
             "colonSeparatedMultimapStringString": "ab:=, ", "int32Slice": "0123x,-", "Level": "0123x-+",
             "stringToString": 'ab=,"'}  # fmt: skip


def version_values(binary: str) -> list[str]:
    """``--version`` values around the oracle's own version stamp (``binary``, e.g. v1.37.2)."""
    major, minor, patch = goflags.parse_semantic(binary)
    return ["true", "false", "raw", "yes", "", binary, f"{binary}-custom.1", f"{binary}+build.5", f"{binary}-01",
            f"v{major}.{minor}.{patch + 1}", f"v{major}.{minor - 1}.0", f"v{major}.{minor}", "vx",
            f"v{major}.0{minor}.{patch}", f" v{major}.{minor}.{patch}", f"v{major}.{minor}.{patch} "]  # fmt: skip


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
             "service-cluster-ip-range", "runtime-config", "oidc-required-claim", "feature-gates", "tls-sni-cert-key",
             "service-node-port-range", "log-text-info-buffer-size", "vmodule", "version", "allow-metric-labels",
             "kubelet-port", "tls-curve-preferences", "v", "default-not-ready-toleration-seconds",
             "emulated-version", "help"]  # fmt: skip


def flag_names(version: KubeVersion) -> list[str]:
    """Every audit flag of the release (twice: they matter most), the non-audit ones above that
    it has, and names it does not have (the newest release's flags it lacks among them)."""
    table = goflags.flag_table(version)
    audit = sorted(n for n in table if n.startswith("audit-"))
    missing = sorted(set(goflags.flag_table(NEWEST)) - set(table))[:10]
    return audit * 2 + [n for n in NON_AUDIT if n in table] + missing + ["not-a-flag", "audit-log-max-age", "Profiling"]


@st.composite
def argument(draw: st.DrawFn, version: KubeVersion) -> list[str]:
    """One flag occurrence (or a stray word) in one of pflag's forms."""
    special = draw(st.integers(0, 30))
    if special == 0:
        return ["--", draw(st.sampled_from(["", "x", "--audit-log-maxage=1"]))]
    if special == 1:
        return [draw(st.sampled_from(["x", "", "-", "-v=2", "-v", "2", "-v2147483648", "-vx"]))]
    name = draw(st.sampled_from(flag_names(version)))
    info = goflags.flag_table(version).get(name)
    kind = info["type"] if info else "string"
    if kind == "version":
        values = version_values(goflags.provenance(version)["version"])
    else:
        values = STRING_VALUES.get(name) or VALUES.get(kind) or ["value", "", "a=b"]
    value = draw(st.sampled_from(values))
    if kind in ALPHABETS and draw(st.booleans()):
        value = draw(st.text(ALPHABETS[kind], max_size=8))
    written = name.replace("-", "_") if draw(st.integers(0, 8)) == 0 else name
    form = draw(st.integers(0, 3))
    if kind == "bool" and form == 0:
        return [f"--{written}"]
    if form == 1 and kind != "bool":
        return [f"--{written}", value]
    return [f"--{written}={value}"]


def argvs(version: KubeVersion) -> st.SearchStrategy[list[str]]:
    return st.lists(argument(version), min_size=0, max_size=7).map(lambda parts: [a for p in parts for a in p])


def ours(argv: list[str], version: KubeVersion = NEWEST) -> tuple[bool, dict[str, str]]:
    ok, values, _ = judged(argv, version)
    return ok, values


def judged(argv: list[str], version: KubeVersion = NEWEST) -> tuple[bool, dict[str, str], list[str]]:
    """auditwarden's verdict, the values it read, and every refusal it words."""
    parsed = pflag.parse(argv, version)
    f = parsed.values
    audit_errors = apiserver._value_errors(
        f, log_enabled=bool(f.get("audit-log-path")), webhook_enabled=bool(f.get("audit-webhook-config-file")),
        version=version,
    )  # fmt: skip
    messages = [*parsed.errors, *parsed.unknown, *(e.message for e in audit_errors)]
    return not messages, f, messages


def _minor(version: KubeVersion) -> str:
    return f"v{version[0]}.{version[1]}"


@contextlib.contextmanager
def running_oracle(version: KubeVersion) -> Iterator[subprocess.Popen[str]]:
    name = f"flag-oracle-{_minor(version)}"
    binary = tool(name)
    if binary is None:
        pytest.fail(f"{name} is not built: run `bash tests/e2e/build.sh flag-oracle` (scripts/test.sh does)")
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def flag_oracle() -> Iterator[subprocess.Popen[str]]:
    with running_oracle(NEWEST) as proc:
        yield proc


@pytest.fixture(scope="module", params=OLDER, ids=_minor)
def older_oracle(request: pytest.FixtureRequest) -> Iterator[tuple[KubeVersion, subprocess.Popen[str]]]:
    with running_oracle(request.param) as proc:
        yield request.param, proc


def ask(proc: subprocess.Popen[str], argvs: list[list[str]]) -> list[dict[str, Any]]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("".join(json.dumps({"argv": a}) + "\n" for a in argvs))
    proc.stdin.flush()
    return [json.loads(proc.stdout.readline()) for _ in argvs]


COUNTERS: dict[KubeVersion, dict[str, int]] = {}


def compare(proc: subprocess.Popen[str], version: KubeVersion, batch: list[list[str]], *, count: bool = True) -> None:
    counter = COUNTERS.setdefault(version, {"argvs": 0, "ok": 0}) if count else {"argvs": 0, "ok": 0}
    table = goflags.flag_table(version)
    for argv, upstream in zip(batch, ask(proc, batch), strict=True):
        counter["argvs"] += 1
        ok, values, messages = judged(argv, version)
        assert ok == upstream["ok"], f"{_minor(version)}: verdict differs for {argv}: upstream {upstream['error']!r}"
        if upstream["error"].startswith(("invalid argument ", "unknown flag: ")):
            # pflag stops at the first error; auditwarden reports each, quoting pflag's words
            assert any(upstream["error"] in m for m in messages), f"{_minor(version)}: {argv}: {upstream['error']!r}"
        if ok:
            counter["ok"] += 1
            for name, shown in (upstream["values"] or {}).items():
                if table[name]["type"] == "string":
                    assert values[name] == shown, f"{_minor(version)}: --{name} differs for {argv}"


@settings(max_examples=max(1, CASES // BATCH), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # fmt: skip
@given(batch=st.lists(argvs(NEWEST), min_size=BATCH, max_size=BATCH))
def test_auditwarden_judges_argvs_as_kube_apiservers_flag_set_does(
    flag_oracle: subprocess.Popen[str], batch: list[list[str]]
) -> None:
    compare(flag_oracle, NEWEST, batch)


@settings(max_examples=max(1, CASES_OLDER // BATCH), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # fmt: skip
@given(data=st.data())
def test_an_older_target_is_judged_with_that_releases_flag_set(
    older_oracle: tuple[KubeVersion, subprocess.Popen[str]], data: st.DataObject
) -> None:
    version, proc = older_oracle
    compare(proc, version, data.draw(st.lists(argvs(version), min_size=BATCH, max_size=BATCH)))


@pytest.mark.parametrize("version", goflags.known_versions(), ids=_minor)
def test_every_listed_value_of_every_flag_alone(version: KubeVersion) -> None:
    """Each value above, for each flag generated, in one argv of its own: every case the random
    draws might miss."""
    table = goflags.flag_table(version)
    batch = []
    for name in dict.fromkeys(flag_names(version)):
        kind = table[name]["type"] if name in table else "string"
        if kind == "version":
            values = version_values(goflags.provenance(version)["version"])
        else:
            values = STRING_VALUES.get(name) or VALUES.get(kind) or ["value", "", "a=b"]
        batch += [[f"--{name}={value}"] for value in values]
    with running_oracle(version) as proc:
        compare(proc, version, batch, count=False)


def test_enough_argvs_ran() -> None:
    """Runs after the property tests in file order: proves the differential runs were not vacuous."""
    assert set(COUNTERS) == set(goflags.known_versions())
    for version, counter in COUNTERS.items():
        assert counter["argvs"] >= min(CASES if version == NEWEST else CASES_OLDER, 3000 if version == NEWEST else 1000)
        assert counter["ok"] >= counter["argvs"] // 10
    print(f"flag differential: {COUNTERS}")
