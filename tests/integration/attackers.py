"""Hostile and legitimate clients of the webhook, for the attack tests and ``bench/attack.py``.

Everything here targets one loopback address and port and stops by itself: every attack has a
fixed connection count and every loop a deadline.  Each attack runs in a child process of its
own, so its work never competes with the legitimate client for the measuring process's GIL.  The attackers
connect from a second loopback address (``127.0.0.2`` by default; all of 127.0.0.0/8 is this
host on Linux) so that the server sees them as a different peer from the legitimate client,
as a hostile pod is a different peer from kube-apiserver.

Attack shapes (the issue's list):

* :class:`IdleConnections` — N TCP connections that never send a byte;
* :class:`StalledHandshakes` — N connections that send the first bytes of a TLS ClientHello
  and then nothing;
* :class:`SlowHeaders` — N TLS connections that send a request line and headers one byte
  per second;
* :class:`SlowBodies` — N TLS connections that send complete headers announcing a 3 MiB body
  and then the body one byte per second;
* :class:`HandshakeFlood` — threads that open TLS connections, complete the handshake and
  drop them, as fast as they can;
* :class:`KeepAliveBurst` — 64 keep-alive clients that each send an AdmissionReview at the
  same moment, every interval, as kube-apiserver does under a burst.

Each attacker keeps its pressure up: a connection the server closes is opened again, and
``reopened`` counts how often that happened (a server that times slow clients out shows it
here).
"""

from __future__ import annotations

