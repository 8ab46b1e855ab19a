"""The webhook beside the test apiserver: ``auditwarden serve`` on loopback + the chart in url mode.

Pods cannot run in the test cluster (no kubelet), so the webhook runs the way the chart's
out-of-cluster mode expects it to: a process on the control-plane host, here
``python -m webhook serve --bind 127.0.0.1:<free port>`` with a CA and serving certificate from
:func:`webhook.certs.generate` (SAN 127.0.0.1), and ``helm install`` of charts/auditwarden with
``webhook.url=https://127.0.0.1:<port>/validate`` and ``tls.caBundle`` = that CA.  The
apiserver then calls it for real: TLS verified against the caBundle, failurePolicy,
matchConditions, dry-run.

:func:`deployed_webhook` is the context manager the test modules build their module-scoped
fixture from; it always uninstalls the release and kills the server, even when a test failed.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.apiserver_instance import _own_group_and_die_with_parent, kill_group
from tests.e2e.cluster import Cluster, free_port, tail
from tests.e2e.conftest import require_tools
from tests.support.tools import REPO
from webhook.certs import generate

CHART = REPO / "charts" / "auditwarden"
WEBHOOK_CONFIGMAPS = "configmaps.auditwarden.io"
WEBHOOK_MIRROR_PODS = "mirrorpods.auditwarden.io"
AUDIT_POLICY_LABEL = {"auditwarden.io/kind": "audit-policy"}


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ------------------------------------------------------------------------------ the server


class WebhookServer:
    """``auditwarden serve`` on 127.0.0.1:<port>, restartable with another configuration."""

    def __init__(self, workdir: Path, config: Mapping[str, Any] | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.cert_dir = workdir / "certs"
        self.certs = generate(self.cert_dir, sans=["127.0.0.1"], days=2, ca_days=3)
        self.config: dict[str, Any] = dict(config or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self._runs = 0

    # ------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/validate"

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        return self.certs.ca.read_bytes()

    @property
    def ca_bundle(self) -> str:
        """Base64 of the CA PEM, as the chart's ``tls.caBundle`` wants it."""
        return base64.b64encode(self.ca_pem).decode()

    @property
    def log_path(self) -> Path:
        return self.workdir / f"serve-{max(self._runs, 1)}.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ------------------------------------------------------------ lifecycle

    def start(self, config: Mapping[str, Any] | None = None, *, timeout: float = 45.0) -> None:
        if self.running:
            raise RuntimeError("auditwarden serve is already running")
        if config is not None:
            self.config = dict(config)
        self._runs += 1
        cfg = self.workdir / f"config-{self._runs}.yaml"
        cfg.write_text(yaml.safe_dump(self.config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITWARDEN_")}
        env.update(
            {"AUDITWARDEN_TLS_RELOAD_SECONDS": "1", "AUDITWARDEN_TLS_CHECK_SECONDS": "1", "PYTHONUNBUFFERED": "1"}
        )
        env.pop("KUBECONFIG", None)  # serving never depends on the apiserver
        argv = [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--tls-cert",
            str(self.certs.cert),
            "--tls-key",
            str(self.certs.key),
            "--config",
            str(cfg),
        ]
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                preexec_fn=_own_group_and_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"auditwarden serve exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            try:
                status, body = self.get("/readyz", timeout=2)
                if status == 200:
                    return
                last = f"HTTP {status}: {body[:300]!r}"
            except (OSError, ssl.SSLError) as e:
                last = repr(e)
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"auditwarden serve not ready after {timeout:.0f}s ({last}):\n{tail(self.log_path)}")

    def stop(self) -> None:
        kill_group(self.proc, grace=15)
        self.proc = None

    def restart(self, config: Mapping[str, Any] | None = None) -> None:
        self.stop()
        self.start(config)

    # ------------------------------------------------------------ certificates

    def rotate(self, workdir_name: str) -> Path:
        """Make a brand-new CA and serving certificate; return the new CA's path (not yet served).

        :meth:`serve_new_certificate` later swaps them in, the way a Secret update reaches a pod.
        """
        new = generate(self.workdir / workdir_name, sans=["127.0.0.1"], days=2, ca_days=3, reuse_ca=False)
        return new.ca

    def serve_new_certificate(self, workdir_name: str) -> None:
        """Replace the files ``serve`` reads (key first, then certificate; each an atomic rename)."""
        src = self.workdir / workdir_name
        for name, dest in (("tls.key", self.certs.key), ("tls.crt", self.certs.cert)):
            tmp = dest.with_suffix(".tmp")
            shutil.copyfile(src / name, tmp)
            os.replace(tmp, dest)
        shutil.copyfile(src / "ca.crt", self.certs.ca)
        shutil.copyfile(src / "ca.key", self.certs.ca_key)

    def served_certificate_sha256(self) -> str:
        """Fingerprint of the certificate the server presents to a new connection."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw, ctx.wrap_socket(raw) as s:
            der = s.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()

    # ------------------------------------------------------------ HTTP

    def get(self, path: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        try:
            with urllib.request.urlopen(self.base_url + path, context=ctx, timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        status, body = self.get("/metrics")
        assert status == 200, body[:500]
        out = []
        line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
        label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            m = line_re.match(line)
            if m:
                labels = dict(label_re.findall(m.group(2) or ""))
                out.append((m.group(1), labels, float(m.group(3))))
        return out

    def requests_total(self, **labels: str) -> float:
        """Sum of ``auditwarden_admission_requests_total`` over the series matching ``labels``."""
        return sum(
            v
            for name, lab, v in self.metrics()
            if name == "auditwarden_admission_requests_total" and all(lab.get(k) == x for k, x in labels.items())
        )


# ------------------------------------------------------------------------------ helm


class HelmRelease:
    """The real ``helm`` CLI against the test cluster, for one release."""

    def __init__(self, cluster: Cluster, name: str, namespace: str, workdir: Path) -> None:
        self.cluster = cluster
        self.name = name
        self.namespace = namespace
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.helm = require_tools("helm")["helm"]
        self._values_n = 0
        self.installed = False
        #: how long the last ``helm install`` took (with ``--wait``: until the release is ready)
        self.install_seconds = 0.0

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",) and not k.startswith("HELM_")}
        home = self.workdir / "home"
        env.update(
            {
                "HOME": str(home),
                "HELM_CACHE_HOME": str(home / "cache"),
                "HELM_CONFIG_HOME": str(home / "config"),
                "HELM_DATA_HOME": str(home / "data"),
            }
        )
        cmd = [str(self.helm), *args, "--kubeconfig", str(self.cluster.kubeconfig("admin"))]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout[-2000:]}")
        return proc

    def _values_file(self, values: Mapping[str, Any]) -> Path:
        self._values_n += 1
        path = self.workdir / f"values-{self._values_n}.yaml"
        path.write_text(yaml.safe_dump(dict(values)))
        return path

    def install(self, values: Mapping[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        out = self.run(
            "install",
            self.name,
            str(CHART),
            "--namespace",
            self.namespace,
            "--create-namespace",
            "--values",
            str(self._values_file(values)),
            *extra,
        )
        self.install_seconds = round(time.monotonic() - started, 1)
        self.installed = True
        return out

    @contextlib.contextmanager
    def installed_release(self, values: Mapping[str, Any], *extra: str) -> Iterator[HelmRelease]:
        """Installed for the ``with`` block; then uninstalled, and its ValidatingWebhookConfiguration deleted if it
        outlived the release: a fail-closed webhook without endpoints must never be left behind."""
        vwc = ""
        try:
            self.install(values, *extra)
            vwc = self.webhook_configuration_name()
            yield self
        finally:
            if self.installed:
                self.uninstall()
            if vwc:
                self.cluster.kubectl("delete", "validatingwebhookconfiguration", vwc, "--ignore-not-found")

    def upgrade(self, values: Mapping[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "upgrade",
            self.name,
            str(CHART),
            "--namespace",
            self.namespace,
            "--values",
            str(self._values_file(values)),
            *extra,
        )

    def uninstall(self) -> subprocess.CompletedProcess[str]:
        out = self.run("uninstall", self.name, "--namespace", self.namespace, "--wait", "--timeout", "60s", check=False)
        self.installed = False
        return out

    def manifest(self) -> list[dict[str, Any]]:
        text = self.run("get", "manifest", self.name, "--namespace", self.namespace).stdout
        return [d for d in yaml.safe_load_all(text) if d]

    def webhook_configuration_name(self) -> str:
        docs = [d for d in self.manifest() if d["kind"] == "ValidatingWebhookConfiguration"]
        assert len(docs) == 1, docs
        return str(docs[0]["metadata"]["name"])


# ------------------------------------------------------------------------------ kubectl helpers


def kubectl_apply(
    cluster: Cluster, obj: Mapping[str, Any], *args: str, user: str = "admin", verb: str = "apply"
) -> subprocess.CompletedProcess[str]:
    """``kubectl <verb> -f -`` of one object (``verb`` apply, create or replace)."""
    return cluster.kubectl(verb, "-f", "-", *args, user=user, input=json.dumps(obj))


def denial_message(stderr: str) -> str:
    """The webhook's own message out of kubectl's error line."""
    m = re.search(r"denied the request: (.*)", stderr, re.S)
    assert m, f"not an admission webhook denial:\n{stderr}"
    return m.group(1).strip()


def warnings_of(stderr: str) -> list[str]:
    return [line[len("Warning: ") :] for line in stderr.splitlines() if line.startswith("Warning: ")]


def configmap(
    name: str, namespace: str, data: Mapping[str, str], *, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def policy_configmap(name: str, namespace: str, policy: str, **labels: str) -> dict[str, Any]:
    return configmap(name, namespace, {"policy.yaml": policy}, labels={**AUDIT_POLICY_LABEL, **labels})


def exists(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> bool:
    args = ["get", kind, name, "-o", "name"]
    if namespace:
        args += ["-n", namespace]
    out = cluster.kubectl(*args)
    if out.returncode == 0:
        return True
    assert "NotFound" in out.stderr or "not found" in out.stderr, out.stderr
    return False


def ensure_namespace(cluster: Cluster, name: str) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    out = kubectl_apply(cluster, ns)
    assert out.returncode == 0, out.stderr


def wait_until_enforced(cluster: Cluster, namespace: str, probe_policy: str, timeout: float = 30.0) -> None:
    """Until the apiserver's webhook informer has the configuration: a bad policy is refused (dry run)."""
    obj = policy_configmap("auditwarden-e2e-readiness-probe", namespace, probe_policy)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        out = kubectl_apply(cluster, obj, "--dry-run=server", verb="create")
        if out.returncode != 0 and "denied the request" in out.stderr:
            return
        last = out.stderr or out.stdout
        time.sleep(0.3)
    raise AssertionError(f"the webhook never started refusing a bad policy after {timeout:.0f}s: {last}")


# ------------------------------------------------------------------------------ the fixture


@dataclass
class Deployment:
    cluster: Cluster
    server: WebhookServer
    helm: HelmRelease
    values: dict[str, Any]
    namespace: str  # a namespace of the test module's own (not the release namespace: that is exempt)
    #: (kind, name, namespace) deleted after the release is gone (the webhook would judge the DELETE)
    cleanup: list[tuple[str, str, str]] = field(default_factory=list)

    def chart_values(self, **overrides: Any) -> dict[str, Any]:
        return deep_merge(self.values, overrides)

    def switch_mode(self, config: Mapping[str, Any]) -> None:
        """Restart ``serve`` with another configuration (same port and certificate)."""
        self.server.restart(config)


def url_values(server: WebhookServer, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    base = {"webhook": {"url": server.url}, "tls": {"caBundle": server.ca_bundle}}
    return deep_merge(base, extra or {})



#: ``deploy_webhook(name, config)`` (the factory fixture of tests/e2e/conftest.py).
DeployWebhook = Callable[[str, Mapping[str, Any]], "Deployment"]

@contextlib.contextmanager
def deployed_webhook(
    cluster: Cluster,
    workdir: Path,
    *,
    release: str,
    namespace: str,
    config: Mapping[str, Any],
    probe_policy: str,
    values: Mapping[str, Any] | None = None,
) -> Iterator[Deployment]:
    """Start ``auditwarden serve``, ``helm install`` the chart in url mode, wait until enforced.

    Teardown (always): ``helm uninstall``, delete the webhook configuration should uninstall
    have failed, stop the server, delete the test namespace.
    """
    server = WebhookServer(workdir / "server", config)
    helm = HelmRelease(cluster, release, f"{release}-system", workdir / "helm")
    deployment: Deployment | None = None
    vwc = ""
    try:
        server.start()
        chart_values = url_values(server, values)
        helm.install(chart_values)
        vwc = helm.webhook_configuration_name()
        ensure_namespace(cluster, namespace)
        wait_until_enforced(cluster, namespace, probe_policy)
        deployment = Deployment(cluster, server, helm, chart_values, namespace)
        yield deployment
    finally:
        try:
            if helm.installed:
                helm.uninstall()
            if vwc:
                cluster.kubectl("delete", "validatingwebhookconfiguration", vwc, "--ignore-not-found")
        finally:
            server.stop()
            # Namespaces are left alone: without kube-controller-manager a deleted namespace stays
            # Terminating forever. Objects in shared namespaces (kube-system) are removed.
            for kind, name, ns in deployment.cleanup if deployment else ():
                extra = ["--grace-period=0", "--force"] if kind == "pod" else []
                cluster.kubectl("delete", kind, name, "-n", ns, "--ignore-not-found", *extra)


def unique(prefix: str) -> str:
    """A fresh object name, so the e2e modules never collide with each other or a rerun."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
