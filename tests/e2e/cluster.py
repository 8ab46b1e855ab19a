"""A throw-away kube-apiserver + etcd test cluster on loopback.

Everything lives in one temp dir: a CA, the apiserver serving cert, a service-account signing
key, client certificates and one kubeconfig per user, the etcd data dir, an audit policy that
logs every request at Metadata level, the apiserver's audit log and the process logs.

Users (client-certificate authentication, CN = user, O = groups):

=============  ==================================  =========================================
user           identity                            authority
=============  ==================================  =========================================
``admin``      admin / system:masters               everything
``node``       system:node:cp-1 / system:nodes      Node authorizer + NodeRestriction
``breakglass`` breakglass / auditwarden:break-glass cluster-admin via ClusterRoleBinding
``jane``       jane (no groups)                     only what system:authenticated may do
=============  ==================================  =========================================

The binaries (``kube-apiserver``, ``etcd-runner``) are built by ``tests/e2e/build.sh`` and
found through :mod:`tests.support.tools`; kubectl is looked up the same way (tools dir, PATH,
``/usr/bin/kubectl``).

Typical use::

    with Cluster() as c:
        c.kubectl("get", "ns").stdout
        c.restart(["--enable-admission-plugins=NodeRestriction,AlwaysPullImages"])
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.tools import tool
from webhook import certs

NODE_NAME = "cp-1"
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
BREAK_GLASS_GROUP = "auditwarden:break-glass"
BREAK_GLASS_BINDING = "auditwarden:break-glass-cluster-admin"

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
# the test cluster's own audit policy: every request, Metadata level, every stage
rules:
  - level: Metadata
"""


@dataclass(frozen=True)
class UserSpec:
    name: str  # kubeconfig / file name
    common_name: str  # the Kubernetes user name (cert CN)
    groups: tuple[str, ...]  # cert O


USERS: dict[str, UserSpec] = {
    "admin": UserSpec("admin", "admin", ("system:masters",)),
    "node": UserSpec("node", f"system:node:{NODE_NAME}", ("system:nodes",)),
    "breakglass": UserSpec("breakglass", "breakglass", (BREAK_GLASS_GROUP,)),
    "jane": UserSpec("jane", "jane", ()),
}