import contextlib
import http.client
import multiprocessing
import os
import random
import resource
import selectors
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ATTACKER_ADDRESS = "127.0.0.2"
#: The first bytes of a TLS 1.2/1.3 ClientHello record: a handshake record header that announces
#: 512 bytes, then the start of a ClientHello — after which the attacker stalls.
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def raise_fd_limit(wanted: int = 8192) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (as far as the hard limit allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def client_context(ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # the attackers dial 127.0.0.1 from another source address
    return ctx


def _connect(host: str, port: int, source: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.bind((source, 0))
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


# ----------------------------------------------------------------------------- attackers


_MP = multiprocessing.get_context("fork")


class _Hostile:
    """An attacker that runs in a child process of its own (so that its work never competes with the
    legitimate client for this process's GIL), with counters shared through the fork."""

    name = "attack"
    COUNTERS: tuple[str, ...] = ()

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self._counts = {c: _MP.Value("q", 0) for c in self.COUNTERS}
        self._stop = _MP.Event()
        self._proc: Any = None

    def __getattr__(self, name: str) -> int:
        counts = self.__dict__.get("_counts", {})
        if name in counts:
            return int(counts[name].value)
        raise AttributeError(name)

    def count(self, name: str, k: int = 1) -> None:
        value = self._counts[name]
        with value.get_lock():
            value.value += k

    def body(self) -> None:  # runs in the child
        raise NotImplementedError

    def _main(self) -> None:
        # The legitimate client shares the clients' CPU here; in a cluster it does not share a CPU
        # with a hostile pod, so the attacker yields that CPU to it (and takes all that is left).
        with contextlib.suppress(OSError):
            os.nice(19)
        try:
            self.body()
        finally:
            os._exit(0)

    def start(self) -> Any:
        self._proc = _MP.Process(target=self._main, name=self.name, daemon=True)
        self._proc.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.join(15)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def in_place(self) -> bool:
        raise NotImplementedError

    def ready(self, timeout: float = 30.0) -> bool:
        """Wait until the attack is in place (most connections open, or the flood running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.in_place():
                return True
            time.sleep(0.05)
        return False


class Attack(_Hostile):
    """N connections held by one child process; subclasses say how a connection starts and what it drips."""

    COUNTERS = ("opened", "reopened", "failed", "sent")

    def __init__(self, host: str, port: int, n: int, *, ca: str, source: str = ATTACKER_ADDRESS,
                 duration: float = 30.0) -> None:  # fmt: skip
        super().__init__(duration)
        self.host, self.port, self.n, self.ca, self.source = host, port, n, ca, source
        self.ctx = client_context(ca)

    def in_place(self) -> bool:
        """Every connection was attempted once (and most of them are open)."""
        return self.opened + self.failed >= self.n and self.opened >= self.n * 0.9

    # -- what a connection does
    def open_one(self) -> socket.socket:
        return _connect(self.host, self.port, self.source, 3.0)

    def drip(self, sock: socket.socket, second: int) -> None:
        """Called about once a second per connection; raise OSError when the server has closed it."""
        sock.setblocking(False)
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                raise ConnectionResetError("closed by the server")
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
        finally:
            sock.setblocking(True)

    def _open_slot(self, socks: list[socket.socket | None], i: int, reopen: bool) -> None:
        try:
            socks[i] = self.open_one()
            self.count("opened")
            if reopen:
                self.count("reopened")
        except (OSError, ssl.SSLError):
            socks[i] = None
            self.count("failed")

    def body(self) -> None:
        deadline = time.monotonic() + self.duration
        socks: list[socket.socket | None] = [None] * self.n
        for i in range(self.n):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            self._open_slot(socks, i, reopen=False)
        second = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            tick = time.monotonic()
            second += 1
            for i, s in enumerate(socks):
                if self._stop.is_set():
                    return
                if s is None:
                    self._open_slot(socks, i, reopen=True)
                    continue
                try:
                    self.drip(s, second)
                except (OSError, ssl.SSLError):
                    with contextlib.suppress(OSError):
                        s.close()
                    self._open_slot(socks, i, reopen=True)
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))


class IdleConnections(Attack):
    """TCP connections that never send a byte."""

    name = "idle TCP"


class StalledHandshakes(Attack):
    """TCP connections that send the start of a ClientHello and stall."""

    name = "stalled TLS handshake"

    def open_one(self) -> socket.socket:
        sock = super().open_one()
        sock.sendall(PARTIAL_CLIENT_HELLO)
        return sock


class _TLSAttack(Attack):
    def open_one(self) -> socket.socket:
        raw = super().open_one()
        try:
            return self.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except (OSError, ssl.SSLError):
            raw.close()
            raise


class SlowHeaders(_TLSAttack):
    """TLS connections that send a request's head one byte per second (never finishing it)."""

    name = "slow headers (1 B/s)"
    HEAD = b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 8000

    def drip(self, sock: socket.socket, second: int) -> None:
        sock.sendall(self.HEAD[second % len(self.HEAD) : second % len(self.HEAD) + 1])
        self.count("sent")


class SlowBodies(_TLSAttack):
    """TLS connections that announce a 3 MiB body and send it one byte per second."""

    name = "slow body (3 MiB at 1 B/s)"
    LENGTH = 3 * 1024 * 1024

    def open_one(self) -> socket.socket:
        sock = super().open_one()
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n{" % self.LENGTH)  # fmt: skip
        return sock

    def drip(self, sock: socket.socket, second: int) -> None:
        sock.sendall(b" ")
        self.count("sent")


class HandshakeFlood(_Hostile):
    """``threads`` clients that open a TLS connection, complete the handshake, and drop it, in a loop."""

    name = "TLS connection flood"
    COUNTERS = ("handshakes", "failed")

    def __init__(self, host: str, port: int, *, ca: str, threads: int = 4, source: str = ATTACKER_ADDRESS,
                 duration: float = 30.0) -> None:  # fmt: skip
        super().__init__(duration)
        self.host, self.port, self.source, self.n = host, port, source, threads
        self.ca = ca

    def in_place(self) -> bool:
        return self.handshakes >= 20

    def _loop(self, ctx: ssl.SSLContext, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                raw = _connect(self.host, self.port, self.source, 3.0)
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                    self.count("handshakes")
            except (OSError, ssl.SSLError):
                self.count("failed")
                self._stop.wait(0.01)

    def body(self) -> None:
        ctx = client_context(self.ca)
        deadline = time.monotonic() + self.duration
        threads = [threading.Thread(target=self._loop, args=(ctx, deadline), daemon=True) for _ in range(self.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.duration + 10)


class KeepAliveBurst(_Hostile):
    """``clients`` keep-alive connections opened by a burst — kube-apiserver opens one connection per
    concurrent request — that then keep sending: each client one AdmissionReview every ``interval``
    seconds.  ``synchronized=True`` sends every round at the same instant (a burst every interval,
    the worst case); otherwise only the first round is, and the clients then drift apart."""

    name = "64 keep-alive clients in bursts"
    COUNTERS = ("ok", "errors")

    def __init__(self, host: str, port: int, body: bytes, *, ca: str, clients: int = 64, interval: float = 0.5,
                 synchronized: bool = False, duration: float = 30.0) -> None:  # fmt: skip
        super().__init__(duration)
        self.host, self.port, self.body_bytes, self.ca = host, port, body, ca
        self.clients, self.interval, self.n, self.synchronized = clients, interval, clients, synchronized

    def in_place(self) -> bool:
        return self.ok >= self.clients

    def _client(self, ctx: ssl.SSLContext, barrier: threading.Barrier, deadline: float) -> None:
        conn: http.client.HTTPSConnection | None = None
        first = True
        while not self._stop.is_set() and time.monotonic() < deadline:
            if first or self.synchronized:
                try:
                    barrier.wait(timeout=10)
                except threading.BrokenBarrierError:
                    break
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(self.host, self.port, context=ctx, timeout=5)
                conn.request("POST", "/validate", body=self.body_bytes, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                self.count("ok" if resp.status == 200 else "errors")
            except (OSError, http.client.HTTPException):
                self.count("errors")
                if conn is not None:
                    conn.close()
                conn = None
            # After the first burst each client keeps its own phase (random), unless synchronized.
            self._stop.wait(self.interval * (1.0 if self.synchronized else random.uniform(0.0 if first else 0.5, 1.5)))
            first = False
        if conn is not None:
            conn.close()

    def body(self) -> None:
        ctx = client_context(self.ca)
        deadline = time.monotonic() + self.duration
        barrier = threading.Barrier(self.clients)
        threads = [threading.Thread(target=self._client, args=(ctx, barrier, deadline), daemon=True)
                   for _ in range(self.clients)]  # fmt: skip
        for t in threads:
            t.start()
        self._stop.wait(self.duration)
        barrier.abort()
        for t in threads:
            t.join(10)


# ------------------------------------------------------------------------- legitimate client


@dataclass
class Latencies:
    """What a legitimate client saw: a latency per answered request, and every failure's reason."""

    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.seconds) + len(self.failures)

    def quantile(self, q: float) -> float:
        if not self.seconds:
            return float("nan")
        if len(self.seconds) == 1:
            return self.seconds[0]
        return statistics.quantiles(self.seconds, n=100, method="inclusive")[min(98, max(0, round(q * 100) - 1))]

    @property
    def p50(self) -> float:
        return self.quantile(0.50)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def worst(self) -> float:
        return max(self.seconds, default=float("nan"))


class LegitimateClient:
    """kube-apiserver's side: AdmissionReviews one after another, each with the apiserver's 5 s budget.

    ``fresh=True`` opens a new TLS connection for every request (what the apiserver does after
    an idle spell; the case idle attackers hurt most); otherwise one keep-alive connection is
    reused and reopened only after an error.  ``body_for(i)`` gives the i-th request's body.
    """

    def __init__(
        self,
        host: str,
        port: int,
        body_for: Callable[[int], bytes],
        *,
        ca: str,
        fresh: bool = False,
        timeout: float = 5.0,
        pause: float = 0.02,
        check: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.host, self.port, self.body_for = host, port, body_for
        self.fresh, self.timeout, self.pause = fresh, timeout, pause
        self.ctx = ssl.create_default_context(cafile=ca)
        self.check = check
        self.result = Latencies()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPSConnection | None = None

    def one(self, i: int) -> None:
        body = self.body_for(i)
        started = time.monotonic()
        try:
            if self._conn is None or self.fresh:
                self._conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
            self._conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
            resp = self._conn.getresponse()
            data = resp.read()
            elapsed = time.monotonic() - started
            if resp.status != 200:
                self.result.failures.append(f"HTTP {resp.status}: {data[:200]!r}")
            elif self.check is not None and not self.check(data):
                self.result.failures.append(f"unexpected answer: {data[:200]!r}")
            elif elapsed > self.timeout:
                self.result.failures.append(f"answered after {elapsed:.2f} s, past the {self.timeout} s budget")
            else:
                self.result.seconds.append(elapsed)
        except (OSError, http.client.HTTPException) as exc:
            self.result.failures.append(f"{type(exc).__name__}: {exc} after {time.monotonic() - started:.2f} s")
            self._close()
        if self.fresh:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run_for(self, seconds: float, max_requests: int = 100_000) -> Latencies:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline and i < max_requests and not self._stop.is_set():
            self.one(i)
            i += 1
            self._stop.wait(self.pause)
        self._close()
        return self.result

    def start(self, seconds: float) -> LegitimateClient:
        self._thread = threading.Thread(target=self.run_for, args=(seconds,), daemon=True)
        self._thread.start()
        return self

    def join(self) -> Latencies:
        if self._thread is not None:
            self._thread.join(60)
        return self.result

    def stop(self) -> Latencies:
        self._stop.set()
        return self.join()


# ------------------------------------------------------------------------------- CPU pinning


def split_cpus(server_pid: int) -> bool:
    """Pin the server (every thread of the process tree) to the first CPU and this thread to the others.

    On a 2-CPU machine the attackers' own CPU would otherwise come out of the server's, which
    in a cluster it does not (a hostile pod burns its own node's CPU).  Processes and threads
    started later inherit the mask of their parent.  False (and nothing pinned) with one CPU.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return False
    for pid in [server_pid, *_descendants(server_pid)]:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), {cpus[0]})
    os.sched_setaffinity(0, set(cpus[1:]))
    return True


# ----------------------------------------------------------------------------------- memory


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc), in bytes."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{p}/statm") as fh:
            total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return total


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as fh:
        for child in fh.read().split():
            found.append(int(child))
            found.extend(_descendants(int(child)))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants so far (Linux /proc), in seconds."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


class PeakMemory:
    """Samples :func:`tree_rss_bytes` every ``interval`` seconds in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak = tree_rss_bytes(pid)
        self.cpu = 0.0  # CPU seconds the tree used between __enter__ and __exit__
        self.wall = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_rss_bytes(self.pid))

    def __enter__(self) -> PeakMemory:
        self._cpu0, self._wall0 = tree_cpu_seconds(self.pid), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.cpu = tree_cpu_seconds(self.pid) - self._cpu0
        self.wall = time.monotonic() - self._wall0

    @property
    def cpu_share(self) -> float:
        """The tree's CPU use as a fraction of one CPU over the sampled time."""
        return self.cpu / self.wall if self.wall else 0.0


def wait_selectable(sock: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(timeout))
