"""kube-bench and auditwarden side by side on the same running kube-apiserver (issue 5 §4).

For each command line below, the real kube-apiserver (the session cluster's binary, on the
session's etcd, its own port) is started with the flags under test written verbatim, and

* **kube-bench v0.15.6** runs its CIS checks 1.2.16–1.2.19 and 3.2.1 (benchmark ``cis-1.12``,
  the newest its version mapping knows, used for 1.32–1.34) against that process — it reads
  the command line with ``ps -ef | grep <binary>``;
* **auditwarden check** judges a static Pod manifest whose container command is that same argv
  (the test directory is a hostPath mount, and the policy file's content is supplied with
  ``--policy-file-map`` when the file exists);
* the **apiserver itself** shows what it does with the flags: whether it starts, the value it
  parsed for each flag (``FLAG:`` lines at ``--v=1``), and whether an audited request lands in
  the audit log file (or on stdout).

When the apiserver refuses to start, kube-bench judges a stand-in process carrying the very same
command line (``ps`` output is all it reads).  The table goes to docs/kube-bench-comparison.md;
the tests assert that wherever auditwarden gives a verdict it matches what the apiserver did —
in particular wherever the two tools disagree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.apiserver_instance import PROCESS_NAME, ExtraApiserver, Run
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import require_tools
from tests.support.tools import REPO, tools_dir

BENCHMARK = "cis-1.12"
CHECKS = ("1.2.16", "1.2.17", "1.2.18", "1.2.19", "3.2.1")
RETENTION = {
    "1.2.17": ("audit-log-maxage", 30),
    "1.2.18": ("audit-log-maxbackup", 10),
    "1.2.19": ("audit-log-maxsize", 100),
}
TABLE = REPO / "docs" / "kube-bench-comparison.md"
ABSENT_POLICY = "/etc/auditwarden-e2e/absent/audit-policy.yaml"  # no such file, and not mounted

GOOD_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
"""
# audit.k8s.io/v1beta1 was removed in 1.24: kube-apiserver refuses to load it
BAD_POLICY = """\
apiVersion: audit.k8s.io/v1beta1
kind: Policy
rules:
  - level: Metadata
"""

ON = "--audit-policy-file={policy} --audit-log-path={log}"
RET_OK = "--audit-log-maxage=30 --audit-log-maxbackup=10 --audit-log-maxsize=100"


@dataclass(frozen=True)
class FlagSet:
    id: str
    title: str
    argv: str  # the audit flags, split on spaces (no value here contains one)

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(self.argv.split())


# fmt: off
FLAG_SETS = (
    FlagSet("compliant", "`--flag=value`, compliant values", f"{ON} {RET_OK}"),
    FlagSet("space-syntax", "space syntax `--flag value`",
            "--audit-policy-file {policy} --audit-log-path {log} "
            "--audit-log-maxage 30 --audit-log-maxbackup 10 --audit-log-maxsize 100"),
    FlagSet("repeated-last-ok", "repeated flags, the last one compliant",
            f"{ON} --audit-log-maxage=7 --audit-log-maxage=30 --audit-log-maxbackup=2 --audit-log-maxbackup=10 "
            "--audit-log-maxsize=10 --audit-log-maxsize=100"),
    FlagSet("repeated-last-low", "repeated flags, the last one too low",
            f"{ON} --audit-log-maxage=30 --audit-log-maxage=7 --audit-log-maxbackup=10 --audit-log-maxbackup=2 "
            "--audit-log-maxsize=100 --audit-log-maxsize=10"),
    FlagSet("octal", "leading zero (`030` is octal to pflag)",
            f"{ON} --audit-log-maxage=030 --audit-log-maxbackup=010 --audit-log-maxsize=0100"),
    FlagSet("underscores", "underscores (`--audit_log_maxage=30`)",
            "--audit_policy_file={policy} --audit_log_path={log} "
            "--audit_log_maxage=30 --audit_log_maxbackup=10 --audit_log_maxsize=100"),
    FlagSet("stdout", "stdout backend `--audit-log-path=-`",
            f"--audit-policy-file={{policy}} --audit-log-path=- {RET_OK}"),
    FlagSet("missing-policy", "policy file that does not exist (not mounted)",
            f"--audit-policy-file={ABSENT_POLICY} --audit-log-path={{log}} {RET_OK}"),
    FlagSet("invalid-policy", "policy file kube-apiserver cannot load (`audit.k8s.io/v1beta1`)",
            f"--audit-policy-file={{bad_policy}} --audit-log-path={{log}} {RET_OK}"),
    FlagSet("off", "no audit flags at all", ""),
)
# fmt: on


