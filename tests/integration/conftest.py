"""The real server for the integration tests: ``auditwarden serve`` (gunicorn, TLS) on a loopback port.

Every test collected under tests/integration/ is marked ``integration``.  Certificates come
from :mod:`webhook.certs` (a throw-away CA per server); clients verify them with ``requests``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.reviews import body

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command() -> list[str]:
    exe = shutil.which("auditwarden")
    if exe and Path(exe).resolve().parent == Path(sys.executable).resolve().parent:
        return [exe, "serve"]
    return [sys.executable, "-m", "webhook", "serve"]


class Server:
    """One ``auditwarden serve`` process with its own CA, certificate, config and log."""

    def __init__(
        self,
        workdir: Path,
        config: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        from webhook.certs import generate

        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.certs = generate(workdir / "tls", sans=["localhost", "127.0.0.1"])
        self.ca = str(self.certs.ca)
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(dict(config or {})))
        self.log_path = workdir / "server.log"
        cmd = [
            *serve_command(),
            "--bind", f"127.0.0.1:{self.port}",
            "--tls-cert", str(self.certs.cert),
            "--tls-key", str(self.certs.key),
            "--config", str(self.config_path),
            *(args or []),
        ]  # fmt: skip
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        full_env.pop("AUDITWARDEN_CONFIG", None)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        self.session = requests.Session()
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if requests.get(self.base + "/readyz", verify=self.ca, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def post(self, doc: Mapping[str, Any] | bytes, path: str = "/validate", **kw: Any) -> requests.Response:
        data = doc if isinstance(doc, bytes) else body(dict(doc))
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        # verify= on every call: REQUESTS_CA_BUNDLE in the environment would override session.verify.
        return self.session.post(self.base + path, data=data, headers=headers, timeout=kw.pop("timeout", 30),
                                 verify=self.ca, **kw)  # fmt: skip

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=kw.pop("timeout", 30), verify=self.ca, **kw)

    def answer(self, doc: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        r = self.post(doc, **kw)
        assert r.status_code == 200, (r.status_code, r.text)
        review = r.json()
        assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
        resp: dict[str, Any] = review["response"]
        assert resp["uid"] == doc["request"]["uid"]
        assert "patch" not in resp and "patchType" not in resp
        return resp

    def metrics(self) -> str:
        return self.get("/metrics").text

    def workers(self) -> list[int]:
        """PIDs of the gunicorn workers (children of the master that run the app)."""
        out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        return sorted(int(line.split()[0]) for line in out.stdout.splitlines()
                      if line.strip() and "forkserver" not in line)  # fmt: skip

    def wait_for_workers(self, n: int, timeout: float = 30.0) -> list[int]:
        """The worker PIDs once ``n`` are running: /healthz answers as soon as the first one has booted."""
        deadline = time.monotonic() + timeout
        while len(found := self.workers()) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.session.close()
        self._log.close()


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    servers: list[Server] = []

    def start(config: Mapping[str, Any] | None = None, **kw: Any) -> Server:
        server = Server(tmp_path_factory.mktemp("server"), config, **kw)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


ENFORCE_CONFIG = {
    "mode": "enforce",
    "exemptions": {"users": ["breakglass"], "groups": ["system:breakglass"]},
}


@pytest.fixture(scope="module")
def enforce(start_server: Any) -> Server:
    server: Server = start_server(ENFORCE_CONFIG)
    return server


def read_reply(tls: ssl.SSLSocket) -> bytes:
    """Read a raw HTTP answer whose body is JSON: until the head is complete and the body closes
    its object, or the server closes the connection."""
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        chunk = tls.recv(65536)
        if not chunk:
            break
        reply += chunk
    return reply
