"""No client may starve the webhook: a legitimate client keeps sending AdmissionReviews through every attack.

Real ``auditwarden serve`` (gunicorn, the WebhookWorker, TLS), loopback only.  Attackers come
from 127.0.0.2 (another peer, as a hostile pod is) and run in child processes of their own;
each attack is bounded in connections and time (a few seconds).  The legitimate client is
kube-apiserver's side: one AdmissionReview after another with a 5 s budget each, half of
the time on a keep-alive connection and half with a new TLS connection per request.

Targets (issue 9), in every attempt: zero legitimate failures or timeouts, p99 never over 1 s,
the server's resident memory (master, workers, fork server) below the chart's 384 MiB limit.
And, as ratios against the same client with no attack measured just before in the same attempt:
the p99 (and the median) within twice the unloaded figure, plus :data:`RESOLUTION`.  An attempt
that misses the ratios is repeated, up to :data:`ATTEMPTS` (see :func:`through`).  The longer
runs with N = 500 behind bench/README.md's table are ``python bench/attack.py attacks``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import attackers as atk
from tests.integration.conftest import Server, read_reply
from tests.support.reviews import body, policy_configmap, review

N = 500  # connections per slow-client attack
SECONDS = 2.0  # legitimate traffic measured per attack (half keep-alive, half new connections)
#: Added to twice the unloaded figure: a p99 of a few milliseconds moves by about that much
#: from the scheduler alone (the clients and the attackers share the second CPU).
RESOLUTION = 0.005
ATTEMPTS = 3
MEMORY_LIMIT = 384 * 2**20  # the chart's default limit for the pod
#: The attack runs take seconds each: they run in the full suite (CI), not in the fast loop
#: (``-m 'not e2e'``), which keeps the deadline and cap tests below.
SLOW = pytest.mark.e2e


def review_body(i: int) -> bytes:
    return body(review(policy_configmap(name="audit-policy"), uid=f"legit-{i}"))


def allowed(data: bytes) -> bool:
    return bool(json.loads(data)["response"]["allowed"])


def legit(server: Server, seconds: float) -> tuple[atk.Latencies, atk.Latencies]:
    keep = atk.LegitimateClient("127.0.0.1", server.port, review_body, ca=server.ca, check=allowed)
    fresh = atk.LegitimateClient("127.0.0.1", server.port, review_body, ca=server.ca, check=allowed, fresh=True)
    return keep.run_for(seconds / 2), fresh.run_for(seconds / 2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The attacked server, on a CPU of its own (the clients and attackers on the other, as in a cluster)."""
    atk.raise_fd_limit(4 * N + 1024)
    cpus = os.sched_getaffinity(0)
    s = Server(tmp_path_factory.mktemp("attacked"), {"mode": "enforce"})
    try:
        atk.split_cpus(s.proc.pid)
        yield s
    finally:
        s.stop()
        os.sched_setaffinity(0, cpus)