@dataclass
class Row:
    flag_set: FlagSet
    case_dir: Path
    flags: list[str]
    run: Run
    kube_bench: dict[str, str]
    kube_bench_on_stand_in: bool
    auditwarden: dict[str, str]
    auditwarden_predicts_start: bool
    auditwarden_findings: list[str]
    file_events: int = 0
    stdout_events: int = 0
    actual: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------- kube-bench


def kube_bench_config(dest: Path) -> Path:
    """A cfg dir: kube-bench's own config.yaml + the benchmark, looking only for our process.

    The master/controlplane targets list every control-plane component, and a missing
    mandatory one (scheduler, controller-manager) aborts the run; here only the apiserver
    runs, under the name :data:`PROCESS_NAME`.
    """
    candidates = [tools_dir() / "kube-bench" / "cfg"]
    exe = require_tools("kube-bench")["kube-bench"]
    candidates.append(exe.resolve().parent / "cfg")
    src = next((c for c in candidates if (c / "config.yaml").is_file() and (c / BENCHMARK).is_dir()), None)
    if src is None:
        pytest.fail(f"kube-bench cfg/ with {BENCHMARK} not found in {candidates}; run tests/e2e/build.sh kube-bench")
    cfg = yaml.safe_load((src / "config.yaml").read_text())
    for target in ("master", "controlplane"):
        cfg[target]["components"] = ["apiserver"]
        cfg[target]["apiserver"]["bins"] = [PROCESS_NAME]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg))
    bench = dest / BENCHMARK
    if not bench.exists():
        bench.mkdir()
        for f in (src / BENCHMARK).iterdir():
            (bench / f.name).write_bytes(f.read_bytes())
    return dest


def run_kube_bench(cfg_dir: Path, save_to: Path) -> dict[str, str]:
    exe = require_tools("kube-bench")["kube-bench"]
    cmd = [
        str(exe),
        "run",
        "--targets",
        "master,controlplane",
        "--benchmark",
        BENCHMARK,
        "--config-dir",
        str(cfg_dir),
        "--config",
        str(cfg_dir / "config.yaml"),
        "--check",
        ",".join(CHECKS),
        "--json",
        "-v",
        "3",
    ]
    # kube-bench reads `ps -ef` output, which procps cuts at $COLUMNS; something in the pytest
    # process sets COLUMNS=80 in the C environment (not in os.environ), so pass os.environ itself.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    save_to.with_suffix(".json").write_text(out.stdout)
    save_to.with_suffix(".log").write_text(out.stderr)
    assert out.returncode == 0, f"kube-bench failed ({out.returncode}): {out.stderr[-2000:]}"
    found: dict[str, str] = {}
    for control in json.loads(out.stdout)["Controls"]:
        for group in control["tests"]:
            for result in group["results"]:
                found[result["test_number"]] = result["status"]
    assert set(CHECKS) <= set(found), f"kube-bench did not report every check: {found}"
    return {c: found[c] for c in CHECKS}


# ------------------------------------------------------------------------- auditwarden


