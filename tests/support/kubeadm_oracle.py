"""The real kubeadm as the oracle for ``kubeadm-config`` (built by tests/e2e/build.sh: ``kubeadm``
from the harness's k8s.io/kubernetes v1.37.2 pins, ``kubeadm-v1.36.3`` and ``kubeadm-v1.34.0``
from modules of their own).

For one ClusterConfiguration the oracle runs, in a fresh directory:

* ``kubeadm config validate --config FILE`` — validity with strict decoding;
* ``kubeadm init phase control-plane apiserver --rootfs DIR --config /config.yaml`` — kubeadm
  chroots into DIR (so no host path of this machine is read or written: the CA directories
  kubeadm mounts when they exist are absent there) and writes the static Pod to
  ``DIR/etc/kubernetes/manifests/kube-apiserver.yaml`` without a cluster.

An InitConfiguration is put beside the ClusterConfiguration so that nothing is detected on the
host: the advertise address (192.0.2.10, TEST-NET-1 — only written into the manifest, never
contacted), the port, the node name and the CRI socket.  Every generated configuration names
its ``kubernetesVersion``: without one kubeadm would look the version up on the internet.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import tool

ADVERTISE_ADDRESS = "192.0.2.10"
BIND_PORT = 6443
#: The older kubeadm releases tests/e2e/build.sh builds (KUBEADM_OLD_VERSIONS).
OLD_RELEASES = ("v1.36.3", "v1.34.0")
NEWEST_RELEASE = "v1.37.2"

INIT_CONFIGURATION = f"""\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {ADVERTISE_ADDRESS}
  bindPort: {BIND_PORT}
nodeRegistration:
  name: oracle-node
  criSocket: unix:///run/containerd/containerd.sock
"""


def binary(release: str) -> Path:
    """The kubeadm of ``release`` (fails, or skips with AUDITWARDEN_ALLOW_MISSING_TOOLS=1, when not built)."""
    return _tool("kubeadm" if release == NEWEST_RELEASE else f"kubeadm-{release}")


def _tool(name: str) -> Path:
    found = tool(name)
    if found is None:
        target = "kubeadm-old" if name.startswith("kubeadm-") else name
        msg = f"{name} is not built: run `bash tests/e2e/build.sh {target}` (scripts/test.sh does)"
        if os.environ.get("AUDITWARDEN_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return found


@dataclass
class Outcome:
    validate_ok: bool
    validate_output: str
    init_ok: bool
    init_output: str
    pod: dict[str, Any] | None  # the static Pod kubeadm wrote
    manifest: str = ""  # the file kubeadm wrote


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


def run(kubeadm: Path, cluster_configuration: str, root: Path, *, experimental: bool = False) -> Outcome:
    """Validate and render ``cluster_configuration`` (YAML text) with the real kubeadm, in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yaml"
    config.write_text(INIT_CONFIGURATION + "---\n" + cluster_configuration, encoding="utf-8")
    flags = ["--allow-experimental-api"] if experimental else []
    validate = _run([str(kubeadm), "config", "validate", "--config", str(config), *flags])
    init = _run([str(kubeadm), "init", "phase", "control-plane", "apiserver", "--rootfs", str(root),
                 "--config", "/config.yaml"])  # fmt: skip
    manifest = root / "etc" / "kubernetes" / "manifests" / "kube-apiserver.yaml"
    text = manifest.read_text(encoding="utf-8") if init.returncode == 0 and manifest.exists() else ""
    pod = yaml.safe_load(text) if text else None
    validate_output, init_output = validate.stdout + validate.stderr, init.stdout + init.stderr
    return Outcome(validate.returncode == 0, validate_output, init.returncode == 0, init_output, pod, text)


def pod_parts(pod: dict[str, Any]) -> tuple[list[str], list[tuple[str, str, str]], list[tuple[str, str, bool]]]:
    """(command, volumes as (name, path, type), mounts as (name, mountPath, readOnly)) of a kube-apiserver Pod."""
    spec = pod["spec"]
    container = spec["containers"][0]
    volumes = [(v["name"], v["hostPath"]["path"], v["hostPath"].get("type", "")) for v in spec.get("volumes") or []]
    mounts = [(m["name"], m["mountPath"], bool(m.get("readOnly", False))) for m in container.get("volumeMounts") or []]
    return list(container["command"]), volumes, mounts


class StaticPodOracle:
    """The kubelet's decoding and validation of a static Pod (tests/e2e/harness/cmd/static-pod-oracle):
    one persistent process, one JSON line per manifest; safe to share between threads."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([str(_tool("static-pod-oracle"))], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1)  # fmt: skip
        self._lock = threading.Lock()

    def check(self, manifest: str) -> tuple[bool, str]:
        """(the kubelet runs it, its refusal)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(json.dumps({"manifest": manifest}) + "\n")
            self._proc.stdin.flush()
            answer = json.loads(self._proc.stdout.readline())
        return bool(answer["ok"]), str(answer["error"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=10)
