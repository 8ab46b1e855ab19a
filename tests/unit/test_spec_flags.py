"""kube-apiserver audit flags: how they are parsed, where they come from, and what they must be.

Rules: README "How a verdict is reached" (CIS Kubernetes Benchmark 1.2.16-1.2.19, DISA STIG
CNTR-K8-000700 and CNTR-K8-003290..003310).  Upstream:
spf13/pflag flag.go (parsing), component-base cli/flag (``_`` -> ``-``), Go strconv
(``ParseInt(s, 0, 64)``, ``ParseBool``), staging/src/k8s.io/apiserver/pkg/server/options/audit.go
(defaults and start-up validation), cmd/kubeadm/app/util/arguments.go (ArgumentsToCommand).
"""

from __future__ import annotations

from typing import Any

import pytest

from webhook.core import pflag
from webhook.core.apiserver import (
    ApiserverConfig,
    FlagAnalysis,
    Mount,
    analyse_flags,
    from_cluster_configuration,
    from_pod,
)
from webhook.core.findings import Finding
from webhook.core.versions import NEWEST, KubeVersion

POLICY = "/etc/kubernetes/audit-policy.yaml"
LOG = "/var/log/kubernetes/audit/audit.log"
COMPLIANT = {
    "audit-policy-file": POLICY,
    "audit-log-path": LOG,
    "audit-log-maxage": "30",
    "audit-log-maxbackup": "10",
    "audit-log-maxsize": "100",
}
GOOD_MOUNTS = [
    Mount("/etc/kubernetes/audit-policy.yaml", "/etc/kubernetes/audit-policy.yaml", True),
    Mount("/var/log/kubernetes/audit", "/var/log/kubernetes/audit", False),
]


def parse(*argv: str) -> pflag.ParsedFlags:
    return pflag.parse(list(argv))


def analyse(
    flags: dict[str, str],
    *,
    strict: bool = False,
    version: KubeVersion = NEWEST,
    mounts: list[Mount] | None = None,
    errors: list[str] | None = None,
) -> FlagAnalysis:
    return analyse_flags(ApiserverConfig(flags, mounts, errors or []), strict_retention=strict, version=version)


def with_flags(**changes: str | None) -> dict[str, str]:
    """COMPLIANT with some flags changed (underscores in keyword names become dashes); None removes."""
    out = dict(COMPLIANT)
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def text(findings: list[Finding], code: str) -> str:
    return " | ".join(f.message for f in findings if f.code == code)


# ======================================================================== pflag syntax


def test_equals_form_sets_the_flag() -> None:
    assert parse("--audit-log-path=/var/log/a.log").values == {"audit-log-path": "/var/log/a.log"}


def test_space_form_takes_the_next_argument_as_the_value() -> None:
    assert parse("--audit-log-path", "/var/log/a.log").values == {"audit-log-path": "/var/log/a.log"}


def test_the_last_occurrence_of_a_repeated_flag_wins() -> None:
    parsed = parse("--audit-log-maxage=7", "--audit-log-maxage", "30", "--audit-log-maxage=90")
    assert parsed.values["audit-log-maxage"] == "90"
    assert parsed.notes == ["--audit-log-maxage is given 3 times; the last one ('90') wins"]


def test_audit_log_path_dash_in_space_form_is_the_value_dash_meaning_stdout() -> None:
    parsed = parse("--audit-log-path", "-", "--audit-policy-file=/p.yaml")
    assert parsed.values == {"audit-log-path": "-", "audit-policy-file": "/p.yaml"}
    assert parsed.errors == []


def test_a_value_starting_with_a_dash_is_taken_as_the_value() -> None:
    assert parse("--audit-log-maxage", "-1").values == {"audit-log-maxage": "-1"}


def test_underscores_in_flag_names_are_normalised_to_dashes() -> None:
    assert parse("--audit_log_path=/x", "--audit-log_maxage=30").values == {
        "audit-log-path": "/x",
        "audit-log-maxage": "30",
    }


def test_a_bare_boolean_flag_is_true() -> None:
    assert parse("--audit-log-compress").values == {"audit-log-compress": "true"}


def test_a_boolean_flag_does_not_take_the_next_argument() -> None:
    parsed = parse("--audit-log-compress", "--audit-log-path=/x")
    assert parsed.values == {"audit-log-compress": "true", "audit-log-path": "/x"}


