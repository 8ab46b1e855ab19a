"""Shell-wrapped kube-apiserver commands are read as a POSIX shell reads them, without running one.

Every case of issue 11's "Why" §2: the real apiserver starts with auditing on, so auditwarden
must find the same flags (and no violation) in each.
"""

from __future__ import annotations

from typing import Any

import pytest

from webhook.core.apiserver import analyse_flags, from_pod
from webhook.core.shellcmd import script_argv
from webhook.core.versions import NEWEST

FLAGS = ("--audit-policy-file=/etc/kubernetes/audit-policy.yaml --audit-log-path=/var/log/kubernetes/audit/audit.log "
         "--audit-log-maxage=30 --audit-log-maxbackup=10 --audit-log-maxsize=100")  # fmt: skip
WANT = FLAGS.split()


def pod(command: list[str], args: list[str] | None = None, env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    mounts = [{"name": "policy", "mountPath": "/etc/kubernetes/audit-policy.yaml", "readOnly": True},
              {"name": "log", "mountPath": "/var/log/kubernetes/audit/"}]  # fmt: skip
    volumes = [{"name": "policy", "hostPath": {"path": "/etc/kubernetes/audit-policy.yaml"}},
               {"name": "log", "hostPath": {"path": "/var/log/kubernetes/audit/"}}]  # fmt: skip
    container = {"name": "kube-apiserver", "command": command, "args": args or [], "env": env or [],
                 "volumeMounts": mounts}  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
            "spec": {"containers": [container], "volumes": volumes}}  # fmt: skip


def violations(p: dict[str, Any]) -> list[str]:
    cfg = from_pod(p)
    assert cfg is not None
    return [f.code for f in analyse_flags(cfg, strict_retention=True, version=NEWEST).violations]


def test_backslash_newline_continuations_join_the_command() -> None:
    script = "exec kube-apiserver \\\n  " + " \\\n  ".join(WANT) + "\n"
    assert script_argv(script, {}, []).argv == WANT
    assert violations(pod(["/bin/sh", "-c", script])) == []


def test_variables_come_from_the_container_env() -> None:
    script = FLAGS.replace("/var/log/kubernetes/audit/audit.log", "$LOG").replace("=30", "=${AGE}")
    env = [{"name": "LOG", "value": "/var/log/kubernetes/audit/audit.log"}, {"name": "AGE", "value": "30"}]
    assert script_argv("kube-apiserver " + script, {"LOG": "/var/log/kubernetes/audit/audit.log", "AGE": "30"},
                       []).argv == WANT  # fmt: skip
    assert violations(pod(["sh", "-c", "exec kube-apiserver " + script], env=env)) == []


def test_a_semicolon_without_a_space_ends_the_command() -> None:
    assert script_argv(f"kube-apiserver {FLAGS}; echo done", {}, []).argv == WANT
    assert script_argv(f"kube-apiserver {FLAGS};echo done", {}, []).argv == WANT


@pytest.mark.parametrize("redirection", ["2>&1", ">>/var/log/apiserver.log", "> /dev/null 2>&1", "</dev/null"])
def test_redirections_are_not_arguments(redirection: str) -> None:
    assert script_argv(f"exec kube-apiserver {FLAGS} {redirection}", {}, []).argv == WANT


def test_exec_with_quoted_dollar_at_takes_the_flags_from_args() -> None:
    # sh -c SCRIPT $0 $1 ...: the first word after the script is $0, as in every shell.
    p = pod(["/bin/sh", "-c", 'exec kube-apiserver "$@"', "kube-apiserver"], args=WANT)
    assert violations(p) == []
    assert script_argv('exec /usr/local/bin/kube-apiserver "$@" 2>&1', {}, ["sh", *WANT]).argv == WANT


def test_and_or_lists_and_a_preceding_command_are_understood() -> None:
    assert script_argv(f"mkdir -p /var/log && kube-apiserver {FLAGS} || exit 1", {}, []).argv == WANT


@pytest.mark.parametrize(
    ("script", "part"),
    [("kube-apiserver --audit-log-path=$(cat /etc/path)", "command substitution"),
     ("kube-apiserver --audit-log-path=$UNSET", "not set in the container's env"),
     ("kube-apiserver --audit-log-maxage=$((10*3))", "arithmetic"),
     ("for i in 1; do kube-apiserver --audit-log-path=/x; done", "loop"),
     ("kube-apiserver --audit-log-path=${P#x}", "operator")],
)  # fmt: skip
def test_what_cannot_be_known_statically_is_named_never_guessed(script: str, part: str) -> None:
    found = script_argv(script, {}, [])
    assert found.argv is not None
    assert any(part in u for u in found.unresolved), found.unresolved


def test_a_value_from_variable_is_unknown_and_reported_as_a_warning() -> None:
    p = pod(["sh", "-c", f"exec kube-apiserver {FLAGS} --audit-log-format=$FMT"],
            env=[{"name": "FMT", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}])  # fmt: skip
    cfg = from_pod(p)
    assert cfg is not None
    assert any("valueFrom" in n for n in cfg.notes)


@pytest.mark.parametrize("script", ["kube-apiserver 'unterminated", "((", "$(", "kube-apiserver ${", "\\"])
def test_broken_scripts_never_crash(script: str) -> None:
    script_argv(script, {}, [])


def warnings_and_violations(p: dict[str, Any]) -> tuple[list[str], list[str]]:
    cfg = from_pod(p)
    assert cfg is not None
    result = analyse_flags(cfg, strict_retention=True, version=NEWEST)
    return [f.message for f in result.warnings], [f.message for f in result.violations]


def test_a_flag_set_by_command_substitution_is_warned_about_not_refused_nor_guessed() -> None:
    script = f"exec kube-apiserver {FLAGS.replace('--audit-log-maxage=30', '--audit-log-maxage=$(cat /etc/age)')}"
    warnings, violations = warnings_and_violations(pod(["sh", "-c", script]))
    assert violations == []
    assert any("$(cat /etc/age)" in w for w in warnings)
    assert any("not determinable statically" in w and "--audit-log-maxage" in w for w in warnings)


def test_other_flags_are_still_judged_beside_an_undetermined_one() -> None:
    script = f"exec kube-apiserver {FLAGS.replace('=30', '=$(cat /etc/age)').replace('maxsize=100', 'maxsize=5')}"
    _, violations = warnings_and_violations(pod(["sh", "-c", script]))
    assert any("--audit-log-maxsize" in v for v in violations)


def test_words_that_may_hold_any_flag_make_every_flag_finding_a_warning() -> None:
    warnings, violations = warnings_and_violations(pod(["sh", "-c", "exec kube-apiserver $(cat /etc/flags)"]))
    assert violations == []
    assert any("--audit-policy-file" in w for w in warnings)
