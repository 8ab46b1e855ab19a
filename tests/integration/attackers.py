"""Hostile and legitimate clients of the webhook, for the attack tests and ``bench/attack.py``.

Everything here targets one loopback address and port, runs in daemon threads, and stops by
itself: every attack has a fixed connection count and every loop a deadline.  The attackers
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
import os
import resource
import selectors
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


class Attack:
    """N connections held by one thread; subclasses say how a connection starts and what it drips."""

    name = "attack"

    def __init__(self, host: str, port: int, n: int, *, ca: str, source: str = ATTACKER_ADDRESS,
                 duration: float = 30.0) -> None:  # fmt: skip
        self.host, self.port, self.n, self.ca, self.source = host, port, n, ca, source
        self.duration = duration
        self.ctx = client_context(ca)
        self.opened = 0
        self.reopened = 0
        self.failed = 0  # connection attempts the server refused or did not complete
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._socks: list[socket.socket | None] = []

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

    # -- life cycle
    def start(self) -> Attack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for s in self._socks:
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()

    def __enter__(self) -> Attack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ready(self, fraction: float = 0.9, timeout: float = 30.0) -> bool:
        """Wait until most connections are open (the attack is in place)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.opened >= self.n * fraction:
                return True
            time.sleep(0.05)
        return False

    def _open_slot(self, i: int, reopen: bool) -> None:
        try:
            self._socks[i] = self.open_one()
            self.opened += 1
            self.reopened += reopen
        except (OSError, ssl.SSLError):
            self._socks[i] = None
            self.failed += 1

    def _run(self) -> None:
        deadline = time.monotonic() + self.duration
        self._socks = [None] * self.n
        for i in range(self.n):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            self._open_slot(i, reopen=False)
        second = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            tick = time.monotonic()
            second += 1
            for i, s in enumerate(self._socks):
                if self._stop.is_set():
                    return
                if s is None:
                    self._open_slot(i, reopen=True)
                    continue
                try:
                    self.drip(s, second)
                except (OSError, ssl.SSLError):
                    with contextlib.suppress(OSError):
                        s.close()
                    self._open_slot(i, reopen=True)
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
        self.sent += 1


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
        self.sent += 1


class HandshakeFlood:
    """``threads`` clients that open a TLS connection, complete the handshake, and drop it, in a loop."""

    name = "TLS connection flood"

    def __init__(self, host: str, port: int, *, ca: str, threads: int = 4, source: str = ATTACKER_ADDRESS,
                 duration: float = 30.0) -> None:  # fmt: skip
        self.host, self.port, self.source, self.duration = host, port, source, duration
        self.ctx = client_context(ca)
        self.handshakes = 0
        self.failed = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self.n = threads

    def _run(self) -> None:
        deadline = time.monotonic() + self.duration
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                raw = _connect(self.host, self.port, self.source, 3.0)
                with self.ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                    self.handshakes += 1
            except (OSError, ssl.SSLError):
                self.failed += 1
                self._stop.wait(0.01)

    def start(self) -> HandshakeFlood:
        for t in self._threads:
            t.start()
        return self

    def ready(self, fraction: float = 0.9, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.handshakes < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.handshakes >= 20

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def __enter__(self) -> HandshakeFlood:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class KeepAliveBurst:
    """``clients`` keep-alive connections that each send one AdmissionReview at the same moment, every
    ``interval`` seconds — kube-apiserver's pattern under a burst of writes (one connection per
    concurrent request, kept alive between bursts)."""

    name = "64 keep-alive clients in bursts"

    def __init__(self, host: str, port: int, body: bytes, *, ca: str, clients: int = 64, interval: float = 0.5,
                 duration: float = 30.0) -> None:  # fmt: skip
        self.host, self.port, self.body, self.ca = host, port, body, ca
        self.clients, self.interval, self.duration = clients, interval, duration
        self.n = clients
        self.ctx = client_context(ca)
        self.ok = 0
        self.errors = 0
        self._stop = threading.Event()
        self._barrier = threading.Barrier(clients)
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        deadline = time.monotonic() + self.duration
        conn: http.client.HTTPSConnection | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self._barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                return
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=5)
                conn.request("POST", "/validate", body=self.body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    self.ok += 1
                else:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def start(self) -> KeepAliveBurst:
        for t in self._threads:
            t.start()
        return self

    def ready(self, fraction: float = 0.9, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.ok < self.clients and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.ok >= self.clients

    def stop(self) -> None:
        self._stop.set()
        self._barrier.abort()
        for t in self._threads:
            t.join(10)

    def __enter__(self) -> KeepAliveBurst:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


class PeakMemory:
    """Samples :func:`tree_rss_bytes` every ``interval`` seconds in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak = tree_rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, tree_rss_bytes(self.pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def wait_selectable(sock: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(timeout))