def through(server: Server, make_attack: Callable[[], Any]) -> None:
    """Run the legitimate client with no attack and then while an attack is in place; check the targets.

    Zero failures, p99 under 1 s and memory under the limit must hold in every attempt.  The p99
    and median ratios (the 2x targets) are judged against the unloaded figures measured just before,
    in the same attempt, and an attempt whose ratios miss is run again, up to :data:`ATTEMPTS`
    times: a short run's p99 is nearly its slowest request, which a single scheduling hiccup of
    the shared machine sets.  A server that is starved misses in every attempt.
    """
    missed: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        base_keep, base_fresh = legit(server, SECONDS)
        attack = make_attack()
        with atk.PeakMemory(server.proc.pid) as memory, attack:
            assert attack.ready(timeout=30), f"the attack never got in place: {vars(attack)}"
            time.sleep(0.5)  # past the ramp (the last connections' set-up): the attack's steady state
            keep, fresh = legit(server, SECONDS)
            assert attack.in_place() or getattr(attack, "reopened", 0) > 0  # still attacking at the end
        print(f"\n{attack.name} (attempt {attempt}): keep-alive p50/p99 {keep.p50 * 1e3:.1f}/{keep.p99 * 1e3:.1f} ms "
              f"(unloaded {base_keep.p50 * 1e3:.1f}/{base_keep.p99 * 1e3:.1f}), new-connection p50/p99 "
              f"{fresh.p50 * 1e3:.1f}/{fresh.p99 * 1e3:.1f} ms (unloaded {base_fresh.p50 * 1e3:.1f}/"
              f"{base_fresh.p99 * 1e3:.1f}), {keep.count + fresh.count} requests, "
              f"peak RSS {memory.peak / 2**20:.0f} MiB")  # fmt: skip
        for run in (base_keep, base_fresh, keep, fresh):
            assert not run.failures, run.failures[:5]
        assert keep.count >= 10 and fresh.count >= 5, (keep.count, fresh.count)
        assert keep.p99 < 1.0 and fresh.p99 < 1.0, (keep.p99, fresh.p99)
        assert memory.peak < MEMORY_LIMIT, memory.peak
        over = [
            f"{label} {stat} {seen * 1e3:.1f} ms > 2 x {base * 1e3:.1f} ms"
            for label, run, unloaded in (("keep-alive", keep, base_keep), ("new-connection", fresh, base_fresh))
            for stat, seen, base in (("p50", run.p50, unloaded.p50), ("p99", run.p99, unloaded.p99))
            if seen > 2 * base + RESOLUTION
        ]  # fmt: skip
        if not over:
            return
        missed.append(f"attempt {attempt}: " + "; ".join(over))
    pytest.fail("the legitimate client's latency stayed over twice its unloaded figure:\n" + "\n".join(missed))


@SLOW
def test_idle_tcp_connections_do_not_starve_the_webhook(server: Server) -> None:
    through(server, lambda: atk.IdleConnections("127.0.0.1", server.port, N, ca=server.ca, duration=40))


@SLOW
def test_connections_stalled_mid_tls_handshake_do_not_starve_the_webhook(server: Server) -> None:
    through(server, lambda: atk.StalledHandshakes("127.0.0.1", server.port, N, ca=server.ca, duration=40))


@SLOW
def test_slow_header_clients_do_not_starve_the_webhook(server: Server) -> None:
    through(server, lambda: atk.SlowHeaders("127.0.0.1", server.port, N, ca=server.ca, duration=40))


@SLOW
def test_slow_body_clients_do_not_starve_the_webhook(server: Server) -> None:
    through(server, lambda: atk.SlowBodies("127.0.0.1", server.port, N, ca=server.ca, duration=40))


@SLOW
def test_a_flood_of_new_tls_connections_does_not_starve_the_webhook(server: Server) -> None:
    through(server, lambda: atk.HandshakeFlood("127.0.0.1", server.port, ca=server.ca, threads=4, duration=40))


@SLOW
def test_64_concurrent_keep_alive_clients_do_not_starve_the_webhook(server: Server) -> None:
    bursts: list[atk.KeepAliveBurst] = []

    def burst() -> atk.KeepAliveBurst:
        bursts.append(atk.KeepAliveBurst("127.0.0.1", server.port, review_body(0), ca=server.ca, clients=64,
                                         interval=0.5, duration=40))  # fmt: skip
        return bursts[-1]

    through(server, burst)
    assert all(b.errors == 0 and b.ok >= 64 for b in bursts), [(b.ok, b.errors) for b in bursts]


# --------------------------------------------------------------------------- deadlines and caps


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with short deadlines and small caps, so that each can be watched at work within seconds."""
    s = Server(tmp_path_factory.mktemp("strict"), {"mode": "enforce"},
               args=["--handshake-timeout", "1", "--header-timeout", "1.5", "--body-timeout", "1.5",
                     "--max-connections", "40", "--max-connections-per-peer", "20"])  # fmt: skip
    try:
        yield s
    finally:
        s.stop()


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closes ``sock`` within ``seconds``; and what it sent before closing."""
    sock.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                return True, received
            received += chunk
    except (TimeoutError, ssl.SSLError, ConnectionResetError):
        return received != b"" or time.monotonic() < deadline, received
    return False, received


