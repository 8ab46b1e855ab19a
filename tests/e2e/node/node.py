"""A real one-node Kubernetes cluster for the ``node`` tests, in a network namespace of its own.

What runs, all inside the network namespace ``awnode-<pid>`` (``nsenter --net``), so the host's
network is never touched and no port of the host is taken but one on 127.0.0.1:

* etcd + kube-apiserver: :class:`tests.e2e.cluster.Cluster` (same PKI, users, audit log), with
  ``--enable-aggregator-routing`` (it calls webhooks on the endpoints' pod IPs) and the admin
  certificate as its kubelet client certificate; it listens on every address of the namespace
  (loopback and the node IP) and advertises the node IP, so the ``kubernetes`` Service has the
  endpoint ``10.213.0.1:<secure port>`` that pods reach;
* kube-controller-manager and kube-scheduler (v1.37.2, from tests/e2e/build.sh kube-node);
* kube-proxy (v1.37.2, iptables mode, from tests/e2e/build.sh kube-proxy): the Services' ClusterIPs
  work inside the namespace, so a pod's in-cluster configuration (``KUBERNETES_SERVICE_HOST``, the
  ``kubernetes`` Service's ClusterIP) reaches the apiserver as on any cluster;
* containerd 2.x with Debian's runc, its CNI being Debian's bridge + host-local plugins on a
  bridge ``awbr0`` (10.213.0.1/24, no masquerade, no default route: pods reach the node and the
  Service range through it, nothing else);
* the kubelet, node ``cp-1`` with the bridge's address as node IP, static pods from
  :attr:`Node.static_pod_dir`.

The host reaches the apiserver through :mod:`tests.e2e.node.forward` on
``127.0.0.1:<secure port>`` (the same address the kubeconfigs name), so kubectl, helm and
``kubectl port-forward`` run on the host as they would against any cluster.

Facts this machine needed (each is cited where it is set): containerd's
``restrict_oom_score_adj`` (root lacks CAP_SYS_RESOURCE), the kubelet's ``failCgroupV1: false``
+ ``cgroupDriver: cgroupfs`` (cgroup v1), a node IP that is not loopback,
``makeIPTablesUtilChains: false``, kube-proxy's ``oomScoreAdj: 0`` and conntrack settings left
as the kernel has them.

Teardown (:meth:`Node.stop`) undoes everything the start did or caused: every process is stopped
by its PID (containerd's shims and the containers too), every mount under the node's directories
is unmounted, the namespace (with its bridge, veths and any iptables rule made in it) is deleted,
the cgroups are removed, the host paths the kubelet and the shims create are removed when they
did not exist before, and the sysctls the kubelet sets (``vm.overcommit_memory``,
``kernel.panic``, ``kernel.panic_on_oops``) are restored.  :func:`host_state` is what the tests
compare before and after.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.e2e.cluster import NODE_NAME, SERVICE_CIDR, Cluster, ClusterError, tail
from tests.support.tools import REPO, tool, tools_dir

BRIDGE = "awbr0"
NODE_IP = "10.213.0.1"
POD_SUBNET = "10.213.0.0/24"
PAUSE_IMAGE = "localhost/pause:auditwarden-e2e"
IMAGE = "localhost/auditwarden:e2e"
#: the pause binary under the name kube-apiserver: the container of the tests' static pod
STANDIN_IMAGE = "localhost/kube-apiserver-standin:e2e"
KUBELET_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
CGROUP_FS = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/run/netns")  # where `ip netns` keeps its named namespaces
#: host paths the kubelet or containerd's shims create whatever their configuration says
HARD_CODED_HOST_PATHS = (Path("/var/log/containers"), Path("/run/containerd"))
BUILD_CMD = f"{REPO / 'tests' / 'e2e' / 'node' / 'build.sh'}"


def images_dir() -> Path:
    return tools_dir() / "images"


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    import ctypes

    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def read_sysctl(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


def write_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", *name.split(".")).write_text(value + "\n")


def mountpoints() -> list[str]:
    """Mount points of this mount namespace (/proc/self/mountinfo, octal escapes decoded)."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split(" ")[4]
        out.append(point.encode().decode("unicode_escape"))
    return out


