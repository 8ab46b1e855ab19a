"""Load benchmark of the admission webhook (``auditwarden serve``), as ratios against a no-op.

Starts the real server (gunicorn, TLS, the default worker/thread configuration) on a free
loopback port with ``AUDITWARDEN_BENCH_NOOP=1``, so that ``POST /noop`` — which reads the
body and answers a constant allowance without parsing it — is served by the very same
gunicorn configuration.  Then, for each scenario, it loads ``/noop`` and ``/validate``
with the same AdmissionReview body, one after the other, and compares:

(a) an unrelated ConfigMap (allowed at once, no YAML parsed) — target: p50 latency and
    throughput within 1.3x of the no-op;
(b) a ConfigMap carrying a complete audit policy — target: at least 50% of the no-op's
    throughput and p99 within 3x of the no-op's p99;
(c) a kube-apiserver mirror Pod (kubeadm-style manifest with audit flags) — same targets as (b).

Load generator: ``wrk`` (Debian package ``wrk``; HTTP/1.1 keep-alive, a Lua script sets the
POST body) when installed, else a Python client (threads over keep-alive TLS connections).
Both run a bounded time against 127.0.0.1 only.

Usage::

    python bench/load.py [--duration 10] [--connections 8] [--client wrk|python]
                         [--write FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.reviews import (  # noqa: E402  (the repository root is on the path only now)
    GOOD_POLICY,
    KUBEADM_FLAGS,
    apiserver_pod,
    body,
    configmap,
    review,
)

#: Replaced by a per-request counter in the "every request different" variants (same length).
SEQ = b"__SEQ_____"
ADMIN = {"user": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"], "uid": "0b7c1f3e-bench",
         "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl"}}  # fmt: skip


def unrelated_configmap() -> bytes:
    data = {"settings.json": json.dumps({"theme": "dark", "items_per_page": 25, "features": ["a", "b", "c"]}),
            "log_level": "info", "motd": "Welcome to the shop. " * 20}  # fmt: skip
    obj = configmap(data, name="frontend-settings", namespace="shop", labels={"app": "frontend"}, manager="kubectl")
    return body(review(obj, **ADMIN))


def policy_configmap(unique: bool = False) -> bytes:
    policy = GOOD_POLICY + (f"# revision {SEQ.decode()}\n" if unique else "")
    obj = configmap({"policy.yaml": policy}, labels={"auditwarden.io/kind": "audit-policy"}, manager="kubectl")
    return body(review(obj, **ADMIN))


def mirror_pod(unique: bool = False) -> bytes:
    obj = apiserver_pod(KUBEADM_FLAGS, config_hash=SEQ.decode() if unique else "9f2c4d")
    return body(review(obj, **ADMIN))


SCENARIOS = {
    "a": ("unrelated ConfigMap", unrelated_configmap),
    "b": ("policy ConfigMap", policy_configmap),
    "c": ("kube-apiserver mirror Pod", mirror_pod),
    # The same, but every request carries different content: the verdict memo never hits,
    # every request is parsed and judged in full (informational: the worst case).
    "b*": ("policy ConfigMap, every request different", lambda: policy_configmap(unique=True)),
    "c*": ("kube-apiserver mirror Pod, every request different", lambda: mirror_pod(unique=True)),
}


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, workdir: Path, port: int, workers: int | None, threads: int | None, cpus: str | None) -> None:
        self.workdir = workdir
        self.port = port
        cmd = [sys.executable, "-m", "webhook", "serve", "--bind", f"127.0.0.1:{port}"]
        if cpus is not None:
            cmd = ["taskset", "-c", cpus, *cmd]
        if workers:
            cmd += ["--workers", str(workers)]
        if threads:
            cmd += ["--threads", str(threads)]
        env = {**os.environ, "AUDITWARDEN_BENCH_NOOP": "1", "PYTHONPATH": str(REPO)}
        self.log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.ca = workdir / "certs" / "ca.crt"
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {(self.workdir / 'server.log').read_text()[-2000:]}")
            if self.ca.exists():
                try:
                    ctx = ssl.create_default_context(cafile=str(self.ca))
                    with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/readyz", context=ctx, timeout=2):
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise SystemExit("server did not become ready within 60 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------------------- wrk

WRK_LUA = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local unique = wrk.body:find(SEQ, 1, true) ~= nil
local counter = 0
request = function()
  if not unique then
    return wrk.format()
  end
  counter = counter + 1
  return wrk.format(nil, nil, nil, (wrk.body:gsub(SEQ, string.format("%010d", counter))))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.3f %.3f %.3f\\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def run_wrk(url: str, body: bytes, duration: float, connections: int, workdir: Path, cpus: str | None) -> Result:
    body_file = workdir / "body.json"
    body_file.write_bytes(body)
    script = workdir / "post.lua"
    script.write_text(f'SEQ = "{SEQ.decode()}"\n' + WRK_LUA)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "10s", "-s", str(script), url]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    out = subprocess.run(cmd, env={**os.environ, "BENCH_BODY": str(body_file)}, capture_output=True, text=True,
                         check=True, timeout=duration + 60).stdout  # fmt: skip
    m = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    if not m:
        raise SystemExit(f"cannot parse wrk output:\n{out}")
    requests, errors = int(m.group(1)), int(m.group(2))
    seconds = float(m.group(3))
    return Result(requests / seconds, float(m.group(4)), float(m.group(5)), requests, errors)


# ----------------------------------------------------------------------- Python client


def run_python(url: str, body: bytes, duration: float, connections: int, ca: Path) -> Result:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    ctx = ssl.create_default_context(cafile=str(ca))
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop_at = time.monotonic() + duration
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}

    unique = SEQ in body
    counter = iter(range(10**9))

    def worker(i: int) -> None:
        conn = http.client.HTTPSConnection(parts.hostname or "127.0.0.1", parts.port, context=ctx, timeout=10)
        while time.monotonic() < stop_at:
            payload = body.replace(SEQ, b"%010d" % next(counter)) if unique else body
            t0 = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=payload, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors[i] += 1
            except OSError:
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPSConnection(parts.hostname or "127.0.0.1", parts.port, context=ctx, timeout=10)
                continue
            latencies[i].append(time.perf_counter() - t0)
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    all_lat = sorted(x for lat in latencies for x in lat)
    if not all_lat:
        return Result(0.0, 0.0, 0.0, 0, sum(errors))
    q = statistics.quantiles(all_lat, n=100, method="inclusive")
    return Result(len(all_lat) / elapsed, q[49] * 1000, q[98] * 1000, len(all_lat), sum(errors))


# ------------------------------------------------------------------------------ main


def median(results: list[Result]) -> Result:
    """Per-figure medians over rounds (errors and requests summed)."""
    return Result(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.requests for r in results),
        sum(r.errors for r in results),
    )


def check_answer(base: str, ca: Path, body: bytes, expect_allowed: bool) -> str:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(base + "/validate", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        answer = json.loads(resp.read())["response"]
    if answer["allowed"] is not expect_allowed:
        raise SystemExit(f"unexpected answer for a benchmark body: {answer}")
    return str(answer.get("auditAnnotations", {}).get("verdict"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per measurement")
    ap.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections (default 8)")
    ap.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--workers", type=int, default=None, help="server workers (default: serve's default)")
    ap.add_argument("--threads", type=int, default=None, help="server threads per worker (default: serve's default)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating no-op/validate rounds per scenario (median)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and client to separate CPUs")
    ap.add_argument("--write", type=Path, help="write the results table (Markdown) to this file")
    args = ap.parse_args()

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    server_cpus = client_cpus = None
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not args.no_pin and ncpu >= 2 and shutil.which("taskset"):
        cpus = sorted(os.sched_getaffinity(0))
        half = len(cpus) // 2
        server_cpus = ",".join(map(str, cpus[:half]))
        client_cpus = ",".join(map(str, cpus[half:]))
    args.pinning = (server_cpus, client_cpus)
    workdir = Path(tempfile.mkdtemp(prefix="auditwarden-bench-"))
    port = free_port()
    server = Server(workdir, port, args.workers, args.threads, server_cpus)
    base = f"https://127.0.0.1:{port}"

    def once(path: str, body: bytes, seconds: float) -> Result:
        if client == "wrk":
            return run_wrk(base + path, body, seconds, args.connections, workdir, client_cpus)
        return run_python(base + path, body, seconds, args.connections, server.ca)

    def measure_pair(body: bytes) -> tuple[Result, Result]:
        once("/noop", body, args.warmup)
        once("/validate", body, args.warmup)
        noops, reals = [], []
        for _ in range(args.rounds):
            noops.append(once("/noop", body, args.duration))
            reals.append(once("/validate", body, args.duration))
        return median(noops), median(reals)

    rows = []
    try:
        for key, (label, make) in SCENARIOS.items():
            body = make()
            verdict = check_answer(base, server.ca, body.replace(SEQ, b"0" * len(SEQ)), expect_allowed=True)
            noop, real = measure_pair(body)
            rows.append((key, label, len(body), verdict, noop, real))
            print(f"({key}) {label}: {verdict}; no-op {noop.rps:.0f} req/s p50 {noop.p50_ms:.2f} ms "
                  f"p99 {noop.p99_ms:.2f} ms; validate {real.rps:.0f} req/s p50 {real.p50_ms:.2f} ms "
                  f"p99 {real.p99_ms:.2f} ms", flush=True)  # fmt: skip
    finally:
        server.stop()

    table = render(rows, client, args)
    print()
    print(table)
    if args.write:
        args.write.write_text(table)
        print(f"written to {args.write}")
    failed = [r for r in rows if not verdict_ok(r) and not r[0].endswith("*")]  # "*" rows: information
    shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if failed else 0)


def verdict_ok(row: tuple[str, str, int, str, Result, Result]) -> bool:
    key, _, _, _, noop, real = row
    if real.errors or noop.errors:
        return False
    if key.startswith("a"):
        return real.p50_ms <= 1.3 * noop.p50_ms and real.rps * 1.3 >= noop.rps
    return real.rps >= 0.5 * noop.rps and real.p99_ms <= 3 * noop.p99_ms


def render(rows: list[tuple[str, str, int, str, Result, Result]], client: str, args: argparse.Namespace) -> str:
    cpu = os.cpu_count()
    lines = [
        "| scenario | body | verdict | endpoint | req/s | p50 ms | p99 ms | errors | ratio vs no-op | target | met |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in rows:
        key, label, size, verdict, noop, real = row
        if key.startswith("a"):
            ratio = f"p50 {real.p50_ms / noop.p50_ms:.2f}x, throughput {noop.rps / real.rps:.2f}x lower"
            target = "p50 <= 1.3x, throughput >= 1/1.3"
        else:
            ratio = f"throughput {real.rps / noop.rps:.0%}, p99 {real.p99_ms / noop.p99_ms:.2f}x"
            target = "throughput >= 50%, p99 <= 3x" + (" (information)" if key.endswith("*") else "")
        met = "yes" if verdict_ok(row) else "**no**"
        lines.append(f"| ({key}) {label} | {size} B | — | /noop | {noop.rps:.0f} | {noop.p50_ms:.2f} | "
                     f"{noop.p99_ms:.2f} | {noop.errors} | | | |")  # fmt: skip
        lines.append(f"| | | {verdict} | /validate | {real.rps:.0f} | {real.p50_ms:.2f} | {real.p99_ms:.2f} | "
                     f"{real.errors} | {ratio} | {target} | {met} |")  # fmt: skip
    server_cpus, client_cpus = args.pinning
    placement = (
        f"server pinned to CPU {server_cpus}, client to CPU {client_cpus}"
        if server_cpus
        else f"{cpu} CPUs shared by client and server"
    )
    options = "" if not (args.workers or args.threads) else f" with --workers {args.workers} --threads {args.threads}"
    header = (
        f"Client: {client}, {args.connections} keep-alive connections; {args.rounds} alternating rounds of "
        f"{args.duration:g} s per endpoint after {args.warmup:g} s warm-up, medians shown; server: "
        f"`auditwarden serve` defaults{options} (gunicorn over TLS) on 127.0.0.1; {placement}."
    )
    return header + "\n\n" + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