def test_each_connection_phase_has_a_deadline(strict: Server) -> None:
    """A silent connection, a stalled handshake, a head and a body that never finish: each is closed on time,
    the slow body with a 408."""
    ctx = atk.client_context(strict.ca)
    src = atk.ATTACKER_ADDRESS
    silent = atk._connect("127.0.0.1", strict.port, src, 3)
    stalled = atk._connect("127.0.0.1", strict.port, src, 3)
    stalled.sendall(atk.PARTIAL_CLIENT_HELLO)
    head = ctx.wrap_socket(atk._connect("127.0.0.1", strict.port, src, 3), server_hostname="127.0.0.1")
    head.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\n")
    body_sock = ctx.wrap_socket(atk._connect("127.0.0.1", strict.port, src, 3), server_hostname="127.0.0.1")
    body_sock.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{")  # fmt: skip
    started = time.monotonic()
    try:
        assert closed_within(silent, 3.0)[0], "a connection that sends nothing is closed after the handshake deadline"
        assert closed_within(stalled, 3.0)[0], "a stalled handshake is closed after the handshake deadline"
        assert closed_within(head, 3.0)[0], "a request head that never ends is closed after the header deadline"
        closed, answer = closed_within(body_sock, 3.0)
        assert closed and answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert time.monotonic() - started < 4.0
    finally:
        for s in (silent, stalled, head, body_sock):
            s.close()
    metrics = strict.metrics()
    assert 'auditwarden_connections_dropped_total{reason="handshake-timeout"}' in metrics
    assert 'auditwarden_connections_dropped_total{reason="body-timeout"}' in metrics
    # ... and the server still answers.
    assert strict.answer(review(policy_configmap()))["allowed"] is True


def test_connections_over_the_caps_are_refused_at_once_and_kept_alive_ones_keep_working(strict: Server) -> None:
    """Over the per-peer cap (20) and the total cap (40): a TCP reset at once, counted; a kept-alive client
    (kube-apiserver's connection) keeps being answered all the while."""
    assert strict.answer(review(policy_configmap()))["allowed"] is True  # strict.session's connection is open now
    held: list[socket.socket] = []
    try:
        for _ in range(20):
            held.append(atk._connect("127.0.0.1", strict.port, "127.0.0.2", 3))
        time.sleep(0.2)
        over = atk._connect("127.0.0.1", strict.port, "127.0.0.2", 3)
        started = time.monotonic()
        with pytest.raises((ConnectionResetError, ssl.SSLError, OSError)):
            over.settimeout(2)
            if over.recv(1) == b"":
                raise ConnectionResetError("closed")
        assert time.monotonic() - started < 1.0  # refused at once, not left hanging
        over.close()
        for _ in range(19):  # another peer fills the worker's total cap (40 with the kept-alive one)
            held.append(atk._connect("127.0.0.1", strict.port, "127.0.0.3", 3))
        time.sleep(0.2)
        assert strict.answer(review(policy_configmap()))["allowed"] is True  # the kept-alive connection
    finally:
        for s in held:
            s.close()
    metrics = strict.metrics()
    assert 'auditwarden_connections_dropped_total{reason="peer-over-capacity"}' in metrics
    assert "refusing connections over the connection caps" in strict.log()


def test_a_peer_opening_connections_too_fast_is_refused_before_any_tls_work(tmp_path: Path) -> None:
    """A burst of new connections from one address, then a rate: the excess gets a TCP reset at once
    (no handshake, so no key exchange is spent on it), counted; other addresses are not affected."""
    rate = ["--new-connections-per-peer-burst", "10", "--new-connections-per-peer-per-second", "1"]
    server = Server(tmp_path / "rate", {"mode": "enforce"}, args=rate)
    ctx = atk.client_context(server.ca)
    opened: list[ssl.SSLSocket] = []
    try:
        for _ in range(10):  # the burst: full TLS handshakes
            opened.append(ctx.wrap_socket(atk._connect("127.0.0.1", server.port, "127.0.0.3", 3),
                                          server_hostname="127.0.0.1"))  # fmt: skip
        started = time.monotonic()
        with pytest.raises((ConnectionResetError, ssl.SSLError, OSError)):  # the reset may beat connect()'s return
            ctx.wrap_socket(atk._connect("127.0.0.1", server.port, "127.0.0.3", 3), server_hostname="127.0.0.1")
        assert time.monotonic() - started < 1.0  # refused at once, not left hanging
        # another address (the apiserver's) opens new connections as before
        assert server.answer(review(policy_configmap()))["allowed"] is True
        time.sleep(1.2)  # one token a second: the hasty peer may open one more
        opened.append(ctx.wrap_socket(atk._connect("127.0.0.1", server.port, "127.0.0.3", 3),
                                      server_hostname="127.0.0.1"))  # fmt: skip
        assert 'auditwarden_connections_dropped_total{reason="peer-over-rate"} 1.0' in server.metrics()
    finally:
        for s in opened:
            s.close()
        server.stop()


# ------------------------------------------------------------------------------------ kill -9


@SLOW
def test_kill_9_of_a_worker_under_load_loses_at_most_its_in_flight_requests(tmp_path: Path) -> None:
    """Two workers; one is killed mid-load.  Requests on the survivor keep succeeding, the master replaces the
    dead one; the requests lost (at most those in flight on the dead worker) and the recovery time are printed."""
    server = Server(tmp_path / "two", {"mode": "enforce"}, args=["--workers", "2"])
    try:
        before = server.wait_for_workers(2)
        assert len(before) == 2
        keep = atk.LegitimateClient("127.0.0.1", server.port, review_body, ca=server.ca, check=allowed,
                                    pause=0.005).start(4.5)  # fmt: skip
        fresh = atk.LegitimateClient("127.0.0.1", server.port, review_body, ca=server.ca, check=allowed,
                                     fresh=True, pause=0.005).start(4.5)  # fmt: skip
        time.sleep(1.5)
        victim = before[0]
        count_at_kill = keep.result.count + fresh.result.count
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        replaced = None
        while time.monotonic() - killed_at < 20:
            now = server.wait_for_workers(2, timeout=0.1)
            if len(now) == 2 and victim not in now:
                replaced = time.monotonic() - killed_at
                break
            time.sleep(0.05)
        k, f = keep.join(), fresh.join()
        lost = len(k.failures) + len(f.failures)
        print(f"\nkill -9 of 1 of 2 workers: replaced after {replaced} s; {k.count + f.count} requests, {lost} lost: "
              f"{(k.failures + f.failures)[:3]}")  # fmt: skip
        assert replaced is not None, "the dead worker was not replaced within 20 s"
        assert lost <= 2, k.failures + f.failures  # at most one in flight per client, on the dead worker
        assert k.count + f.count > count_at_kill + 20, "requests kept being answered after the kill"
        # The replacement serves too: new connections land on both workers again.
        assert server.answer(review(policy_configmap()))["allowed"] is True
    finally:
        server.stop()


def test_a_client_that_expects_100_continue_gets_it_before_the_body_is_read(strict: Server) -> None:
    """The body is read before the application runs, so the worker itself answers ``Expect: 100-continue``."""
    data = review_body(7)
    ctx = ssl.create_default_context(cafile=strict.ca)
    with socket.create_connection(("127.0.0.1", strict.port), timeout=3) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # fmt: skip
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(data))  # fmt: skip
        assert tls.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        tls.sendall(data)
        answer = read_reply(tls)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b"100 Continue" not in answer  # sent once, not again by gunicorn
    assert allowed(answer.split(b"\r\n\r\n", 1)[1])


# ------------------------------------------------------------------------------------ shutdown


def test_a_stopping_worker_closes_idle_kept_alive_connections_at_once(tmp_path: Path) -> None:
    """On SIGTERM an idle kept-alive connection (kube-apiserver's, between two requests) is closed
    cleanly — the client reads an end of stream, never an error answer — and does not hold the
    worker until the head deadline (5 s): the process is gone well before that."""
    server = Server(tmp_path / "stopping", {"mode": "enforce"})
    try:
        data = review_body(11)
        ctx = ssl.create_default_context(cafile=server.ca)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # fmt: skip
            tls.sendall(b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(data) + data)  # fmt: skip
            answer = read_reply(tls)
            assert answer.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in answer.lower(), answer[:300]
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            tls.settimeout(4)
            assert tls.recv(4096) == b"", "an idle connection got bytes instead of a plain close"
            closed_after = time.monotonic() - started
            server.proc.wait(timeout=4)
            exited_after = time.monotonic() - started
        print(f"\nSIGTERM with an idle kept-alive connection: closed after {closed_after:.2f} s, "
              f"exited after {exited_after:.2f} s")  # fmt: skip
        assert exited_after < 3.0, exited_after  # the head deadline is 5 s
    finally:
        server.stop()