def test_boolean_false_in_space_form_is_a_stray_argument_and_fatal() -> None:
    parsed = parse("--audit-log-compress", "false")
    assert parsed.values["audit-log-compress"] == "true"
    assert parsed.errors == ['"kube-apiserver" does not take any arguments, got ["false"]']  # Go's %q of a []string


def test_double_dash_ends_flag_parsing_and_what_follows_is_fatal() -> None:
    parsed = parse("--audit-policy-file=/p", "--", "--audit-log-path=/x")
    assert "audit-log-path" not in parsed.values
    assert len(parsed.errors) == 1
    assert "does not take any arguments" in parsed.errors[0]


def test_a_lone_double_dash_at_the_end_is_harmless() -> None:
    assert parse("--audit-log-path=/x", "--").errors == []


def test_empty_positional_arguments_are_ignored_by_kube_apiserver() -> None:
    # cmd/kube-apiserver/app/server.go Args: only non-empty positional arguments are refused
    assert parse("--audit-log-path=/x", "").errors == []


def test_a_single_dash_long_flag_is_a_shorthand_cluster_and_fatal() -> None:
    parsed = parse("-audit-log-path=/var/log/a.log")
    assert parsed.values == {}
    assert parsed.errors and parsed.errors[0].startswith("unknown shorthand flag: 'a'")


def test_a_single_dash_long_flag_in_space_form_is_fatal() -> None:
    assert parse("-audit-log-path", "/var/log/a.log").errors


def test_three_dashes_are_bad_flag_syntax() -> None:
    assert parse("---audit-log-path=/x").errors == ["bad flag syntax: ---audit-log-path=/x"]


def test_a_flag_without_its_value_at_the_end_is_fatal() -> None:
    assert parse("--audit-log-path").errors == ["flag needs an argument: --audit-log-path"]


def test_an_unknown_audit_flag_is_fatal() -> None:
    parsed = parse("--audit-log-max-age=30")
    assert parsed.values == {}
    assert parsed.unknown == ["unknown flag: --audit-log-max-age"]


def test_known_non_audit_flags_are_accepted() -> None:
    parsed = parse("--etcd-servers=https://127.0.0.1:2379", "--audit-log-path=/x")
    assert parsed.errors == []
    assert parsed.values["audit-log-path"] == "/x"


def test_the_v_shorthand_with_an_attached_value_is_accepted() -> None:
    assert parse("-v=2", "--audit-log-path=/x").errors == []
    assert parse("-v4", "--audit-log-path=/x").errors == []


def test_the_v_shorthand_takes_the_next_argument_as_its_value() -> None:
    # pflag parseSingleShortArg: '-f arg' consumes arg when the flag has no NoOptDefVal (klog -v has none)
    assert parse("-v", "2", "--audit-log-path=/x").errors == []


def test_the_shutdown_send_retry_after_boolean_does_not_swallow_the_next_flag() -> None:
    # apiserver pkg/server/options/server_run_options.go: fs.BoolVar(..., "shutdown-send-retry-after", ...)
    parsed = parse("--shutdown-send-retry-after", "--audit-log-path=/var/log/a.log")
    assert parsed.values.get("audit-log-path") == "/var/log/a.log"


@pytest.mark.parametrize(
    "flag", ["--anonymous-auth", "--profiling", "--allow-privileged", "--enable-aggregator-routing", "--logtostderr"]
)
def test_known_boolean_apiserver_flags_do_not_swallow_the_next_flag(flag: str) -> None:
    assert parse(flag, "--audit-log-path=/x").values["audit-log-path"] == "/x"


# ===================================================================== Go integers


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("30", 30),
        ("030", 24),  # a leading 0 is octal
        ("0x1e", 30),
        ("0X1E", 30),
        ("0o36", 30),
        ("0b11110", 30),
        ("1_0", 10),
        ("0x_1e", 30),
        ("0_30", 24),
        ("+30", 30),
        ("-1", -1),
        ("0", 0),
        ("00", 0),
    ],
)
def test_integers_are_parsed_with_base_prefixes_like_go_parseint_base_0(literal: str, value: int) -> None:
    assert pflag.parse_go_int(literal) == value


@pytest.mark.parametrize(
    "literal", ["", "30d", "3.0", "08", "0x", "1__0", "_10", "10_", "0x1g", "thirty", "9223372036854775808"]
)
def test_a_non_integer_is_refused_like_go(literal: str) -> None:
    with pytest.raises(ValueError):
        pflag.parse_go_int(literal)


