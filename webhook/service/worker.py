"""The gunicorn worker of ``auditwarden serve``: no connection pattern can take every request slot.

gunicorn's ``gthread`` worker (the previous default) gives a connection a pool thread while
it waits for the first bytes, the TLS handshake, the request head and the body, with no
deadline on the last three: eight connections that send nothing, or that trickle a byte a
second, held every thread, and kube-apiserver's own request then waited past its timeout.
This worker is gunicorn's ``gevent`` worker (one greenlet per connection: a waiting client
costs a few kilobytes, never a thread) with the deadlines and caps a hostile network needs:

* **TLS handshake off the accept path, bounded.**  The accept loop only accepts; each
  connection's greenlet wraps it with the context of the process's
  :class:`~webhook.service.tls.CertReloader` (so rotated certificates are served, as with
  gthread) and completes the handshake within ``handshake_timeout`` — the first byte of the
  ClientHello included — or the connection is closed.
* **Request head within** ``header_timeout``: the time a kept-alive connection may stay idle
  and then take to deliver a complete request line and headers (gunicorn's ``keepalive``).
* **Request body within** ``body_timeout``, read in full by the worker *before* the
  application runs (a body larger than ``max_body_bytes`` is not read: the application
  answers 413 from its Content-Length and the connection is closed).  A client too slow gets
  ``408`` and the connection is closed; the application never waits on a client.
* **Connection caps with a clear refusal**: at most ``max_connections`` open connections per
  worker and ``max_connections_per_peer`` from one peer address, and new connections from one peer
  at most ``new_connections_per_peer_rate`` a second after a burst (:class:`NewConnectionRate`:
  a flood of TLS handshakes would otherwise spend the CPU that judging needs); a connection over a cap is
  closed at once with a TCP reset (before any TLS work), counted in
  ``auditwarden_connections_dropped_total{reason}``, and logged at most once a minute.
  Kept-alive connections (kube-apiserver's) are never closed to make room.
* **Graceful stop that is not held by idle connections.**  On SIGTERM the worker stops
  accepting, lets the requests in progress finish (their responses close their connections)
  and shuts the connections that wait idle for a next request at once, as Go's
  ``Server.Shutdown`` does, instead of waiting for their head deadline.
* **Judging off the I/O loop.**  The core is CPU-bound Python; run on the loop, a long verdict
  would stall every other connection's I/O.  :meth:`judge_offloaded` runs inline judging in a
  small pool of native threads (:data:`JUDGE_THREADS`), so slow-client I/O keeps being served
  under the GIL's switch interval; large objects still go to the bounded child process of
  :mod:`webhook.service.isolation`, which the worker waits for without blocking the loop.

The worker is named in :mod:`webhook.gunicorn_conf` as
``webhook.service.worker.WebhookWorker``; its limits come from the
:class:`~webhook.service.server.WebhookServer` that started it (``serve`` options).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import resource
import select
import socket
import struct
import time
from collections import Counter as _Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer
from gevent.socket import wait_read
from gevent.threadpool import ThreadPool
from gunicorn import sock as gunicorn_sock
from gunicorn.workers.ggevent import GeventWorker

from webhook.service import metrics

__all__ = ["JUDGE_THREADS", "ConnectionLimits", "NewConnectionRate", "WebhookWorker"]

T = TypeVar("T")

#: Native threads that judge inline (small) objects.  More would only queue on the GIL.
JUDGE_THREADS = 2
_REFUSAL_LOG_INTERVAL = 60.0
_ACCEPT_BATCH = 16
_READ_CHUNK = 64 * 1024
_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b'Content-Length: 59\r\n\r\n{"error": "the request body was not received in time (408)"}'
)

log = logging.getLogger("auditwarden.connections")


@dataclass(frozen=True)
class ConnectionLimits:
    """Caps and deadlines of one worker process (``auditwarden serve`` options; see the module doc)."""

    max_connections: int = 1000
    max_connections_per_peer: int = 500
    new_connections_per_peer_rate: float = 100.0
    new_connections_per_peer_burst: int = 1000
    handshake_timeout: float = 3.0
    header_timeout: float = 5.0
    body_timeout: float = 10.0
    max_body_bytes: int = 3 * 1024 * 1024

    def describe(self) -> dict[str, Any]:
        return {"maxConnections": self.max_connections, "maxConnectionsPerPeer": self.max_connections_per_peer,
                "newConnectionsPerPeerPerSecond": self.new_connections_per_peer_rate,
                "newConnectionsPerPeerBurst": self.new_connections_per_peer_burst,
                "handshakeTimeoutSeconds": self.handshake_timeout, "headerTimeoutSeconds": self.header_timeout,
                "bodyTimeoutSeconds": self.body_timeout}  # fmt: skip


class NewConnectionRate:
    """A token bucket per peer address: how many new connections a peer may open, and how fast.

    A TLS handshake is the most expensive thing a client can make the server do without being
    authenticated (a key exchange and a signature, about a millisecond of CPU).  A peer that opens
    connections faster than ``rate`` a second, after a ``burst`` (kube-apiserver opens one
    connection per concurrent request, then keeps them alive), has the excess refused before any
    TLS work.  Peers are forgotten once their bucket is full again, so the table stays small.
    ``rate`` 0 turns the limit off.
    """

    MAX_TRACKED = 4096

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, peer: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        tokens, last = self._buckets.get(peer, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[peer] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self.MAX_TRACKED:
            self._forget_full(now)
        return allowed

    def _forget_full(self, now: float) -> None:
        full = [p for p, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for p in full:
            del self._buckets[p]
        while len(self._buckets) > self.MAX_TRACKED:  # a flood from ever new addresses: forget the oldest
            del self._buckets[next(iter(self._buckets))]


class _BodyTimeout(Exception):
    """The request body did not arrive within ``body_timeout``."""


class WebhookWorker(GeventWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's gevent worker with handshake/head/body deadlines and connection caps."""

    limits: ConnectionLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = getattr(self.app, "limits", None) or ConnectionLimits()
        self.open_connections = 0
        self.per_peer: _Tally[str] = _Tally()
        self.new_connections = NewConnectionRate(self.limits.new_connections_per_peer_rate,
                                                 self.limits.new_connections_per_peer_burst)  # fmt: skip
        self._last_refusal_log = 0.0
        self._refused_since_log = 0
        self._judges: ThreadPool | None = None
        self._idle: set[Any] = set()  # greenlets of connections waiting for a request head
        self._sockets: dict[Any, Any] = {}  # each connection's greenlet -> its (TLS) socket

    # ----------------------------------------------------------------- process set-up

    def init_process(self) -> None:
        _raise_fd_limit(self.limits.max_connections + 256)
        super().init_process()  # monkey-patches, then loads the app (webhook.service.server.WebhookServer.load)

    def judge_offloaded(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (an inline verdict) in a native thread; this greenlet waits without blocking the loop."""
        if self._judges is None:
            self._judges = ThreadPool(JUDGE_THREADS)
        result: T = self._judges.apply(fn)
        return result

    @contextlib.contextmanager
    def timeout_ctx(self) -> Iterator[None]:
        """Deadline of a connection's next request head (AsyncWorker's keep-alive loop).

        While a connection waits here it is *idle* (no request of it is being served), and
        :meth:`_close_idle` may end it when the worker shuts down.
        """
        current = gevent.getcurrent()
        self._idle.add(current)
        try:
            with gevent.Timeout(self.limits.header_timeout, False):
                yield
        finally:
            self._idle.discard(current)

    def run(self) -> None:
        """gunicorn's GeventWorker.run, with TLS moved into each connection's greenlet."""
        servers = []
        for s in self.sockets:
            s.setblocking(1)
            server = StreamServer(s, handle=lambda client, addr, s=s: self.handle(s, client, addr), spawn=Pool(None))
            # Accept in small batches (gevent's default is 100 a loop turn): a burst of new connections
            # then interleaves with the I/O of the connections already open instead of going first.
            server.max_accept = 1 if self.cfg.workers > 1 else _ACCEPT_BATCH
            server.start()
            servers.append(server)
        while self.alive:
            self.notify()
            gevent.sleep(0.2)  # how soon a stop (SIGTERM) is noticed
        for server in servers:
            server.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while self.open_connections and time.monotonic() < deadline:
            self._close_idle()
            self.notify()
            gevent.sleep(0.1)
        for server in servers:
            server.stop(timeout=1)

    def _close_idle(self) -> None:
        """On shutdown, end the connections that wait for a request, as Go's ``Server.Shutdown`` does.

        kube-apiserver keeps its connections to a webhook open between requests; left alone, each
        would hold a stopping worker until the head deadline.  A connection whose next request
        has started to arrive (bytes readable) is left to be served; its response then closes it
        (gunicorn answers with ``Connection: close`` once the worker is no longer alive).  The
        socket is shut down rather than the greenlet killed, so the client sees a plain close,
        never an error response, and may retry on a new connection.
        """
        for greenlet in list(self._idle):
            sock = self._sockets.get(greenlet)
            if sock is None or _readable(sock):
                continue
            _shutdown(sock)
            self._idle.discard(greenlet)

    # ---------------------------------------------------------------- one connection

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        peer = addr[0] if isinstance(addr, tuple) else str(addr)
        reason = None
        if self.open_connections >= self.limits.max_connections:
            reason = "over-capacity"
        elif self.per_peer[peer] >= self.limits.max_connections_per_peer:
            reason = "peer-over-capacity"
        elif not self.new_connections.allow(peer, time.monotonic()):
            reason = "peer-over-rate"
        if reason is not None:
            self._refuse(client, peer, reason)
            return
        self.open_connections += 1
        self.per_peer[peer] += 1
        try:
            client.setblocking(1)
            if self.cfg.is_ssl:
                client = self._handshake(client)
                if client is None:
                    return
            self._sockets[gevent.getcurrent()] = client
            super().handle(listener, client, addr)
        finally:
            self._sockets.pop(gevent.getcurrent(), None)
            self.open_connections -= 1
            self.per_peer[peer] -= 1
            if self.per_peer[peer] <= 0:
                del self.per_peer[peer]

    def _handshake(self, client: Any) -> Any:
        """The TLS socket once the handshake is done, or None (closed) when it did not finish in time."""
        tls = None
        # A deadline drawn from the last quarter of the limit: connections opened together (an
        # attacker's batch) are not all closed, and so not all re-opened, at the same instant.
        with gevent.Timeout(self.limits.handshake_timeout * random.uniform(0.75, 1.0), False):
            try:
                # Nothing is set up for a connection until its ClientHello arrives: a silent one
                # costs a greenlet and a timer only.
                wait_read(client.fileno())
                tls = gunicorn_sock.ssl_context(self.cfg).wrap_socket(
                    client, server_side=True, do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
                )  # fmt: skip
                tls.do_handshake()
                return tls
            except Exception:  # a client that gave up, a protocol error, no usable certificate (see /readyz)
                _close(tls if tls is not None else client)
                return None
        metrics.CONNECTIONS_DROPPED.labels("handshake-timeout").inc()
        _close(tls if tls is not None else client)
        return None

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        """Read the whole body within ``body_timeout`` (or not at all), then run the application."""
        try:
            self._buffer_body(req, sock)
        except _BodyTimeout:
            metrics.CONNECTIONS_DROPPED.labels("body-timeout").inc()
            with contextlib.suppress(OSError):
                sock.sendall(_TIMEOUT_408)
            raise StopIteration() from None
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            # A busy keep-alive client's next request is often already in the socket buffer, so the
            # next read would not block and this greenlet would never yield: give the others a turn.
            gevent.sleep(0)

    def _buffer_body(self, req: Any, sock: Any) -> None:
        declared = _content_length(req)
        if declared is not None and declared > self.limits.max_body_bytes:
            req.must_close = True  # answered 413 from the header; never read (nor drain) the body
            return
        if req.body is None:
            return
        if getattr(req, "_expected_100_continue", False):
            # The client waits for this before it sends the body (curl does for large bodies);
            # gunicorn would send it only when the application starts, after this read.
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            req._expected_100_continue = False
        limit = self.limits.max_body_bytes + 1
        chunks: list[bytes] = []
        total = 0
        timer = gevent.Timeout(self.limits.body_timeout, _BodyTimeout)
        timer.start()
        try:
            while total < limit:
                chunk = req.body.read(min(_READ_CHUNK, limit - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        finally:
            timer.close()
        if total >= limit:
            req.must_close = True  # the rest stays unread: the application answers 413
        req.body = io.BytesIO(b"".join(chunks))

    def _refuse(self, client: Any, peer: str, reason: str) -> None:
        metrics.CONNECTIONS_DROPPED.labels(reason).inc()
        with contextlib.suppress(OSError):  # SO_LINGER 0: close with a reset, so the client learns at once
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        _close(client)
        self._refused_since_log += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= _REFUSAL_LOG_INTERVAL:
            log.warning(
                "refusing connections over the connection caps",
                extra={"fields": {"reason": reason, "peer": peer, "refused": self._refused_since_log,
                                  "open": self.open_connections, **self.limits.describe()}},
            )  # fmt: skip
            self._last_refusal_log = now
            self._refused_since_log = 0


def _content_length(req: Any) -> int | None:
    for name, value in req.headers:
        if name == "CONTENT-LENGTH":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _readable(sock: Any) -> bool:
    """Whether bytes of a next request wait in ``sock`` (decrypted in the TLS layer, or in the kernel)."""
    pending = getattr(sock, "pending", None)
    if pending is not None and pending() > 0:
        return True
    try:
        ready, _, _ = select.select([sock.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(ready)


def _shutdown(sock: Any) -> None:
    """Shut the connection down under whoever waits on it: their read ends (EOF) and they close it.

    Done on a duplicate of the descriptor: ``SSLSocket.shutdown`` would drop the TLS state that the
    waiting greenlet's read still uses.
    """
    with contextlib.suppress(OSError, ValueError):
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()


def _close(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _raise_fd_limit(wanted: int) -> None:
    """Every connection is a file descriptor: lift the soft limit towards the caps (never above the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