class ClusterError(RuntimeError):
    """The cluster could not be started (or a helper failed); the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubectl_path() -> Path:
    found = tool("kubectl")
    if found is not None:
        return found
    if Path("/usr/bin/kubectl").is_file():
        return Path("/usr/bin/kubectl")
    raise ClusterError("kubectl not found (tools dir, PATH, /usr/bin/kubectl)")


def flag_key(flag: str) -> str:
    """``--foo=bar`` -> ``--foo``; ``--foo`` -> ``--foo``."""
    return flag.split("=", 1)[0]


def merge_flags(base: Sequence[str], extra: Sequence[str], drop: Sequence[str] = ()) -> list[str]:
    """``base`` with every flag whose key is in ``extra`` or ``drop`` removed, then ``extra``.

    Flags must be in ``--key=value`` (or bare ``--key``) form.
    """
    for f in (*extra, *drop):
        if not f.startswith("--"):
            raise ValueError(f"flags must look like --key=value, got {f!r}")
    gone = {flag_key(f) for f in extra} | {flag_key(f) for f in drop}
    return [f for f in base if flag_key(f) not in gone] + list(extra)


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGKILL the child when the process that started it dies (PR_SET_PDEATHSIG)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# --------------------------------------------------------------------------- PKI


# --------------------------------------------------------------------------- the cluster


class Cluster:
    """One etcd + one kube-apiserver on 127.0.0.1, with certificates, users and kubeconfigs.

    ``extra_flags`` are appended to the default kube-apiserver flags; a flag whose key
    (``--key``) is also a default replaces that default. ``drop_flags`` removes defaults by key.
    """

    def __init__(
        self,
        extra_flags: Sequence[str] = (),
        *,
        drop_flags: Sequence[str] = (),
        tmpdir: Path | None = None,
        keep_tmpdir: bool | None = None,
        ready_timeout: float = 120.0,
        apiserver_bin: Path | None = None,
        etcd_bin: Path | None = None,
        exec_prefix: Sequence[str] = (),
    ) -> None:
        self._extra = list(extra_flags)
        # argv prefix of every process the cluster starts, e.g. ``nsenter --net=...`` to run
        # etcd and kube-apiserver in the network namespace of a test node
        self.exec_prefix = list(exec_prefix)
        self._drop = list(drop_flags)
        self._own_tmpdir = tmpdir is None
        self._tmpdir = Path(tempfile.mkdtemp(prefix="auditwarden-e2e-")) if tmpdir is None else tmpdir
        self._tmpdir.mkdir(parents=True, exist_ok=True)
        if keep_tmpdir is None:
            keep_tmpdir = os.environ.get("AUDITWARDEN_KEEP_CLUSTER") == "1"
        self.keep_tmpdir = keep_tmpdir
        self.ready_timeout = ready_timeout
        self._apiserver_bin = apiserver_bin or tool("kube-apiserver")
        self._etcd_bin = etcd_bin or tool("etcd-runner")
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._apiserver_runs = 0
        self._started = False
        self.secure_port = 0
        self.etcd_client_port = 0
        self.etcd_peer_port = 0
        self._kubectl: Path | None = None

    # ----------------------------------------------------------------- paths & properties

    @property
    def tmpdir(self) -> Path:
        return self._tmpdir

    @property
    def pki_dir(self) -> Path:
        return self._tmpdir / "pki"

    @property
    def ca_cert_path(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def server_url(self) -> str:
        if not self.secure_port:
            raise ClusterError("cluster not started")
        return f"https://127.0.0.1:{self.secure_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    @property
    def audit_policy_path(self) -> Path:
        return self._tmpdir / "audit-policy.yaml"

    @property
    def audit_log_path(self) -> Path:
        return self._tmpdir / "audit" / "audit.log"

    @property
    def apiserver_log_path(self) -> Path:
        """stderr+stdout of the current (latest) kube-apiserver run."""
        return self._tmpdir / "logs" / f"kube-apiserver-{max(self._apiserver_runs, 1)}.log"

    @property
    def etcd_log_path(self) -> Path:
        return self._tmpdir / "logs" / "etcd.log"

    @property
    def users(self) -> list[str]:
        return list(USERS)

    @property
    def apiserver_flags(self) -> list[str]:
        """The kube-apiserver flags of the current run (defaults merged with extras/drops)."""
        return merge_flags(self.default_flags(), self._extra, self._drop)

    @property
    def apiserver_pid(self) -> int | None:
        return self._apiserver.pid if self._apiserver is not None else None

    def kubeconfig(self, user: str = "admin") -> Path:
        self._check_user(user)
        return self._tmpdir / "kubeconfig" / f"{user}.kubeconfig"

    def client_cert(self, user: str = "admin") -> tuple[Path, Path]:
        """(certificate, key) PEM paths for ``user``, e.g. for ``requests``' ``cert=``."""
        self._check_user(user)
        return self.pki_dir / f"{user}.crt", self.pki_dir / f"{user}.key"

    def _check_user(self, user: str) -> None:
        if user not in USERS:
            raise KeyError(f"unknown user {user!r}; known: {', '.join(USERS)}")

    # ----------------------------------------------------------------- flags

    def default_flags(self) -> list[str]:
        pki = self.pki_dir
        return [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.secure_port}",
            f"--cert-dir={pki}",
            f"--etcd-servers={self.etcd_url}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={self.ca_cert_path}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--audit-policy-file={self.audit_policy_path}",
            f"--audit-log-path={self.audit_log_path}",
            "--audit-log-format=json",
            "--allow-privileged=true",
            # no kubelet/controller-manager here: nothing would serve the kubernetes Service
            # endpoints, and 127.0.0.1 is not a valid endpoint address anyway
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Cluster:
        if self._started:
            raise ClusterError("cluster already started")
        missing = [
            n for n, p in (("kube-apiserver", self._apiserver_bin), ("etcd-runner", self._etcd_bin)) if p is None
        ]
        if missing:
            raise ClusterError(f"missing binaries: {', '.join(missing)}; run tests/e2e/build.sh")
        self._kubectl = kubectl_path()
        self._started = True
        try:
            for d in ("pki", "kubeconfig", "logs", "audit", "etcd"):
                (self._tmpdir / d).mkdir(mode=0o700, parents=True, exist_ok=True)
            self.secure_port = free_port()
            self.etcd_client_port = free_port()
            self.etcd_peer_port = free_port()
            self._write_pki()
            self.audit_policy_path.write_text(AUDIT_POLICY)
            self._write_kubeconfigs()
            self._start_etcd()
            self._start_apiserver()
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop kube-apiserver then etcd (SIGTERM, then SIGKILL); remove the temp dir unless kept."""
        self._terminate(self._apiserver, grace=20)
        self._apiserver = None
        self._terminate(self._etcd, grace=10)
        self._etcd = None
        self._started = False
        if self._own_tmpdir and not self.keep_tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def restart(self, extra_flags: Sequence[str] = (), *, drop_flags: Sequence[str] = ()) -> None:
        """Restart only kube-apiserver (same etcd, certs, port, audit log) with new extra flags.

        ``extra_flags``/``drop_flags`` replace those given before (they are relative to the
        defaults, not cumulative).
        """
        if not self._started or self._etcd is None:
            raise ClusterError("cluster not started")
        self._terminate(self._apiserver, grace=20)
        self._apiserver = None
        self._extra = list(extra_flags)
        self._drop = list(drop_flags)
        self._start_apiserver()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- helpers for tests

    def kubectl(
        self,
        *args: str,
        user: str = "admin",
        input: str | None = None,
        check: bool = False,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster as ``user``; stdout/stderr captured as text."""
        exe = self._kubectl or kubectl_path()
        cmd = [str(exe), f"--kubeconfig={self.kubeconfig(user)}", *args]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["HOME"] = str(self._tmpdir)  # kubectl's discovery cache stays inside the cluster dir
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def ssl_context(self, user: str | None = "admin") -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert_path))
        if user is not None:
            cert, key = self.client_cert(user)
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def request(
        self,
        path: str,
        *,
        user: str | None = "admin",
        method: str = "GET",
        body: Any = None,
        timeout: float = 10.0,
    ) -> tuple[int, bytes]:
        """A raw HTTPS request to the apiserver as ``user`` (None = anonymous): (status, body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(user), timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def get_json(self, path: str, *, user: str | None = "admin") -> Any:
        status, body = self.request(path, user=user)
        if status != 200:
            raise ClusterError(f"GET {path} as {user}: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def audit_log_offset(self) -> int:
        """Current size of the audit log; pass to :meth:`audit_events` to see only newer events."""
        try:
            return self.audit_log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def audit_events(self, since: int = 0) -> list[dict[str, Any]]:
        """Audit events (JSON lines) the apiserver wrote after byte offset ``since``."""
        try:
            with self.audit_log_path.open("rb") as f:
                f.seek(since)
                data = f.read()
        except FileNotFoundError:
            return []
        events: list[dict[str, Any]] = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                ev = json.loads(line)
                if isinstance(ev, dict):
                    events.append(ev)
        return events

    def enabled_admission_plugins(self) -> dict[str, list[str]]:
        """{"mutating": [...], "validating": [...]} as logged by the current kube-apiserver run.

        kube-apiserver logs ``Loaded N <kind> admission controller(s) successfully in the
        following order: A,B,C.`` at startup.
        """
        pattern = re.compile(
            r"Loaded \d+ (\w+) admission controller\(s\) successfully in the following order: ([^.\"]*)"
        )
        found: dict[str, list[str]] = {}
        for m in pattern.finditer(self.apiserver_log_path.read_text(errors="replace")):
            found[m.group(1)] = [p.strip() for p in m.group(2).split(",") if p.strip()]
        return found

    def node_owner_reference(self) -> dict[str, Any]:
        """The ownerReference NodeRestriction demands on mirror pods (it names the node and its UID)."""
        node = json.loads(self.kubectl("get", "node", NODE_NAME, "-o", "json", check=True).stdout)
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "name": NODE_NAME,
            "uid": node["metadata"]["uid"],
            "controller": True,
        }

    def mirror_pod(
        self,
        name: str,
        command: Sequence[str],
        *,
        namespace: str = "kube-system",
        container: str = "kube-apiserver",
        image: str = "registry.k8s.io/kube-apiserver:v1.37.2",
        config_hash: str | None = None,
    ) -> dict[str, Any]:
        """A mirror Pod manifest the ``node`` user may create: what a kubelet posts for a static pod."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "annotations": {
                    "kubernetes.io/config.mirror": config_hash or uuid.uuid4().hex,
                    "kubernetes.io/config.source": "file",
                },
                "ownerReferences": [self.node_owner_reference()],
            },
            "spec": {
                "nodeName": NODE_NAME,
                "containers": [{"name": container, "image": image, "command": list(command)}],
            },
        }

    # ----------------------------------------------------------------- internals

    def _write_pki(self) -> None:
        pki = self.pki_dir
        ca = certs.Authority.new("auditwarden-e2e-ca", days=2)
        ca.ca.write(pki / "ca.crt", pki / "ca.key")
        first_service_ip = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
        sans = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local", "127.0.0.1", first_service_ip]  # fmt: skip
        ca.server("kube-apiserver", sans, days=1).write(pki / "apiserver.crt", pki / "apiserver.key")
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        certs.write_private_key(pki / "sa.key", sa)
        (pki / "sa.pub").write_bytes(
            sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        for spec in USERS.values():
            ca.client(spec.common_name, spec.groups, days=1).write(pki / f"{spec.name}.crt", pki / f"{spec.name}.key")

    def _write_kubeconfigs(self) -> None:
        for spec in USERS.values():
            cert, key = self.client_cert(spec.name)
            cfg = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "e2e",
                        "cluster": {"server": self.server_url, "certificate-authority": str(self.ca_cert_path)},
                    }
                ],
                "users": [{"name": spec.name, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
                "contexts": [{"name": spec.name, "context": {"cluster": "e2e", "user": spec.name}}],
                "current-context": spec.name,
            }
            path = self.kubeconfig(spec.name)
            path.write_text(json.dumps(cfg, indent=2) + "\n")  # JSON is valid kubeconfig YAML
            path.chmod(0o600)

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [*self.exec_prefix, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._tmpdir,
                preexec_fn=_die_with_parent,  # own process group + die with the test process
            )

    def _start_etcd(self) -> None:
        assert self._etcd_bin is not None
        argv = [
            str(self._etcd_bin),
            "--name=e2e",
            f"--data-dir={self._tmpdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{self.etcd_peer_port}",
            "--log-level=warn",
        ]
        self._etcd = self._spawn(argv, self.etcd_log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "etcd-runner: ready" in self.etcd_log_path.read_text(errors="replace"):
                return
            if self._etcd.poll() is not None:
                raise ClusterError(f"etcd-runner exited with {self._etcd.returncode}:\n{tail(self.etcd_log_path)}")
            time.sleep(0.1)
        raise ClusterError(f"etcd-runner not ready after 60s:\n{tail(self.etcd_log_path)}")

    def _start_apiserver(self) -> None:
        assert self._apiserver_bin is not None
        self._apiserver_runs += 1
        log = self.apiserver_log_path
        argv = [str(self._apiserver_bin), *self.apiserver_flags]
        log.write_text("# " + " ".join(argv) + "\n")
        self._apiserver = self._spawn(argv, log)
        self._wait_ready()

    def _wait_ready(self) -> None:
        proc = self._apiserver
        assert proc is not None
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ClusterError(
                    f"kube-apiserver exited with {proc.returncode} before becoming ready; "
                    f"log {self.apiserver_log_path}:\n{tail(self.apiserver_log_path)}"
                )
            try:
                status, body = self.request("/readyz", timeout=3)
                if status == 200:
                    return
                last = f"HTTP {status}: {body.decode(errors='replace')[-800:]}"
            except (OSError, ssl.SSLError) as e:
                last = repr(e)
            time.sleep(0.25)
        raise ClusterError(
            f"kube-apiserver not ready after {self.ready_timeout:.0f}s (last /readyz: {last}); "
            f"log {self.apiserver_log_path}:\n{tail(self.apiserver_log_path)}"
        )

    def _bootstrap(self) -> None:
        """Objects a real control plane would have: the node, and the break-glass binding."""
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}},
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": BREAK_GLASS_BINDING},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "breakglass"}],
        }
        for obj in (node, binding):
            self.kubectl("apply", "-f", "-", input=json.dumps(obj), check=True)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes] | None, *, grace: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextlib.contextmanager
def running_cluster(extra_flags: Sequence[str] = (), **kwargs: Any) -> Iterator[Cluster]:
    """``with running_cluster([...]) as c:`` -- start, yield, always stop."""
    c = Cluster(extra_flags, **kwargs)
    try:
        c.start()
        yield c
    finally:
        c.stop()