def static_pod(argv: list[str], mount_dir: Path) -> dict[str, Any]:
    """kube-apiserver as a static Pod running exactly ``argv``; ``mount_dir`` is a hostPath mount."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-apiserver", "namespace": "kube-system", "labels": {"component": "kube-apiserver"}},
        "spec": {
            "containers": [
                {
                    "name": "kube-apiserver",
                    "image": "registry.k8s.io/kube-apiserver:v1.37.2",
                    "command": ["kube-apiserver", *argv[1:]],
                    "volumeMounts": [{"name": "case", "mountPath": str(mount_dir)}],
                }
            ],
            "volumes": [{"name": "case", "hostPath": {"path": str(mount_dir), "type": "Directory"}}],
        },
    }


def auditwarden_check(manifest: Path, policy_files: list[Path]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "webhook", "check", "--format", "json", "--kubernetes-version", "1.37"]
    for p in policy_files:
        cmd += ["--policy-file-map", f"{p}={p}"]
    out = subprocess.run([*cmd, str(manifest)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode in (0, 1), f"auditwarden check failed ({out.returncode}): {out.stderr}"
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def auditwarden_verdicts(report: dict[str, Any]) -> tuple[dict[str, str], bool, list[str]]:
    """Per CIS check: PASS | FAIL | WARN | n/a; whether kube-apiserver would start; the finding codes."""
    results = report["results"]
    pod = next(r for r in results if r["kind"] == "apiserver-pod")
    policies = [r for r in results if r["kind"] == "audit-policy"]
    violations = {v["code"]: v["message"] for r in results for v in r["violations"]}
    warnings = {w["code"]: w["message"] for r in results for w in r["warnings"]}
    codes = sorted(violations) + sorted(f"{c} (warning)" for c in warnings)
    no_start = any("refuse to start" in m or "will not start" in m for m in violations.values()) or any(
        not p["valid"] for p in policies
    )
    out: dict[str, str] = {}
    file_log = "log file" in pod["summary"] and "audit-log-stdout" not in warnings
    if violations.keys() & {"audit-backend-missing", "audit-log-not-mounted", "audit-log-mount-read-only"}:
        out["1.2.16"] = "FAIL"
    elif "audit-log-stdout" in warnings:
        out["1.2.16"] = "WARN"
    else:
        out["1.2.16"] = "PASS"

    def failed(flag: str) -> bool:  # too low, unset in a strict profile, or an invalid value
        too_low_or_unset = {f"{flag}-too-low", f"{flag}-unset"} & violations.keys()
        return bool(too_low_or_unset) or any(f'"--{flag}"' in m for m in violations.values())

    for check, (flag, _) in RETENTION.items():
        if not file_log:
            out[check] = "n/a"
        elif failed(flag):
            out[check] = "FAIL"
        elif f"{flag}-unset" in warnings:
            out[check] = "WARN"
        else:
            out[check] = "PASS"
    policy_bad = violations.keys() & {"audit-policy-file-missing", "audit-policy-not-mounted"}
    out["3.2.1"] = "FAIL" if policy_bad or any(not p["valid"] for p in policies) else "PASS"
    return out, not no_start, codes


# ------------------------------------------------------------------------- what the apiserver did


def count_events(text: str) -> int:
    n = 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"kind":"Event"' in line:
            n += 1
    return n


def actual_verdicts(row: Row) -> dict[str, str]:
    """The apiserver's behaviour expressed per CIS check (what the check is there to ensure)."""
    if not row.run.started:
        return dict.fromkeys(CHECKS, "did not start")
    out = {"1.2.16": "PASS" if row.file_events else ("stdout only" if row.stdout_events else "FAIL")}
    for check, (flag, minimum) in RETENTION.items():
        if not row.file_events:
            out[check] = "n/a"
            continue
        value = int(row.run.flags[flag])
        out[check] = f"{'PASS' if value >= minimum else 'FAIL'} ({value})"
    audited = row.file_events or row.stdout_events
    out["3.2.1"] = "PASS" if audited and row.run.flags.get("audit-policy-file") else "FAIL"
    return out


def agrees(auditwarden: str, actual: str) -> bool:
    """Is auditwarden's verdict for one check what the running apiserver shows?"""
    if actual == "did not start":
        return True  # judged by the start prediction instead
    if auditwarden == "n/a":
        return actual == "n/a"
    if auditwarden == "WARN":  # stdout backend, or an unset retention flag (an effective default applies)
        return actual in ("stdout only", "n/a") or actual.startswith("PASS")
    return actual.split(" ")[0] == auditwarden


def tools_disagree(check: str, kube_bench: str, auditwarden: str) -> bool:
    """One says PASS where the other says FAIL (kube-bench reports a failed *Manual* check as WARN)."""
    kb = "FAIL" if kube_bench == "WARN" and check == "3.2.1" else kube_bench
    aw = "PASS" if auditwarden == "WARN" else auditwarden
    return {kb, aw} == {"PASS", "FAIL"}


def kube_bench_agrees(kube_bench: str, actual: str) -> bool:
    if actual == "did not start":
        return False
    return actual.split(" ")[0] == kube_bench or (actual in ("n/a", "stdout only") and kube_bench == "PASS")


