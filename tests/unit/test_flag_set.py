"""kube-apiserver's whole flag set, each value judged as pflag sets it.

Every case of issue 11's "Why" §3 is pinned with kube-apiserver v1.37.2's own verdict (its
FlagSet and AuditOptions.Validate, run by tests/e2e/harness/cmd/flag-oracle; the differential
test tests/e2e/test_flag_differential.py compares thousands more argvs).
"""

from __future__ import annotations

import pytest

from webhook.core import goflags, pflag
from webhook.core.apiserver import analyse_flags, from_pod
from webhook.core.versions import NEWEST

BASE = ["--audit-policy-file=/etc/kubernetes/audit-policy.yaml", "--audit-log-path=/var/log/kubernetes/audit/audit.log",
        "--audit-log-maxage=30", "--audit-log-maxbackup=10", "--audit-log-maxsize=100"]  # fmt: skip


def violations(*extra: str, version: tuple[int, int] = NEWEST) -> list[str]:
    container = {"name": "kube-apiserver", "command": ["kube-apiserver", *BASE, *extra]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [container]}}
    cfg = from_pod(pod, version)
    assert cfg is not None
    return [f.message for f in analyse_flags(cfg, strict_retention=False, version=version).violations]


def test_the_flag_set_is_kube_apiservers_own() -> None:
    table = goflags.flag_table()
    assert table["audit-log-batch-throttle-qps"]["type"] == "float32"
    assert table["profiling"]["type"] == "bool"
    assert table["etcd-servers"]["type"] == "stringSlice"
    assert len(table) > 150


@pytest.mark.parametrize("argv", [["--not-a-flag=1"], ["--not-a-flag", "x"]])
def test_an_unknown_flag_stops_kube_apiserver(argv: list[str]) -> None:
    assert any("unknown flag: --not-a-flag" in m for m in violations(*argv))


def test_an_unknown_flag_is_only_a_warning_for_an_older_kube_apiserver() -> None:
    assert not any("unknown flag" in m for m in violations("--not-a-flag=1", version=(1, 30)))


def test_a_bad_value_of_a_non_audit_flag_stops_kube_apiserver() -> None:
    assert any(
        'invalid argument "yes" for "--profiling" flag: strconv.ParseBool: parsing "yes": invalid syntax' in m
        for m in violations("--profiling=yes")
    )


@pytest.mark.parametrize(
    ("flag", "reason"),
    [("--audit-log-batch-throttle-qps=1e39",
      'invalid argument "1e39" for "--audit-log-batch-throttle-qps" flag: strconv.ParseFloat: parsing "1e39": '
      "value out of range"),
     ("--audit-log-batch-throttle-qps=0x10", 'strconv.ParseFloat: parsing "0x10": invalid syntax'),
     ("--audit-log-batch-max-wait=9999999999h", 'time: invalid duration "9999999999h"')],
)  # fmt: skip
def test_audit_values_go_cannot_parse_stop_kube_apiserver(flag: str, reason: str) -> None:
    assert any(reason in m for m in violations(flag))


def test_a_zero_hex_float_qps_is_not_positive() -> None:
    found = violations(
        "--audit-log-mode=batch", "--audit-log-batch-throttle-enable", "--audit-log-batch-throttle-qps=0x0p0"
    )
    assert any("must be positive" in m for m in found)


def test_underscored_names_and_octal_values_read_as_pflag_reads_them() -> None:
    parsed = pflag.parse(["--audit_log_maxage=030", "--secure-port", "6443"])
    assert parsed.errors == [] and parsed.unknown == []
    assert pflag.parse_go_int(parsed.values["audit-log-maxage"]) == 24


@pytest.mark.parametrize(
    ("text", "bits", "value"),
    [("1.5", 32, 1.5), ("0x1p-2", 32, 0.25), ("1_0.5", 64, 10.5), ("inf", 64, float("inf")), ("3.4028235e38", 32,
     3.4028235e38)],
)  # fmt: skip
def test_floats_parse_as_go_parse_float(text: str, bits: int, value: float) -> None:
    assert goflags.parse_float(text, bits) == value


@pytest.mark.parametrize(("text", "nanoseconds"), [("1h30m", 5_400_000_000_000), ("-1.5s", -1_500_000_000), ("0", 0),
                                                   ("2562047h", 2562047 * 3_600_000_000_000)])  # fmt: skip
def test_durations_parse_as_go_parse_duration(text: str, nanoseconds: int) -> None:
    assert goflags.parse_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "5", "5x", "2562048h", ".s", "1e3s"])
def test_durations_go_refuses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="time: "):
        goflags.parse_duration(text)


def test_slice_values_are_one_csv_record() -> None:
    assert goflags.read_csv_record('a,"b,c"') == ["a", "b,c"]
    with pytest.raises(ValueError, match='bare " in non-quoted-field'):
        goflags.check_value("stringSlice", 'a"b')


# Flags added after 1.34, found by comparing the flag tables (each dumped from its release's own
# FlagSet): --min-compatibility-version in 1.35, --tls-curve-preferences in 1.36.
@pytest.mark.parametrize(("flag", "added"), [("--min-compatibility-version=1.34", (1, 35)),
                                             ("--tls-curve-preferences=23", (1, 36))])  # fmt: skip
def test_a_flag_is_refused_by_the_releases_before_it_and_taken_by_the_others(
    flag: str, added: tuple[int, int]
) -> None:
    name = flag[2:].partition("=")[0]
    for version in goflags.known_versions():
        assert (name in goflags.flag_table(version)) == (version >= added)
        refused = any(f"unknown flag: --{name}" in m for m in violations(flag, version=version))
        assert refused == (version < added), version


def test_a_target_older_than_every_table_gets_only_a_warning_naming_the_table_used() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "kube-apiserver", "command": ["kube-apiserver", *BASE,
                                                                          "--tls-curve-preferences=23"]}]}}  # fmt: skip
    cfg = from_pod(pod, (1, 30))
    assert cfg is not None and cfg.table == goflags.known_versions()[0]
    result = analyse_flags(cfg, strict_retention=False, version=(1, 30))
    assert not any("unknown flag" in f.message for f in result.violations)
    oldest = f"{cfg.table[0]}.{cfg.table[1]}"
    assert any(f"unknown flag: --tls-curve-preferences in kube-apiserver {oldest}" in f.message
               and "kube-apiserver 1.30 has it" in f.message for f in result.warnings)  # fmt: skip
