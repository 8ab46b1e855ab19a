"""Benchmark of ``auditwarden check`` (issue 2), reported as ratios measured in one run.

Compares, over the files of the real-world corpus in ``tests/data/corpus/``:

* ``auditwarden check`` (a whole process, as CI runs it);
* a bare Python process that only loads the same YAML files with libyaml (the floor:
  target — auditwarden within 3x of it);
* Checkov 3.3 (from PyPI, installed into its own virtualenv under ``.cache/``) over the
  same files (target — auditwarden at least 20x faster);

plus, in-process, how many times per second a 300-rule policy is loaded, validated and
judged against all category probes.

Each process is run ``--repeat`` times; the median wall time and the peak RSS are
reported.  Usage: ``python bench/check_bench.py [--repeat 5] [--no-checkov] [--write FILE]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "corpus"
CHECKOV_VENV = REPO / ".cache" / "checkov-venv"
CHECKOV_SPEC = "checkov>=3.3,<3.4"

BARE_LOADER = r"""
import sys, pathlib, yaml
for p in sorted(pathlib.Path(sys.argv[1]).rglob('*')):
    if p.suffix in ('.yaml', '.yml', '.json'):
        list(yaml.load_all(p.read_bytes(), Loader=yaml.CSafeLoader))
"""


def run(cmd: list[str], repeat: int) -> tuple[float, float, int]:
    """(median seconds, min seconds, peak RSS KiB) over ``repeat`` runs."""
    times = []
    peak = 0
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        peak = max(peak, usage.ru_maxrss)
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            raise SystemExit(f"{cmd[:3]} exited {code}")
    return statistics.median(times), min(times), peak


def ensure_checkov() -> Path | None:
    exe = CHECKOV_VENV / "bin" / "checkov"
    if exe.exists():
        return exe
    print(f"installing {CHECKOV_SPEC} into {CHECKOV_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
    proc = subprocess.run(
        [str(CHECKOV_VENV / "bin" / "pip"), "install", "--quiet", CHECKOV_SPEC], check=False
    )
    return exe if proc.returncode == 0 and exe.exists() else None


def big_policy(rules: int = 300) -> str:
    lines = ["apiVersion: audit.k8s.io/v1", "kind: Policy", "omitStages: [RequestReceived]", "rules:"]
    for i in range(rules - 1):
        lines += [
            "- level: None",
            f"  users: ['system:serviceaccount:ns{i}:controller-{i}']",
            "  verbs: [get, list, watch]",
            f"  resources: [{{group: 'g{i}.example.com', resources: ['things{i}', 'things{i}/status']}}]",
            f"  namespaces: ['ns{i}']",
        ]
    lines.append("- level: Metadata")
    return "\n".join(lines) + "\n"


def policies_per_second(seconds: float = 3.0) -> tuple[float, int]:
    sys.path.insert(0, str(REPO))
    from webhook.context import build_context
    from webhook.core.coverage import assess
    from webhook.core.policy import load_policy

    ctx = build_context()
    text = big_policy()
    profile = ctx.catalog.profiles["baseline"]
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        assess(load_policy(text), ctx.catalog, profile)
        n += 1
    return n / (time.perf_counter() - start), len(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-checkov", action="store_true")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()

    # An installed package has its bytecode compiled (pip does it); an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every run.
    import compileall

    compileall.compile_dir(str(REPO / "webhook"), quiet=1)
    files = [p for p in CORPUS.rglob("*") if p.suffix in (".yaml", ".yml", ".json")]
    size = sum(p.stat().st_size for p in files)
    aw = [sys.executable, "-m", "webhook", "check", "--format", "json", str(CORPUS)]
    bare = [sys.executable, "-c", BARE_LOADER, str(CORPUS)]
    rows: list[tuple[str, float, float, int]] = []
    for name, cmd in (("bare Python + libyaml load", bare), ("auditwarden check", aw)):
        rows.append((name, *run(cmd, args.repeat)))
    checkov = None if args.no_checkov else ensure_checkov()
    if checkov is not None:
        cmd = [str(checkov), "--quiet", "--compact", "--skip-download", "--framework", "kubernetes", "-d", str(CORPUS)]
        rows.append(("Checkov 3.3 (kubernetes framework)", *run(cmd, max(1, min(args.repeat, 3)))))
    pps, policy_bytes = policies_per_second()

    base = {name: med for name, med, _, _ in rows}
    out = [
        f"Corpus: {len(files)} files, {size / 1024:.0f} KiB; {args.repeat} runs each, median wall time; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.",
        "",
        "| process | median s | min s | peak RSS MiB | auditwarden is |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, med, best, rss in rows:
        ratio = base["auditwarden check"] / med
        note = "—" if name == "auditwarden check" else (
            f"{ratio:.2f}x the time of this" if ratio >= 1 else f"{1 / ratio:.1f}x faster than this"
        )
        out.append(f"| {name} | {med:.3f} | {best:.3f} | {rss / 1024:.0f} | {note} |")
    out += [
        "",
        f"Targets: auditwarden within 3x of the bare loader — measured "
        f"{base['auditwarden check'] / base['bare Python + libyaml load']:.2f}x"
        + (
            f"; at least 20x faster than Checkov — measured "
            f"{base['Checkov 3.3 (kubernetes framework)'] / base['auditwarden check']:.1f}x."
            if checkov is not None
            else "; Checkov not measured in this run."
        ),
        "",
        f"A 300-rule policy ({policy_bytes / 1024:.0f} KiB) loaded, validated and judged against all "
        f"25 probes + 3 advisories: {pps:.0f} policies/s.",
    ]
    text = "\n".join(out)
    print(text)
    if args.write:
        args.write.write_text("# auditwarden check benchmark\n\n" + text + "\n")


if __name__ == "__main__":
    main()