# ------------------------------------------------------------------------- the comparison


def run_flag_set(fs: FlagSet, extra: ExtraApiserver, cfg_dir: Path, root: Path) -> Row:
    assert not Path(ABSENT_POLICY).exists(), f"{ABSENT_POLICY} must not exist on this machine"
    case = root / fs.id
    (case / "audit").mkdir(parents=True)
    policy, bad_policy, log = case / "audit-policy.yaml", case / "bad-audit-policy.yaml", case / "audit" / "audit.log"
    policy.write_text(GOOD_POLICY)
    bad_policy.write_text(BAD_POLICY)
    flags = [f.format(policy=policy, bad_policy=bad_policy, log=log) for f in fs.flags]
    run = extra.start(flags)
    stand_in = False
    try:
        if run.started:
            kb = run_kube_bench(cfg_dir, case / "kube-bench")
            # one audited request, then look where its events went
            status, _ = extra.request("/api/v1/namespaces/default")
            assert status == 200
            deadline = time.monotonic() + 5
            file_events = stdout_events = 0
            while time.monotonic() < deadline:
                file_events = count_events(log.read_text(errors="replace")) if log.exists() else 0
                stdout_events = count_events(run.log)
                if file_events or stdout_events:
                    break
                time.sleep(0.2)
        else:
            extra.start_stand_in(flags)
            stand_in = True
            kb = run_kube_bench(cfg_dir, case / "kube-bench")
            file_events = stdout_events = 0
    finally:
        extra.stop()
    manifest = case / "kube-apiserver.yaml"
    manifest.write_text(yaml.safe_dump(static_pod(run.argv, case)))
    aw, starts, codes = auditwarden_verdicts(auditwarden_check(manifest, [policy, bad_policy]))
    row = Row(fs, case, flags, run, kb, stand_in, aw, starts, codes, file_events, stdout_events)
    row.actual = actual_verdicts(row)
    return row


