"""``auditwarden serve`` as a user runs it: no options, bad configuration, several workers, policySources."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.conftest import REPO, Server, free_port, serve_command
from tests.support.reviews import GOOD_POLICY, WEAK_POLICY, apiserver_pod, policy_configmap, review


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_serve_with_no_options_answers_curl(tmp_path: Path) -> None:
    """The README's "run the main job": certificates appear in ./certs and curl trusts certs/ca.crt."""
    args: list[str] = []
    port = 8443
    if not port_free(port):  # someone else has 8443 here: the only option we then give is --bind
        port = free_port()
        args = ["--bind", f"127.0.0.1:{port}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("AUDITWARDEN_CONFIG", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([*serve_command(), *args], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        ca = tmp_path / "certs" / "ca.crt"
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            if ca.exists():
                cmd = [
                    "curl",
                    "-sS",
                    "--max-time",
                    "5",
                    "--cacert",
                    "certs/ca.crt",
                    f"https://127.0.0.1:{port}/healthz",
                ]
                if shutil.which("curl"):
                    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
                    answer = done.stdout if done.returncode == 0 else None
                else:  # pragma: no cover - curl is in every CI image we use
                    try:
                        answer = requests.get(cmd[-1], verify=str(ca), timeout=5).text
                    except requests.RequestException:
                        answer = None
                if answer:
                    break
            time.sleep(0.2)
        assert answer is not None, (tmp_path / "serve.log").read_text()[-2000:]
        assert json.loads(answer) == {"status": "ok"}
        out = (tmp_path / "serve.log").read_text()
        assert f"CA certificate:  {ca}" in out and "caBundle: LS0t" in out
        assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        log.close()
    assert proc.returncode == 0


def test_invalid_configuration_refuses_to_start(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("mode: enforce\ntargets:\n  mirrorPods:\n    mode: audit\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([*serve_command(), "--config", str(cfg), "--bind", f"127.0.0.1:{free_port()}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "invalid configuration" in done.stderr
    assert "targets.mirrorPods.mode: 'audit' is not one of \"\", enforce, ratchet, warn" in done.stderr
    assert not (tmp_path / "certs").exists()  # refused before anything else happened


def test_several_workers_share_their_metrics(start_server: Any) -> None:
    server: Server = start_server({}, args=["--workers", "2", "--threads", "2"])
    assert len(server.wait_for_workers(2)) == 2
    n = 40
    for i in range(n):
        # New connections each time, so both workers get some of them.
        r = requests.post(server.base + "/validate", data=json.dumps(review(policy_configmap(name=f"p{i}"))),
                          headers={"Content-Type": "application/json"}, verify=server.ca, timeout=10)  # fmt: skip
        assert r.status_code == 200
    for _ in range(4):  # whichever worker answers the scrape, it reports every worker's counts
        text = requests.get(server.base + "/metrics", verify=server.ca, timeout=10).text
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("auditwarden_admission_requests_total{") and 'verdict="allow"' in line
        )
        assert total == n
        assert text.count("auditwarden_policy_categories_covered{") == n


class FakeApiserver:
    """Serves GET /api/v1/namespaces/<ns>/configmaps/<name> over plain HTTP (for a kubeconfig)."""

    def __init__(self, configmaps: dict[tuple[str, str], dict[str, str]]) -> None:
        self.configmaps = configmaps
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "configmaps":
                    data = outer.configmaps.get((parts[3], parts[5]))
                    if data is not None:
                        payload = {"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": parts[5], "namespace": parts[3]}, "data": data}  # fmt: skip
                        self.reply(200, payload)
                        return
                self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                 "code": 404, "message": "configmaps not found"})  # fmt: skip

            def reply(self, code: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "fake", "user": {"token": "not-a-real-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))  # fmt: skip
        return path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_api() -> Iterator[FakeApiserver]:
    api = FakeApiserver({("kube-system", "audit-policy"): {"README": "policy below", "policy.yaml": WEAK_POLICY}})
    yield api
    api.close()


def test_policy_sources_through_the_kubernetes_client(start_server: Any, fake_api: FakeApiserver,
                                                       tmp_path: Path) -> None:  # fmt: skip
    config = {"policySources": {"/etc/kubernetes/audit-policy.yaml": "kube-system/audit-policy"},
              "policySourceTTLSeconds": 300}  # fmt: skip
    env = {"KUBECONFIG": str(fake_api.kubeconfig(tmp_path / "kubeconfig")), "KUBERNETES_SERVICE_HOST": ""}
    server: Server = start_server(config, env=env)
    # Unrelated requests never reach the API.
    assert server.answer(review(policy_configmap()))["allowed"] is True
    assert fake_api.requests == []
    # A dry run reads the ConfigMap but leaves nothing cached.
    dry = server.answer(review(apiserver_pod(), dry_run=True))
    assert dry["allowed"] is False and "categories-below-minimum" in dry["auditAnnotations"]["violations"]
    assert "read from ConfigMap kube-system/audit-policy" in dry["status"]["message"]
    assert len(fake_api.requests) == 1
    server.answer(review(apiserver_pod(), dry_run=True))
    assert len(fake_api.requests) == 2
    # A real request caches it for the TTL.
    real = server.answer(review(apiserver_pod()))
    assert real["status"] == dry["status"]
    server.answer(review(apiserver_pod(name="kube-apiserver-cp-2")))
    assert len(fake_api.requests) == 3
    assert fake_api.requests[0].startswith("/api/v1/namespaces/kube-system/configmaps/audit-policy")


def test_policy_sources_failure_is_a_warning(start_server: Any, tmp_path: Path) -> None:
    api = FakeApiserver({})
    try:
        config = {"policySources": {"/etc/kubernetes/audit-policy.yaml": "kube-system/missing"}}
        env = {"KUBECONFIG": str(api.kubeconfig(tmp_path / "kubeconfig")), "KUBERNETES_SERVICE_HOST": ""}
        server: Server = start_server(config, env=env)
        resp = server.answer(review(apiserver_pod()))
        assert resp["allowed"] is True
        assert any(w.startswith("policySources: reading ConfigMap kube-system/missing: HTTP 404") for w in
                   resp["warnings"]), resp["warnings"]  # fmt: skip
    finally:
        api.close()
    # The API going away entirely: still an answer, within the short timeout.
    dead = FakeApiserver({})
    dead_port = dead.port
    dead.close()
    cfg = tmp_path / "dead-kubeconfig"
    cfg.write_text((tmp_path / "kubeconfig").read_text().replace(str(api.port), str(dead_port)))
    server2: Server = start_server({"policySources": {"/etc/kubernetes/audit-policy.yaml": "kube-system/x"},
                                    "denyOnPolicySourceError": True},
                                   env={"KUBECONFIG": str(cfg), "KUBERNETES_SERVICE_HOST": ""})  # fmt: skip
    started = time.monotonic()
    resp = server2.answer(review(apiserver_pod()))
    assert time.monotonic() - started < 5
    assert resp["allowed"] is False and "denyOnPolicySourceError" in resp["status"]["message"]
    good = server2.answer(review(policy_configmap(GOOD_POLICY)))
    assert good["allowed"] is True


def test_policy_sources_with_an_api_that_never_answers(start_server: Any, tmp_path: Path) -> None:
    """A black hole (accepts, never replies): the answer still comes within the 2 s lookup timeout."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    try:
        api = FakeApiserver({})
        cfg = api.kubeconfig(tmp_path / "kubeconfig")
        api.close()
        cfg.write_text(cfg.read_text().replace(str(api.port), str(hole.getsockname()[1])))
        server: Server = start_server({"policySources": {"/etc/kubernetes/audit-policy.yaml": "kube-system/x"}},
                                      env={"KUBECONFIG": str(cfg), "KUBERNETES_SERVICE_HOST": ""})  # fmt: skip
        started = time.monotonic()
        resp = server.answer(review(apiserver_pod()))
        elapsed = time.monotonic() - started
        assert resp["allowed"] is True
        assert ("policySources: reading ConfigMap kube-system/x: no answer within 2 s; the audit policy file's content "
                "was not judged") in resp["warnings"], resp["warnings"]  # fmt: skip
        assert elapsed < 4.0, elapsed  # 2 s lookup (+ the first import of the kubernetes client)
        started = time.monotonic()
        server.answer(review(apiserver_pod(name="kube-apiserver-cp-2")))
        assert time.monotonic() - started < 1.0  # the failure is remembered for a few seconds
    finally:
        hole.close()
