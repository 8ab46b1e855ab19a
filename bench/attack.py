"""Hostile clients against the real webhook (``auditwarden serve``), as ratios against no attack.

Two parts, both on loopback only, each bounded in connections and time:

``table``   the issue's table: N idle TCP connections held open (no TLS handshake), then the
            time of ``curl --cacert ca.crt https://127.0.0.1:PORT/healthz`` (new connection).
``attacks`` a legitimate client (AdmissionReviews of an audit-policy ConfigMap, one after
            another, each with kube-apiserver's 5 s budget; one run over a keep-alive
            connection and one with a new TLS connection per request) measured without an
            attack and then through each attack of :mod:`tests.integration.attackers`; p50,
            p99, worst, failures, and the server's peak resident memory (master, workers and
            the analysis fork server) per attack.  Then ``kill -9`` of one of two workers
            under load: requests lost, time until the dead worker is replaced.

Usage::

    python bench/attack.py table   [--workers 1] [--max-time 20] [--args "..."]
    python bench/attack.py attacks [-n 500] [--seconds 10] [--args "..."]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration import attackers as atk  # noqa: E402
from tests.integration.conftest import Server  # noqa: E402
from tests.support.reviews import body, policy_configmap, review  # noqa: E402


def review_body(i: int) -> bytes:
    doc = review(policy_configmap(name="audit-policy"), uid=f"legit-{i}")
    return body(doc)


def allowed(data: bytes) -> bool:
    return bool(json.loads(data)["response"]["allowed"])


def start(args: list[str], workdir: Path) -> Server:
    return Server(workdir, {"mode": "enforce"}, args=args)


def use_server_repo(repo: str | None) -> None:
    """Serve another checkout's code (e.g. the previous stack), run with that checkout's Python."""
    if repo:
        from tests.integration import conftest

        conftest.REPO = Path(repo).resolve()


def curl_time(server: Server, max_time: float) -> str:
    started = time.monotonic()
    proc = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(max_time),
                           "--cacert", server.ca, f"https://127.0.0.1:{server.port}/healthz"],
                          capture_output=True, text=True)  # fmt: skip
    elapsed = time.monotonic() - started
    if proc.returncode != 0 or proc.stdout != "200":
        return f"no answer within {max_time:.0f} s" if elapsed >= max_time - 0.5 else f"failed: {proc.stderr.strip()}"
    return f"{elapsed:.2f} s"


def table(ns: argparse.Namespace) -> None:
    atk.raise_fd_limit()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in ns.workers:
            server = start(["--workers", str(workers), *shlex.split(ns.args)], Path(tmp) / f"w{workers}")
            server.wait_for_workers(workers)
            try:
                for n in ns.n:
                    with atk.IdleConnections("127.0.0.1", server.port, n, ca=server.ca, duration=ns.max_time + 30) as a:
                        a.ready(timeout=15)
                        time.sleep(0.5)
                        rows.append((n, workers, curl_time(server, ns.max_time)))
                    time.sleep(1.0)
            finally:
                server.stop()
    print("| idle TCP connections held open (no TLS handshake) | workers | time for `curl --cacert ca.crt "
          "https://127.0.0.1:PORT/healthz` |")
    print("| ---: | ---: | --- |")
    for n, workers, t in rows:
        print(f"| {n} | {workers} | {t} |")


def measure(server: Server, seconds: float, fresh: bool) -> atk.Latencies:
    client = atk.LegitimateClient("127.0.0.1", server.port, review_body, ca=server.ca, fresh=fresh, check=allowed)
    return client.run_for(seconds)


def attacks(ns: argparse.Namespace) -> None:
    atk.raise_fd_limit(4 * ns.n + 1024)
    n, seconds = ns.n, ns.seconds
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start(shlex.split(ns.args), Path(tmp) / "server")
        pinned = atk.split_cpus(server.proc.pid)
        host, port, ca = "127.0.0.1", server.port, server.ca
        try:
            measure(server, 1.0, fresh=False)  # warm-up
            scenarios: list[tuple[str, Any]] = [
                ("no attack", None),
                (f"{n} idle TCP connections", lambda: atk.IdleConnections(host, port, n, ca=ca, duration=seconds + 60)),
                (f"{n} stalled TLS handshakes", lambda: atk.StalledHandshakes(host, port, n, ca=ca,
                                                                              duration=seconds + 60)),
                (f"{n} slow-header clients (1 B/s)", lambda: atk.SlowHeaders(host, port, n, ca=ca,
                                                                             duration=seconds + 60)),
                (f"{n} slow-body clients (3 MiB at 1 B/s)", lambda: atk.SlowBodies(host, port, n, ca=ca,
                                                                                   duration=seconds + 60)),
                ("flood of new TLS connections (4 threads)", lambda: atk.HandshakeFlood(host, port, ca=ca,
                                                                                        duration=seconds + 60)),
                ("64 keep-alive clients opened in a burst, each sending every 0.5 s", lambda: atk.KeepAliveBurst(
                    host, port, review_body(0), ca=ca, duration=seconds + 60)),
                ("64 keep-alive clients, all 64 at the same instant every 0.5 s", lambda: atk.KeepAliveBurst(
                    host, port, review_body(0), ca=ca, synchronized=True, duration=seconds + 60)),
            ]  # fmt: skip
            for name, make in scenarios:
                attack = make() if make else None
                with atk.PeakMemory(server.proc.pid) as mem:
                    if attack is not None:
                        attack.start()
                        attack.ready(timeout=15)
                        time.sleep(0.5)  # past the ramp: the attack's steady state
                    keep = measure(server, seconds / 2, fresh=False)
                    fresh = measure(server, seconds / 2, fresh=True)
                    if attack is not None:
                        attack.stop()
                rows.append({"name": name, "keep": keep, "fresh": fresh, "peak": mem.peak, "cpu": mem.cpu_share,
                             "reopened": getattr(attack, "reopened", None), "failed": getattr(attack, "failed", None),
                             "handshakes": getattr(attack, "handshakes", None)})  # fmt: skip
                time.sleep(1.0)
        finally:
            server.stop()
    base_keep, base_fresh = rows[0]["keep"], rows[0]["fresh"]
    print(f"Legitimate client: audit-policy ConfigMap AdmissionReviews, {seconds / 2:.0f} s over one keep-alive "
          f"connection then {seconds / 2:.0f} s with a new TLS connection per request; 5 s budget each. "
          f"Server: `auditwarden serve {ns.args}`"
          + (", pinned to one CPU, clients and attackers to the other." if pinned else "."))  # fmt: skip
    print()
    print("| attack | keep-alive: requests | p50 ms | p99 ms | p99 vs no attack | new conn.: requests | p50 ms | "
          "p99 ms | p99 vs no attack | worst ms | failed | server CPU | peak RSS MiB | attackers cut off |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        k, f = r["keep"], r["fresh"]
        worst = max(k.worst, f.worst)
        extra = r["reopened"] if r["reopened"] is not None else (
            f"{r['handshakes']} handshakes" if r["handshakes"] is not None else "")
        print(f"| {r['name']} | {k.count} | {k.p50 * 1e3:.1f} | {k.p99 * 1e3:.1f} | {k.p99 / base_keep.p99:.2f}x "
              f"| {f.count} | {f.p50 * 1e3:.1f} | {f.p99 * 1e3:.1f} | {f.p99 / base_fresh.p99:.2f}x | "
              f"{worst * 1e3:.0f} | {len(k.failures) + len(f.failures)} | {r['cpu']:.0%} | {r['peak'] / 2**20:.0f} | "
              f"{extra} |")
    for r in rows:
        for failure in (r["keep"].failures + r["fresh"].failures)[:3]:
            print(f"- {r['name']}: {failure}")
    if ns.kill:
        kill_worker(ns)


def kill_worker(ns: argparse.Namespace) -> None:
    """``kill -9`` one of two workers while the legitimate client sends; requests lost, time to replace it."""
    with tempfile.TemporaryDirectory() as tmp:
        server = start(["--workers", "2", *shlex.split(ns.args)], Path(tmp) / "server")
        try:
            before = server.wait_for_workers(2)
            atk.split_cpus(server.proc.pid)
            keep = atk.LegitimateClient("127.0.0.1", server.port, review_body, ca=server.ca, check=allowed,
                                        pause=0.005).start(ns.seconds)  # fmt: skip
            fresh = atk.LegitimateClient("127.0.0.1", server.port, review_body, ca=server.ca, fresh=True,
                                         check=allowed, pause=0.005).start(ns.seconds)  # fmt: skip
            time.sleep(ns.seconds / 3)
            victim = before[0]
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            replaced = None
            while time.monotonic() - killed_at < 30:
                now = server.workers()
                if len(now) == 2 and victim not in now:
                    replaced = time.monotonic() - killed_at
                    break
                time.sleep(0.05)
            k, f = keep.join(), fresh.join()
        finally:
            server.stop()
    print()
    print(f"kill -9 of one of two workers after {ns.seconds / 3:.0f} s of a {ns.seconds:.0f} s run: "
          f"replaced after {replaced if replaced is None else f'{replaced:.2f} s'}; keep-alive client "
          f"{k.count} requests, {len(k.failures)} lost, p99 {k.p99 * 1e3:.1f} ms; new-connection client "
          f"{f.count} requests, {len(f.failures)} lost, p99 {f.p99 * 1e3:.1f} ms")  # fmt: skip
    for failure in (k.failures + f.failures)[:5]:
        print(f"- {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("table")
    t.add_argument("--workers", type=int, nargs="+", default=[1])
    t.add_argument("-n", type=int, nargs="+", default=[4, 8, 16, 200])
    t.add_argument("--max-time", type=float, default=20.0)
    t.add_argument("--args", default="", help="extra `auditwarden serve` arguments")
    a = sub.add_parser("attacks")
    a.add_argument("-n", type=int, default=500)
    a.add_argument("--seconds", type=float, default=10.0, help="legitimate client time per attack")
    a.add_argument("--args", default="")
    a.add_argument("--no-kill", dest="kill", action="store_false")
    for p in (t, a):
        p.add_argument("--server-repo", help="serve this checkout's code instead (run with its .venv's python)")
    ns = parser.parse_args()
    use_server_repo(ns.server_repo)
    table(ns) if ns.what == "table" else attacks(ns)


if __name__ == "__main__":
    main()
