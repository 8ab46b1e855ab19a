"""A continuous admission prober: server-side dry-run creates of policy ConfigMaps, one at a time.

It runs in a thread beside a disruption (rolling upgrade, pod deletion, eviction, certificate
rotation) and records every answer the apiserver gave.  Each request alternates a policy the
webhook admits (201) and one it refuses (403, "denied the request"); anything else is a failure
with its status and message, above all ``failed calling webhook`` (the apiserver could not reach
a serving pod).  Requests are dry runs (``dryRun=All``): nothing is stored.  The loop is bounded in
count and time and stops by itself.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.e2e import policies as P
from tests.e2e.cluster import Cluster
from tests.e2e.webhook_server import policy_configmap


@dataclass
class Answer:
    name: str
    expect_allowed: bool
    status: int
    message: str
    seconds: float


@dataclass
class Prober:
    cluster: Cluster
    namespace: str
    interval: float = 0.05
    max_requests: int = 20000
    max_seconds: float = 900.0
    prefix: str = "probe"
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _conn: http.client.HTTPSConnection | None = None

    # ------------------------------------------------------------------ results

    @property
    def sent(self) -> int:
        return len(self.answers)

    def failures(self) -> list[Answer]:
        """Answers other than the verdict the webhook gives that policy (201 admitted, 403 refused)."""
        return [a for a in self.answers if a.status != (201 if a.expect_allowed else 403)]

    def summary(self) -> str:
        f = self.failures()
        head = f"{self.sent} requests, {len(f)} failed"
        return head + "".join(f"\n  {a.name}: HTTP {a.status} {a.message[:300]}" for a in f[:10])

    # ------------------------------------------------------------------ control

    def start(self) -> Prober:
        self._thread = threading.Thread(target=self._loop, name="admission-prober", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Prober:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._conn is not None:
            self._conn.close()
        return self

    def __enter__(self) -> Prober:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def probe_once(self, allowed: bool) -> Answer:
        """One request now (also used outside the loop)."""
        n = self.sent
        name = f"{self.prefix}-{n:05d}-{'good' if allowed else 'weak'}"
        body = policy_configmap(name, self.namespace, P.COVERS_ALL if allowed else P.COVERS_2)
        t0 = time.monotonic()
        status, message = self._post(body)
        answer = Answer(name, allowed, status, message, time.monotonic() - t0)
        self.answers.append(answer)
        return answer

    # ------------------------------------------------------------------ internals

    def _loop(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and self.sent < self.max_requests and time.monotonic() < deadline:
            self.probe_once(allowed=self.sent % 2 == 0)
            self._stop.wait(self.interval)

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            c = self.cluster
            ctx = ssl.create_default_context(cafile=str(c.ca_cert_path))
            cert, key = c.client_cert("admin")
            ctx.load_cert_chain(str(cert), str(key))
            self._conn = http.client.HTTPSConnection("127.0.0.1", c.secure_port, context=ctx, timeout=40)
        return self._conn

    def _post(self, body: dict[str, Any]) -> tuple[int, str]:
        path = f"/api/v1/namespaces/{self.namespace}/configmaps?dryRun=All"
        data = json.dumps(body).encode()
        for attempt in range(2):  # a keep-alive connection the server closed: reconnect once
            conn = self._connection()
            try:
                conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                self._conn = None
                if attempt == 1:
                    return 0, f"client error: {e!r}"
                continue
            try:
                message = str(json.loads(raw).get("message", ""))
            except ValueError:
                message = raw[:300].decode(errors="replace")
            return resp.status, message
        raise AssertionError("unreachable")