def cgroup_subsystems() -> list[Path]:
    """The cgroup v1 hierarchies mounted under /sys/fs/cgroup (or the v2 root)."""
    if (CGROUP_FS / "cgroup.controllers").exists():
        return [CGROUP_FS]
    return sorted(p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink())


def host_state() -> dict[str, Any]:
    """What a node run must leave as it found: processes, mounts, links, netns, iptables, sysctls."""
    iptables = ""
    if shutil.which("iptables-save"):
        iptables = "\n".join(
            line
            for line in _run(["iptables-save"], check=False).stdout.splitlines()
            if not line.startswith("#") and not line.startswith(":")  # comments, counters
        )
    return {
        "links": sorted(
            line.split(":")[1].strip().split("@")[0]
            for line in _run(["ip", "-o", "link", "show"]).stdout.splitlines()
            if ":" in line
        ),
        "netns": sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else [],
        "mounts": sorted(mountpoints()),
        "iptables": iptables,
        "sysctls": {n: read_sysctl(n) for n in KUBELET_SYSCTLS},
        "cgroups": sorted(str(p) for sub in cgroup_subsystems() for p in sub.iterdir() if p.is_dir()),
        "host_paths": {str(p): p.exists() for p in HARD_CODED_HOST_PATHS},
    }