@pytest.mark.parametrize("literal", ["30 ", " 30", "\t30", "３０"])
def test_whitespace_and_non_ascii_digits_are_not_go_integers(literal: str) -> None:
    with pytest.raises(ValueError):
        pflag.parse_go_int(literal)


@pytest.mark.parametrize("literal", ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"])
def test_booleans_accept_exactly_go_parsebool_spellings(literal: str) -> None:
    assert pflag.parse_go_bool(literal) is (literal in ("1", "t", "T", "TRUE", "true", "True"))


@pytest.mark.parametrize("literal", ["yes", "no", "on", "tRUE", "", "2"])
def test_other_boolean_spellings_are_refused(literal: str) -> None:
    with pytest.raises(ValueError):
        pflag.parse_go_bool(literal)


@pytest.mark.parametrize("literal", ["10s", "1m30s", "0", "1.5h", "300ms", "2h45m"])
def test_durations_use_go_duration_syntax(literal: str) -> None:
    pflag.check_go_duration(literal)


@pytest.mark.parametrize("literal", ["10", "1d", "s", "", "10 s"])
def test_a_duration_without_unit_or_with_an_unknown_unit_is_refused(literal: str) -> None:
    with pytest.raises(ValueError):
        pflag.check_go_duration(literal)


# =============================================================== where the argv comes from


def test_kubeadm_style_command_holds_every_flag() -> None:
    assert pflag.apiserver_argv(["kube-apiserver", "--audit-log-path=/x"], []) == ["--audit-log-path=/x"]


def test_command_and_args_are_concatenated() -> None:
    argv = pflag.apiserver_argv(["/usr/local/bin/kube-apiserver"], ["--audit-log-path", "/x"])
    assert argv == ["--audit-log-path", "/x"]


def test_hyperkube_kube_apiserver_is_recognised() -> None:
    assert pflag.apiserver_argv(["/hyperkube", "kube-apiserver", "--a=b"], []) == ["--a=b"]


def test_args_alone_are_the_flags_when_the_image_entrypoint_runs_the_apiserver() -> None:
    assert pflag.apiserver_argv([], ["--audit-log-path=/x"]) == ["--audit-log-path=/x"]


def test_a_shell_wrapped_command_is_word_split_like_the_shell() -> None:
    command = [
        "sh",
        "-c",
        "exec kube-apiserver --audit-policy-file='/etc/kubernetes/audit policy.yaml' --audit-log-path -",
    ]
    assert pflag.apiserver_argv(command, []) == [
        "--audit-policy-file=/etc/kubernetes/audit policy.yaml",
        "--audit-log-path",
        "-",
    ]


def test_a_shell_script_given_in_args_is_found() -> None:
    argv = pflag.apiserver_argv(["/bin/bash", "-c"], ["exec /usr/local/bin/kube-apiserver --audit-log-path=/x"])
    assert argv == ["--audit-log-path=/x"]


def test_a_shell_command_list_stops_at_the_control_operator() -> None:
    argv = pflag.apiserver_argv(["sh", "-c", "kube-apiserver --audit-log-path=/x && echo done"], [])
    assert argv == ["--audit-log-path=/x"]


def test_a_container_running_something_else_has_no_apiserver_argv() -> None:
    assert pflag.apiserver_argv(["etcd", "--data-dir=/var/lib/etcd"], []) is None
    assert pflag.apiserver_argv(["sh", "-c", "echo kube"], []) is None


# ======================================================= required: policy and backend


def test_a_compliant_configuration_has_no_finding() -> None:
    result = analyse(COMPLIANT, strict=True, mounts=GOOD_MOUNTS)
    assert result.violations == []
    assert result.warnings == []
    assert result.summary == f"kube-apiserver auditing is on (policy {POLICY}, log file {LOG})."


def test_without_audit_policy_file_nothing_is_audited() -> None:
    result = analyse(with_flags(audit_policy_file=None))
    assert codes(result.violations) == ["audit-policy-file-missing"]
    assert result.summary.startswith("kube-apiserver auditing is OFF")


def test_an_empty_audit_policy_file_is_the_same_as_none() -> None:
    assert codes(analyse(with_flags(audit_policy_file="")).violations) == ["audit-policy-file-missing"]


def test_without_a_backend_nothing_is_written() -> None:
    result = analyse({"audit-policy-file": POLICY})
    assert codes(result.violations) == ["audit-backend-missing"]


def test_the_webhook_backend_alone_is_a_backend_and_needs_no_retention() -> None:
    result = analyse({"audit-policy-file": POLICY, "audit-webhook-config-file": "/etc/kubernetes/audit-webhook.yaml"})
    assert result.violations == []
    assert result.warnings == []


def test_audit_log_path_dash_is_stdout_and_retention_does_not_apply() -> None:
    result = analyse({"audit-policy-file": POLICY, "audit-log-path": "-"}, strict=True)
    assert result.violations == []
    assert codes(result.warnings) == ["audit-log-stdout"]


def test_flag_parse_errors_are_violations_because_the_apiserver_would_not_start() -> None:
    result = analyse(COMPLIANT, errors=["unknown flag: --audit-log-max-age"])
    assert codes(result.violations) == ["apiserver-flags-invalid"]


# ================================================================ retention thresholds


@pytest.mark.parametrize(
    ("flag", "minimum"), [("audit-log-maxage", 30), ("audit-log-maxbackup", 10), ("audit-log-maxsize", 100)]
)
def test_a_retention_value_at_the_threshold_passes(flag: str, minimum: int) -> None:
    assert analyse({**COMPLIANT, flag: str(minimum)}).violations == []


@pytest.mark.parametrize(
    ("flag", "minimum"), [("audit-log-maxage", 30), ("audit-log-maxbackup", 10), ("audit-log-maxsize", 100)]
)
@pytest.mark.parametrize("strict", [False, True])
def test_an_explicit_retention_value_below_the_threshold_is_a_violation_in_every_profile(
    flag: str, minimum: int, strict: bool
) -> None:
    result = analyse({**COMPLIANT, flag: str(minimum - 1)}, strict=strict)
    assert codes(result.violations) == [f"{flag}-too-low"]


def test_octal_030_maxage_is_24_days_and_too_low() -> None:
    result = analyse(with_flags(audit_log_maxage="030"))
    assert codes(result.violations) == ["audit-log-maxage-too-low"]
    assert "('030' is read as 24)" in result.violations[0].message


def test_hex_0x1e_maxage_is_30_days_and_passes() -> None:
    assert analyse(with_flags(audit_log_maxage="0x1e")).violations == []


def test_underscore_1_0_maxbackup_is_10_and_passes() -> None:
    assert analyse(with_flags(audit_log_maxbackup="1_0")).violations == []


def test_a_non_integer_retention_value_is_invalid() -> None:
    result = analyse(with_flags(audit_log_maxage="30d"))
    assert codes(result.violations) == ["audit-flag-invalid"]
    assert 'invalid argument "30d" for "--audit-log-maxage"' in result.violations[0].message


@pytest.mark.parametrize("flag", ["audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize"])
def test_a_negative_retention_value_is_invalid_not_merely_too_low(flag: str) -> None:
    result = analyse({**COMPLIANT, flag: "-1"})
    assert codes(result.violations) == ["audit-flag-invalid"]
    assert "must not be negative" in result.violations[0].message


def test_a_negative_retention_value_is_not_validated_when_the_log_backend_is_off() -> None:
    # options/audit.go AuditLogOptions.Validate returns early unless --audit-log-path is set
    flags = {"audit-policy-file": POLICY, "audit-webhook-config-file": "/w.yaml", "audit-log-maxage": "-1"}
    assert analyse(flags).violations == []


def test_maxsize_zero_is_too_low() -> None:
    result = analyse(with_flags(audit_log_maxsize="0"), version=(1, 35))
    assert codes(result.violations) == ["audit-log-maxsize-too-low"]
    assert "disables rotation" not in result.violations[0].message


def test_maxsize_zero_disables_rotation_from_1_36() -> None:
    result = analyse(with_flags(audit_log_maxsize="0"), version=(1, 36))
    assert codes(result.violations) == ["audit-log-maxsize-too-low"]
    assert "(0 disables rotation since Kubernetes 1.36)" in result.violations[0].message


@pytest.mark.parametrize("flag", ["audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize"])
def test_unset_retention_is_a_warning_in_baseline(flag: str) -> None:
    result = analyse({k: v for k, v in COMPLIANT.items() if k != flag}, strict=False)
    assert result.violations == []
    assert codes(result.warnings) == [f"{flag}-unset"]


@pytest.mark.parametrize("flag", ["audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize"])
def test_unset_retention_is_a_violation_in_strict_and_stig(flag: str) -> None:
    result = analyse({k: v for k, v in COMPLIANT.items() if k != flag}, strict=True)
    assert codes(result.violations) == [f"{flag}-unset"]


@pytest.mark.parametrize(
    ("flag", "default"), [("audit-log-maxage", 366), ("audit-log-maxbackup", 100), ("audit-log-maxsize", 100)]
)
@pytest.mark.parametrize("version", [(1, 36), (1, 37)])
def test_unset_retention_names_the_1_36_default(flag: str, default: int, version: KubeVersion) -> None:
    result = analyse({k: v for k, v in COMPLIANT.items() if k != flag}, version=version)
    assert f"defaults it to {default})" in result.warnings[0].message
    assert f"kube-apiserver 1.{version[1]} " in result.warnings[0].message


@pytest.mark.parametrize("flag", ["audit-log-maxage", "audit-log-maxbackup"])
def test_unset_retention_before_1_36_defaults_to_no_limit(flag: str) -> None:
    result = analyse({k: v for k, v in COMPLIANT.items() if k != flag}, version=(1, 35))
    assert "kube-apiserver 1.35 defaults it to 0 (no limit)" in result.warnings[0].message


def test_unset_maxsize_before_1_36_means_lumberjacks_100_mb() -> None:
    result = analyse(with_flags(audit_log_maxsize=None), version=(1, 35))
    assert "defaults it to 0 (lumberjack then rotates at 100 MB)" in result.warnings[0].message


# ============================================================== other invalid values


@pytest.mark.parametrize("mode", ["batch", "blocking", "blocking-strict"])
def test_the_three_audit_log_modes_are_valid(mode: str) -> None:
    assert analyse(with_flags(audit_log_mode=mode)).violations == []


@pytest.mark.parametrize("mode", ["async", "Blocking", ""])
def test_an_unknown_audit_log_mode_is_invalid(mode: str) -> None:
    assert codes(analyse(with_flags(audit_log_mode=mode)).violations) == ["audit-flag-invalid"]


def test_an_unknown_audit_webhook_mode_is_invalid_when_the_webhook_backend_is_on() -> None:
    flags = {**COMPLIANT, "audit-webhook-config-file": "/w.yaml", "audit-webhook-mode": "fast"}
    assert codes(analyse(flags).violations) == ["audit-flag-invalid"]


@pytest.mark.parametrize(("fmt", "ok"), [("json", True), ("legacy", True), ("text", False), ("JSON", False)])
def test_audit_log_format_is_json_or_legacy(fmt: str, ok: bool) -> None:
    assert (analyse(with_flags(audit_log_format=fmt)).violations == []) is ok


def test_only_audit_k8s_io_v1_is_a_valid_audit_log_version() -> None:
    assert analyse(with_flags(audit_log_version="audit.k8s.io/v1")).violations == []
    assert codes(analyse(with_flags(audit_log_version="audit.k8s.io/v1beta1")).violations) == ["audit-flag-invalid"]


def test_an_invalid_boolean_value_is_invalid() -> None:
    assert codes(analyse(with_flags(audit_log_compress="maybe")).violations) == ["audit-flag-invalid"]


def test_an_invalid_duration_is_invalid() -> None:
    assert codes(analyse(with_flags(audit_log_batch_max_wait="10")).violations) == ["audit-flag-invalid"]


def test_a_zero_batch_buffer_size_in_batch_mode_is_invalid() -> None:
    flags = with_flags(audit_log_mode="batch", audit_log_batch_buffer_size="0")
    assert codes(analyse(flags).violations) == ["audit-flag-invalid"]


def test_batch_sizes_are_not_validated_outside_batch_mode() -> None:
    assert analyse(with_flags(audit_log_mode="blocking", audit_log_batch_buffer_size="0")).violations == []


def test_a_zero_truncate_max_event_size_is_invalid_for_an_enabled_backend() -> None:
    assert codes(analyse(with_flags(audit_log_truncate_max_event_size="0")).violations) == ["audit-flag-invalid"]


# ========================================================================= Pods


def apiserver_pod(
    flags: list[str],
    *,
    volumes: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-apiserver", "namespace": "kube-system", "labels": {"component": "kube-apiserver"}},
        "spec": {
            "containers": [
                {
                    "name": "kube-apiserver",
                    "image": "registry.k8s.io/kube-apiserver:v1.35.0",
                    "command": command if command is not None else ["kube-apiserver", *flags],
                    "volumeMounts": mounts if mounts is not None else [],
                }
            ],
            "volumes": volumes if volumes is not None else [],
        },
    }


POD_FLAGS = [f"--{k}={v}" for k, v in COMPLIANT.items()]
HOST_VOLUMES: list[dict[str, Any]] = [
    {"name": "audit", "hostPath": {"path": "/etc/kubernetes/audit-policy.yaml", "type": "File"}},
    {"name": "audit-log", "hostPath": {"path": "/var/log/kubernetes/audit/", "type": "DirectoryOrCreate"}},
]
GOOD_POD_MOUNTS: list[dict[str, Any]] = [
    {"name": "audit", "mountPath": "/etc/kubernetes/audit-policy.yaml", "readOnly": True},
    {"name": "audit-log", "mountPath": "/var/log/kubernetes/audit/", "readOnly": False},
]


def pod_analysis(pod: dict[str, Any], *, strict: bool = True) -> FlagAnalysis:
    cfg = from_pod(pod)
    assert cfg is not None
    return analyse_flags(cfg, strict_retention=strict, version=NEWEST)


def test_a_kubeadm_style_pod_with_mounted_policy_and_log_passes() -> None:
    result = pod_analysis(apiserver_pod(POD_FLAGS, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS))
    assert result.violations == []


def test_the_policy_file_may_lie_inside_a_mounted_directory() -> None:
    volumes = [
        {"name": "k8s", "hostPath": {"path": "/etc/kubernetes"}},
        {"name": "audit-log", "hostPath": {"path": "/var/log/kubernetes/audit/"}},
    ]
    mounts = [{"name": "k8s", "mountPath": "/etc/kubernetes", "readOnly": True}, GOOD_POD_MOUNTS[1]]
    assert pod_analysis(apiserver_pod(POD_FLAGS, volumes=volumes, mounts=mounts)).violations == []


def test_a_policy_file_outside_every_hostpath_mount_is_a_violation() -> None:
    result = pod_analysis(apiserver_pod(POD_FLAGS, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS[1:]))
    assert codes(result.violations) == ["audit-policy-not-mounted"]


def test_a_policy_file_in_a_non_hostpath_volume_does_not_count() -> None:
    volumes = [{"name": "audit", "configMap": {"name": "audit-policy"}}, HOST_VOLUMES[1]]
    result = pod_analysis(apiserver_pod(POD_FLAGS, volumes=volumes, mounts=GOOD_POD_MOUNTS))
    assert codes(result.violations) == ["audit-policy-not-mounted"]


def test_a_log_directory_outside_every_hostpath_mount_is_a_violation() -> None:
    result = pod_analysis(apiserver_pod(POD_FLAGS, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS[:1]))
    assert codes(result.violations) == ["audit-log-not-mounted"]


def test_a_read_only_log_directory_mount_is_refused() -> None:
    mounts = [GOOD_POD_MOUNTS[0], {**GOOD_POD_MOUNTS[1], "readOnly": True}]
    result = pod_analysis(apiserver_pod(POD_FLAGS, volumes=HOST_VOLUMES, mounts=mounts))
    assert codes(result.violations) == ["audit-log-mount-read-only"]


def test_the_deepest_covering_mount_decides_for_the_log_directory() -> None:
    volumes = [*HOST_VOLUMES, {"name": "var-log", "hostPath": {"path": "/var/log"}}]
    mounts = [*GOOD_POD_MOUNTS, {"name": "var-log", "mountPath": "/var/log", "readOnly": True}]
    assert pod_analysis(apiserver_pod(POD_FLAGS, volumes=volumes, mounts=mounts)).violations == []


def test_stdout_logging_needs_no_log_mount() -> None:
    flags = [f"--audit-policy-file={POLICY}", "--audit-log-path", "-"]
    result = pod_analysis(apiserver_pod(flags, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS[:1]))
    assert result.violations == []


def test_a_shell_wrapped_apiserver_pod_is_analysed() -> None:
    command = ["/bin/sh", "-c", "exec kube-apiserver " + " ".join(POD_FLAGS)]
    result = pod_analysis(apiserver_pod([], command=command, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS))
    assert result.violations == []
    assert result.policy_path == POLICY


def test_pod_flags_in_space_form_and_repeated_are_resolved_last_wins() -> None:
    flags = [*POD_FLAGS, "--audit-log-maxage", "7"]
    result = pod_analysis(apiserver_pod(flags, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS))
    assert codes(result.violations) == ["audit-log-maxage-too-low"]
    assert codes(result.warnings) == ["apiserver-flag-note"]


def test_a_boolean_false_stray_argument_in_a_pod_is_a_violation() -> None:
    flags = [*POD_FLAGS, "--audit-log-compress", "false"]
    result = pod_analysis(apiserver_pod(flags, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS))
    assert codes(result.violations) == ["apiserver-flags-invalid"]


def test_var_references_in_the_command_are_expanded_from_the_container_env_like_the_kubelet() -> None:
    flags = [*POD_FLAGS[:2], "--audit-log-maxage=$(AUDIT_MAXAGE)", *POD_FLAGS[3:]]
    pod = apiserver_pod(flags, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS)
    pod["spec"]["containers"][0]["env"] = [{"name": "AUDIT_MAXAGE", "value": "30"}]
    assert pod_analysis(pod).violations == []


def test_an_unresolvable_var_reference_stays_literal_and_is_invalid() -> None:
    flags = [*POD_FLAGS[:2], "--audit-log-maxage=$(UNDEFINED)", *POD_FLAGS[3:]]
    result = pod_analysis(apiserver_pod(flags, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS))
    assert codes(result.violations) == ["audit-flag-invalid"]


def test_an_unknown_audit_flag_in_a_pod_is_a_violation() -> None:
    flags = [*POD_FLAGS, "--audit-log-maxfiles=10"]
    result = pod_analysis(apiserver_pod(flags, volumes=HOST_VOLUMES, mounts=GOOD_POD_MOUNTS))
    assert codes(result.violations) == ["apiserver-flags-invalid"]


# ======================================================================= kubeadm


def cluster_configuration(api_version: str, extra_args: Any, extra_volumes: Any = None) -> dict[str, Any]:
    """A ClusterConfiguration; a dict of extraArgs becomes v1beta4's list of {name, value}."""
    if api_version == "v1beta4" and isinstance(extra_args, dict):
        extra_args = [{"name": k, "value": v} for k, v in extra_args.items()]
    api_server: dict[str, Any] = {"extraArgs": extra_args}
    if extra_volumes is not None:
        api_server["extraVolumes"] = extra_volumes
    return {"apiVersion": f"kubeadm.k8s.io/{api_version}", "kind": "ClusterConfiguration", "apiServer": api_server}


KUBEADM_VOLUMES: list[dict[str, Any]] = [
    {"name": "audit", "hostPath": POLICY, "mountPath": POLICY, "readOnly": True, "pathType": "File"},
    {"name": "audit-log", "hostPath": "/var/log/kubernetes/audit", "mountPath": "/var/log/kubernetes/audit"},
]


def test_kubeadm_v1beta3_extra_args_is_a_map_read_by_kubeadm_1_36() -> None:
    cfg = from_cluster_configuration(cluster_configuration("v1beta3", dict(COMPLIANT), KUBEADM_VOLUMES), (1, 36))
    assert {k: v for k, v in cfg.flags.items() if k in COMPLIANT} == COMPLIANT
    assert analyse_flags(cfg, strict_retention=True, version=(1, 36)).violations == []


def test_kubeadm_v1beta3_is_refused_by_kubeadm_1_37() -> None:
    cfg = from_cluster_configuration(cluster_configuration("v1beta3", dict(COMPLIANT), KUBEADM_VOLUMES), (1, 37))
    assert codes(analyse_flags(cfg, strict_retention=True, version=(1, 37)).violations) == ["kubeadm-config-invalid"]


def test_kubeadm_v1beta4_extra_args_is_a_list_of_name_value() -> None:
    args = [{"name": k, "value": v} for k, v in COMPLIANT.items()]
    cfg = from_cluster_configuration(cluster_configuration("v1beta4", args, KUBEADM_VOLUMES))
    assert {k: v for k, v in cfg.flags.items() if k in COMPLIANT} == COMPLIANT
    assert analyse_flags(cfg, strict_retention=True, version=NEWEST).violations == []


@pytest.mark.parametrize(("order", "effective"), [(["30", "7"], "7"), (["7", "30"], "30")])
def test_kubeadm_v1beta4_duplicates_the_last_one_wins_since_1_35(order: list[str], effective: str) -> None:
    # ArgumentsToCommand (1.35+) appends the overrides in the order written; pflag keeps the last
    args = [{"name": "audit-log-maxage", "value": v} for v in order]
    cfg = from_cluster_configuration(cluster_configuration("v1beta4", args))
    assert cfg.flags["audit-log-maxage"] == effective


@pytest.mark.parametrize("order", [["30", "7"], ["7", "30"]])
def test_kubeadm_1_34_duplicates_the_lexicographically_greatest_value_wins(order: list[str]) -> None:
    # ArgumentsToCommand (1.31-1.34) sorts by name, then value (string order): "7" > "30"
    cc = cluster_configuration("v1beta4", [{"name": "audit-log-maxage", "value": v} for v in order])
    cfg = from_cluster_configuration({**cc, "kubernetesVersion": "v1.34.0"})
    assert cfg.flags["audit-log-maxage"] == "7"


def test_kubeadm_duplicate_giving_a_too_low_value_is_a_violation() -> None:
    args = [{"name": k, "value": v} for k, v in COMPLIANT.items()] + [{"name": "audit-log-maxage", "value": "7"}]
    cfg = from_cluster_configuration(cluster_configuration("v1beta4", args, KUBEADM_VOLUMES))
    assert codes(analyse_flags(cfg, strict_retention=False, version=NEWEST).violations) == ["audit-log-maxage-too-low"]


def test_kubeadm_unknown_audit_flag_is_fatal() -> None:
    cfg = from_cluster_configuration(cluster_configuration("v1beta4", {"audit-log-max-age": "30"}))
    assert cfg.unknown == ["unknown flag: --audit-log-max-age"]


def test_kubeadm_extra_args_of_another_shape_is_refused_by_kubeadm() -> None:
    assert from_cluster_configuration(cluster_configuration("v1beta4", "audit-log-path=/x")).refused == [
        "json: cannot unmarshal string into Go struct field APIServer.apiServer.ControlPlaneComponent.extraArgs "
        "of type []v1beta4.Arg"
    ]


def test_kubeadm_extra_arg_names_with_leading_dashes_are_not_usable() -> None:
    cfg = from_cluster_configuration(cluster_configuration("v1beta4", [{"name": "--audit-log-maxage", "value": "30"}]))
    assert cfg.errors


def test_kubeadm_policy_file_not_in_extra_volumes_is_a_violation() -> None:
    cfg = from_cluster_configuration(cluster_configuration("v1beta4", dict(COMPLIANT), KUBEADM_VOLUMES[1:]))
    assert codes(analyse_flags(cfg, strict_retention=True, version=NEWEST).violations) == ["audit-policy-not-mounted"]


def test_kubeadm_log_directory_not_in_extra_volumes_is_a_violation() -> None:
    cfg = from_cluster_configuration(cluster_configuration("v1beta4", dict(COMPLIANT), KUBEADM_VOLUMES[:1]))
    assert codes(analyse_flags(cfg, strict_retention=True, version=NEWEST).violations) == ["audit-log-not-mounted"]


def test_kubeadm_read_only_log_volume_is_refused() -> None:
    volumes = [KUBEADM_VOLUMES[0], {**KUBEADM_VOLUMES[1], "readOnly": True}]
    cfg = from_cluster_configuration(
        cluster_configuration("v1beta4", [{"name": "audit-log-path", "value": LOG}], volumes)
    )
    assert "audit-log-mount-read-only" in codes(analyse_flags(cfg, strict_retention=True, version=NEWEST).violations)


def test_kubeadm_own_pki_mount_is_read_only_so_a_log_there_is_refused() -> None:
    flags = {**COMPLIANT, "audit-log-path": "/etc/kubernetes/pki/audit.log"}
    cfg = from_cluster_configuration(cluster_configuration("v1beta4", flags, KUBEADM_VOLUMES[:1]))
    assert codes(analyse_flags(cfg, strict_retention=True, version=NEWEST).violations) == ["audit-log-mount-read-only"]