def render_table(rows: list[Row]) -> str:
    lines = [
        "# kube-bench and auditwarden on the same kube-apiserver",
        "",
        "Written by `tests/e2e/test_kube_bench.py` (do not edit by hand). Each row is one command line given",
        "to a real kube-apiserver v1.37.2 (built from k8s.io/kubernetes, on a real etcd). Each cell reads",
        "**kube-bench / auditwarden / apiserver**: kube-bench v0.15.6 (benchmark `cis-1.12`) inspecting the",
        "running process with `ps`; `auditwarden check` on a static Pod manifest whose command is that argv;",
        "and what the apiserver did — the value it parsed (its `FLAG:` log lines) and whether an audited",
        "request reached the audit log file. `n/a`: no audit log file, retention does not apply.",
        "`did not start`: kube-apiserver exited at start-up (kube-bench then saw a stand-in process with the",
        "same command line); auditwarden's start prediction is in the last column.",
        "",
        "| command line | 1.2.16 log path | 1.2.17 maxage ≥ 30 | 1.2.18 maxbackup ≥ 10 | 1.2.19 maxsize ≥ 100 "
        "| 3.2.1 policy | apiserver started (auditwarden predicted) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        cells = []
        for c in CHECKS:
            kb, aw, act = r.kube_bench[c], r.auditwarden[c], r.actual[c]
            mark = " ⚠" if tools_disagree(c, kb, aw) else ""
            cells.append(f"{kb} / {aw} / {act}{mark}")
        started = "yes" if r.run.started else f"no (exit {r.run.exit_code})"
        predicted = "yes" if r.auditwarden_predicts_start else "no"
        lines.append(f"| {r.flag_set.title} | {' | '.join(cells)} | {started} ({predicted}) |")
    lines += [
        "",
        "⚠ marks a cell where one tool says PASS and the other FAIL. kube-bench reports a failed *Manual*",
        "check (3.2.1) as WARN; auditwarden's WARN is a pass with a warning (stdout backend).",
        "",
        "Command lines (the audit flags; the cluster's other flags come first; `$DIR` is the case's directory,",
        "mounted as a hostPath in the manifest auditwarden checks):",
        "",
    ]
    for r in rows:
        shown = " ".join(f.replace(str(r.case_dir), "$DIR") for f in r.flags) or "(none)"
        lines.append(f"- {r.flag_set.title}: `{shown}`")
    lines += ["", "auditwarden findings per row:", ""]
    for r in rows:
        lines.append(f"- {r.flag_set.title}: {', '.join(r.auditwarden_findings) or 'none'}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def rows(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Row]]:
    require_tools("kube-bench")
    root = tmp_path_factory.mktemp("kube-bench")
    cfg_dir = kube_bench_config(root / "cfg")
    extra = ExtraApiserver(cluster, root / "apiserver")
    try:
        yield [run_flag_set(fs, extra, cfg_dir, root / "cases") for fs in FLAG_SETS]
    finally:
        extra.stop()


def test_comparison_table_is_written(rows: list[Row]) -> None:
    text = render_table(rows)
    TABLE.write_text(text)
    print("\n" + text)
    assert len(rows) == len(FLAG_SETS)
    assert all(set(r.kube_bench) == set(CHECKS) == set(r.auditwarden) for r in rows)


@pytest.mark.parametrize("fs", FLAG_SETS, ids=[f.id for f in FLAG_SETS])
def test_auditwarden_predicts_whether_the_apiserver_starts(rows: list[Row], fs: FlagSet) -> None:
    row = next(r for r in rows if r.flag_set is fs)
    assert row.auditwarden_predicts_start == row.run.started, (
        f"{fs.id}: auditwarden predicted start={row.auditwarden_predicts_start}, apiserver started={row.run.started} "
        f"(exit {row.run.exit_code}); findings {row.auditwarden_findings}\n{row.run.log[-1500:]}"
    )


@pytest.mark.parametrize("fs", FLAG_SETS, ids=[f.id for f in FLAG_SETS])
def test_auditwarden_matches_what_the_apiserver_does(rows: list[Row], fs: FlagSet) -> None:
    row = next(r for r in rows if r.flag_set is fs)
    wrong = {c: (row.auditwarden[c], row.actual[c]) for c in CHECKS if not agrees(row.auditwarden[c], row.actual[c])}
    assert not wrong, f"{fs.id}: auditwarden vs apiserver {wrong}; findings {row.auditwarden_findings}"


def test_kube_bench_sees_the_running_apiserver(rows: list[Row]) -> None:
    """Sanity: with the plain `--flag=value` spelling kube-bench passes every check (it read the argv)."""
    row = next(r for r in rows if r.flag_set.id == "compliant")
    assert row.run.started and not row.kube_bench_on_stand_in
    assert row.kube_bench == dict.fromkeys(CHECKS, "PASS") | {"3.2.1": row.kube_bench["3.2.1"]}
    assert row.kube_bench["3.2.1"] in ("PASS", "WARN"), row.kube_bench  # 3.2.1 is a "Manual" check


def test_where_the_tools_disagree_auditwarden_is_right(rows: list[Row]) -> None:
    differing = []
    for r in rows:
        for c in CHECKS:
            kb, aw, act = r.kube_bench[c], r.auditwarden[c], r.actual[c]
            if not tools_disagree(c, kb, aw):
                continue
            differing.append((r.flag_set.id, c, kb, aw, act))
            if act == "did not start":
                assert aw == "FAIL" and not r.auditwarden_predicts_start, (r.flag_set.id, c, kb, aw, act)
            else:
                assert agrees(aw, act), (r.flag_set.id, c, kb, aw, act)
                assert not kube_bench_agrees(kb, act), (r.flag_set.id, c, kb, aw, act)
    # the comparison is not vacuous: these spellings and files split the tools
    ids = {d[0] for d in differing}
    expected = {
        "space-syntax",
        "repeated-last-ok",
        "repeated-last-low",
        "octal",
        "underscores",
        "missing-policy",
        "invalid-policy",
    }
    assert expected <= ids, differing


def test_refused_configurations_pass_kube_bench_but_not_auditwarden(rows: list[Row]) -> None:
    """A policy that cannot be loaded passes CIS 3.2.1 (the flag is set) yet the apiserver does not start."""
    for fid in ("missing-policy", "invalid-policy"):
        row = next(r for r in rows if r.flag_set.id == fid)
        assert not row.run.started and row.kube_bench_on_stand_in
        assert row.kube_bench["3.2.1"] == "PASS"
        assert row.auditwarden["3.2.1"] == "FAIL"