class Node:
    """The node and its control plane; ``start()`` then ``stop()`` (also on a failed start)."""

    def __init__(self, *, tmpdir: Path | None = None, keep_tmpdir: bool = False) -> None:
        self.tag = f"awnode-{os.getpid()}"
        self.netns = self.tag
        self.netns_path = NETNS_DIR / self.netns
        self.dir = tmpdir or Path(tempfile.mkdtemp(prefix="auditwarden-node-"))
        self.keep_tmpdir = keep_tmpdir
        self.logs = self.dir / "logs"
        self.cgroup_root = f"/{self.tag}"
        self.prefix = ["nsenter", f"--net={self.netns_path}"]
        self.cluster = Cluster(
            [
                "--enable-aggregator-routing=true",
                "--kubelet-preferred-address-types=InternalIP",
                # every address of the node's own namespace (loopback, where the forwarder and the
                # controllers connect, and the node IP, the kubernetes Service's endpoint that pods
                # reach through kube-proxy); nothing outside the namespace sees it
                "--bind-address=0.0.0.0",
                f"--advertise-address={NODE_IP}",
                "--endpoint-reconciler-type=lease",
                "--v=2",
            ],
            tmpdir=self.dir / "cluster",
            keep_tmpdir=True,  # removed with self.dir
            exec_prefix=self.prefix,
        )
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._spawned: list[subprocess.Popen[bytes]] = []
        self._sysctls: dict[str, str] = {}
        self._host_paths_before: dict[Path, set[str] | None] = {}
        self._forwarder: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_after = 0.0

    # ------------------------------------------------------------------ paths

    @property
    def containerd_dir(self) -> Path:
        return self.dir / "containerd"

    @property
    def containerd_sock(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def kubelet_dir(self) -> Path:
        return self.dir / "kubelet"

    @property
    def static_pod_dir(self) -> Path:
        return self.dir / "manifests"

    @property
    def kubelet_log(self) -> Path:
        return self.logs / "kubelet.log"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Node:
        t0 = time.monotonic()
        self.started_at = t0
        for d in (self.logs, self.static_pod_dir, self.containerd_dir, self.kubelet_dir):
            d.mkdir(parents=True, exist_ok=True)
        try:
            self._remember_host()
            self._make_netns()
            self._start_cluster()
            self._start_containerd()
            self._import_images()
            self._start_controllers()
            self._start_kubelet()
            self._wait_node_ready()
            self._start_kube_proxy()  # after the kubelet has given the Node its IP: kube-proxy waits for it
        except BaseException:
            self.stop()
            raise
        self.ready_after = time.monotonic() - t0
        return self

    def stop(self) -> None:
        errors: list[str] = []

        def attempt(what: str, fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except Exception as e:  # teardown goes on: every step undoes its own part
                errors.append(f"{what}: {e!r}")

        attempt("kubelet", self._stop_proc, "kubelet", 30)
        attempt("containers", self._kill_containers)
        attempt("containerd", self._stop_proc, "containerd", 20)
        attempt("shims", self._kill_shims)
        for name in ("kube-proxy", "kube-scheduler", "kube-controller-manager"):
            attempt(name, self._stop_proc, name, 20)
        attempt("cluster", self.cluster.stop)
        if self._forwarder is not None:
            attempt("forwarder", self._terminate, self._forwarder, 5)
            self._forwarder = None
        attempt("mounts", self._unmount_all)
        attempt("netns", self._delete_netns)
        attempt("cgroups", self._remove_cgroups)
        attempt("sysctls", self._restore_sysctls)
        attempt("host paths", self._remove_host_paths)
        if not self.keep_tmpdir:
            attempt("tmpdir", shutil.rmtree, self.dir)
        if errors:
            print("node teardown problems:\n  " + "\n  ".join(errors), file=sys.stderr)

    # ------------------------------------------------------------------ helpers for tests

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, **kwargs)

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        exe = tool("ctr")
        assert exe is not None
        return _run([str(exe), f"--address={self.containerd_sock}", "-n", "k8s.io", *args], timeout=timeout)

    def kubelet_log_text(self) -> str:
        return self.kubelet_log.read_text(errors="replace")

    def leftover_pids(self) -> list[int]:
        """Processes started by this node still alive: the ones it spawned, and any naming its directory."""
        alive = [p.pid for p in self._spawned if p.poll() is None]
        return sorted(set(alive) | set(self._own_pids()))

    def in_netns(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return _run([*self.prefix, *argv], check=False, timeout=timeout)

    # ------------------------------------------------------------------ start steps

    def _remember_host(self) -> None:
        self._sysctls = {n: read_sysctl(n) for n in KUBELET_SYSCTLS}
        for p in HARD_CODED_HOST_PATHS:
            self._host_paths_before[p] = set(os.listdir(p)) if p.is_dir() else None
        if (Path("/run/containerd/s")).is_dir():
            self._host_paths_before[Path("/run/containerd/s")] = set(os.listdir("/run/containerd/s"))

    def _make_netns(self) -> None:
        # `ip netns add` makes /run/netns a (shared) bind mount of itself the first time it runs on a
        # host, and `ip netns delete` leaves that mount: remember whether it was there, to undo it
        self._netns_dir_before = (NETNS_DIR.is_dir(), str(NETNS_DIR) in mountpoints())
        _run(["ip", "netns", "add", self.netns])
        ns = ["ip", "-n", self.netns]
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "link", "add", BRIDGE, "type", "bridge"])
        _run([*ns, "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE])
        _run([*ns, "link", "set", BRIDGE, "up"])

    def _start_cluster(self) -> None:
        c = self.cluster
        pki = c.pki_dir
        c._extra += [
            f"--kubelet-client-certificate={pki / 'admin.crt'}",
            f"--kubelet-client-key={pki / 'admin.key'}",
        ]
        original = c._start_apiserver

        def start_apiserver_behind_forwarder() -> None:
            if self._forwarder is None:
                self._forwarder = self._spawn(
                    "forward",
                    [sys.executable, "-m", "tests.e2e.node.forward", str(self.netns_path), str(c.secure_port),
                     str(c.secure_port)],
                    netns=False,
                )
            original()

        c._start_apiserver = start_apiserver_behind_forwarder  # type: ignore[method-assign]
        c.start()

    def _spawn(self, name: str, argv: list[str], *, netns: bool = True) -> subprocess.Popen[bytes]:
        log = self.log(name)
        full = [*self.prefix, *argv] if netns else argv
        log.write_text("# " + " ".join(full) + "\n")
        with log.open("ab") as out:
            proc = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO if not netns else self.dir,
                preexec_fn=_die_with_parent,
            )
        self._procs[name] = proc
        self._spawned.append(proc)
        return proc

    def _containerd_config(self) -> str:
        d = self.containerd_dir
        runtime = "io.containerd.cri.v1.runtime"
        return f"""\
version = 3
root = "{d / 'root'}"
state = "{d / 'state'}"
temp = "{d / 'tmp'}"

[grpc]
  address = "{self.containerd_sock}"
[ttrpc]
  address = "{self.containerd_sock}.ttrpc"

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = "{d / 'opt'}"
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
    socket_path = "{d / 'nri.sock'}"
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "{PAUSE_IMAGE}"
  [plugins.'{runtime}']
    # root here lacks CAP_SYS_RESOURCE: without this, runc cannot lower a container's
    # oom_score_adj below containerd's and every sandbox dies with "can't get final child's PID
    # from pipe: EOF"
    restrict_oom_score_adj = true
    # the pods' network namespaces under the state dir, not /var/run/netns
    netns_mounts_under_state_dir = true
    enable_cdi = false
    [plugins.'{runtime}'.cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = "{d / 'cni'}"
    [plugins.'{runtime}'.containerd.runtimes.runc.options]
      Root = "{d / 'runc'}"
      SystemdCgroup = false
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
"""

    def _cni_config(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "auditwarden-e2e",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET, "rangeStart": "10.213.0.10", "gateway": NODE_IP}]],
                        # the Service range through the node (kube-proxy's rules are there); no
                        # default route: a pod reaches nothing beyond the node
                        "routes": [{"dst": SERVICE_CIDR}],
                        "dataDir": str(self.containerd_dir / "cni-ipam"),
                    },
                }
            ],
        }

    def _start_containerd(self) -> None:
        exe = tool("containerd")
        if exe is None or tool("containerd-shim-runc-v2") is None or tool("ctr") is None:
            raise ClusterError(f"containerd missing; build it with {BUILD_CMD}")
        cni = self.containerd_dir / "cni"
        cni.mkdir(parents=True, exist_ok=True)
        (cni / "10-auditwarden-e2e.conflist").write_text(json.dumps(self._cni_config(), indent=2))
        cfg = self.containerd_dir / "config.toml"
        cfg.write_text(self._containerd_config())
        env_path = f"{exe.parent}:/usr/sbin:/usr/bin:/sbin:/bin"
        # the shim is found on PATH; runc is Debian's (/usr/sbin/runc)
        proc = self._spawn_env("containerd", [str(exe), f"--config={cfg}", "--log-level=info"], {"PATH": env_path})
        self._wait(lambda: self.containerd_sock.exists() and self._ctr_ok(), "containerd", proc, 60)

    def _spawn_env(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            return self._spawn(name, argv)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _ctr_ok(self) -> bool:
        exe = tool("ctr")
        assert exe is not None
        return (
            _run([str(exe), f"--address={self.containerd_sock}", "version"], check=False, timeout=10).returncode == 0
        )

    def _import_images(self) -> None:
        for name in ("pause", "standin", "auditwarden"):
            archive = images_dir() / f"{name}.tar"
            if not archive.is_file():
                raise ClusterError(f"{archive} missing; build it with {BUILD_CMD}")
            self.ctr("images", "import", str(archive), timeout=300)

    def _start_controllers(self) -> None:
        c = self.cluster
        admin = c.kubeconfig("admin")
        kcm = tool("kube-controller-manager")
        sched = tool("kube-scheduler")
        if kcm is None or sched is None or tool("kubelet") is None:
            raise ClusterError(f"kubelet/kube-controller-manager/kube-scheduler missing; build them with {BUILD_CMD}")
        self._spawn(
            "kube-controller-manager",
            [
                str(kcm),
                f"--kubeconfig={admin}",
                f"--authentication-kubeconfig={admin}",
                f"--authorization-kubeconfig={admin}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                f"--service-account-private-key-file={c.pki_dir / 'sa.key'}",
                f"--root-ca-file={c.ca_cert_path}",
                "--use-service-account-credentials=false",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(sched),
                f"--kubeconfig={admin}",
                f"--authentication-kubeconfig={admin}",
                f"--authorization-kubeconfig={admin}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                "--v=1",
            ],
        )

    def _kube_proxy_config(self) -> dict[str, Any]:
        return {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.cluster.kubeconfig("admin"))},
            "hostnameOverride": NODE_NAME,
            "mode": "iptables",
            "clusterCIDR": POD_SUBNET,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # no CAP_SYS_RESOURCE to go below 0 (its default is -999)
            "oomScoreAdj": 0,
            # 0 = leave the kernel's conntrack table size and timeouts as they are (the table size
            # is the host's, not the namespace's)
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
            # NodePorts on the node IP only (127.0.0.1 would need route_localnet); nothing here uses them
            "nodePortAddresses": ["primary"],
            "iptables": {"localhostNodePorts": False},
        }

    def _start_kube_proxy(self) -> None:
        exe = tool("kube-proxy")
        if exe is None:
            raise ClusterError(f"kube-proxy missing; build it with {BUILD_CMD}")
        cfg = self.dir / "kube-proxy.yaml"
        cfg.write_text(json.dumps(self._kube_proxy_config(), indent=2))
        proc = self._spawn("kube-proxy", [str(exe), f"--config={cfg}", "--v=2"])

        def kubernetes_service_proxied() -> bool:
            # kube-proxy has written the rules of the kubernetes Service (its endpoint: the node IP)
            nat = self.in_netns("iptables-save", "-t", "nat").stdout
            return "default/kubernetes:https" in nat and f"{NODE_IP}:{self.cluster.secure_port}" in nat

        self._wait(kubernetes_service_proxied, "kube-proxy rules of the kubernetes Service", proc, 60)

    def _kubelet_config(self) -> dict[str, Any]:
        c = self.cluster
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # this machine has cgroup v1, which kubelet 1.35+ refuses unless told
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            # every pod cgroup under one root of the node's own, removed at teardown
            "cgroupRoot": self.cgroup_root,
            "containerRuntimeEndpoint": f"unix://{self.containerd_sock}",
            "staticPodPath": str(self.static_pod_dir),
            # the kubelet ignores unknown fields: the pod log dir is podLogsDir (not podLogDir)
            "podLogsDir": str(self.dir / "pod-logs"),
            "volumePluginDir": str(self.kubelet_dir / "volume-plugins"),
            # the chains live in the node's netns anyway; nothing needs them (no kube-proxy)
            "makeIPTablesUtilChains": False,
            "address": NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(c.ca_cert_path)},
            },
            "authorization": {"mode": "Webhook"},
            "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE to go below
            "failSwapOn": False,
            "resolvConf": "",
            "registerNode": True,
            "syncFrequency": "5s",
            "fileCheckFrequency": "2s",
            "nodeStatusUpdateFrequency": "4s",
            "serializeImagePulls": False,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "shutdownGracePeriod": "0s",
        }

    def _start_kubelet(self) -> None:
        exe = tool("kubelet")
        assert exe is not None
        for sub in cgroup_subsystems():
            d = sub / self.cgroup_root.lstrip("/")
            d.mkdir(exist_ok=True)
            if (sub / "cpuset.cpus").exists():  # a v1 cpuset cgroup starts empty
                (d / "cpuset.cpus").write_text((sub / "cpuset.cpus").read_text())
                (d / "cpuset.mems").write_text((sub / "cpuset.mems").read_text())
        cfg = self.kubelet_dir / "config.yaml"
        cfg.write_text(json.dumps(self._kubelet_config(), indent=2))
        self._spawn(
            "kubelet",
            [
                str(exe),
                f"--config={cfg}",
                f"--kubeconfig={self.cluster.kubeconfig('node')}",
                f"--root-dir={self.kubelet_dir / 'root'}",
                f"--cert-dir={self.kubelet_dir / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                "--v=2",
            ],
        )

    def _wait_node_ready(self, timeout: float = 120) -> None:
        def ready() -> bool:
            out = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
            if out.returncode != 0:
                return False
            conds = json.loads(out.stdout).get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

        self._wait(ready, "node Ready", self._procs["kubelet"], timeout)

    def _wait(self, cond: Any, what: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            if proc.poll() is not None:
                name = next(n for n, p in self._procs.items() if p is proc)
                raise ClusterError(f"{name} exited with {proc.returncode}:\n{tail(self.log(name))}")
            time.sleep(0.5)
        raise ClusterError(f"{what}: not after {timeout:.0f}s; logs in {self.logs}")

    # ------------------------------------------------------------------ stop steps

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def _stop_proc(self, name: str, grace: float) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            self._terminate(proc, grace)

    def _kill_containers(self) -> None:
        """Every container and sandbox of the node's containerd: kill the task, delete it."""
        if "containerd" not in self._procs or not self.containerd_sock.exists():
            return
        tasks = self.ctr("tasks", "ls", "-q", timeout=30).stdout.split()
        for t in tasks:
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self.ctr("tasks", "kill", "-s", "SIGKILL", t, timeout=15)
        for t in tasks:
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self.ctr("tasks", "delete", "-f", t, timeout=15)
        for c in self.ctr("containers", "ls", "-q", timeout=30).stdout.split():
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self.ctr("containers", "delete", c, timeout=15)

    def _own_pids(self) -> list[int]:
        """PIDs whose command line names this node's directory (shims, containers' leftovers)."""
        mark = str(self.dir).encode()
        pids = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit() or int(p.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if mark in (p / "cmdline").read_bytes():
                    pids.append(int(p.name))
        return pids

    def _kill_shims(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self._own_pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while self._own_pids() and time.monotonic() < deadline:
                time.sleep(0.1)

    def _unmount_all(self) -> None:
        root = str(self.dir)
        for _ in range(3):
            points = [m for m in mountpoints() if m == root or m.startswith(root + "/")]
            if not points:
                return
            for m in sorted(points, key=len, reverse=True):
                _run(["umount", "--lazy", m], check=False)

    def _delete_netns(self) -> None:
        if self.netns_path.exists():
            _run(["ip", "netns", "delete", self.netns])
        existed, mounted = getattr(self, "_netns_dir_before", (True, True))
        if not mounted and str(NETNS_DIR) in mountpoints() and not any(NETNS_DIR.iterdir()):
            _run(["umount", str(NETNS_DIR)], check=False)
        if not existed and NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir()):
            NETNS_DIR.rmdir()

    def _remove_cgroups(self) -> None:
        for sub in cgroup_subsystems():
            top = sub / self.cgroup_root.lstrip("/")
            if not top.is_dir():
                continue
            for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                self._rmdir_cgroup(d)
            self._rmdir_cgroup(top)

    @staticmethod
    def _rmdir_cgroup(d: Path) -> None:
        for _ in range(50):  # a cgroup whose last task just died can be busy for a moment
            try:
                d.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
        d.rmdir()

    def _restore_sysctls(self) -> None:
        for n, v in self._sysctls.items():
            if read_sysctl(n) != v:
                write_sysctl(n, v)

    def _remove_host_paths(self) -> None:
        for p, before in self._host_paths_before.items():
            if not p.exists():
                continue
            if before is None:
                shutil.rmtree(p, ignore_errors=True)
                continue
            for entry in set(os.listdir(p)) - before:
                target = p / entry
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)


@contextlib.contextmanager
def running_node(**kwargs: Any) -> Iterator[Node]:
    node = Node(**kwargs)
    node.start()
    try:
        yield node
    finally:
        node.stop()

