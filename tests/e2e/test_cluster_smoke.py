"""The e2e harness itself: a real kube-apiserver + etcd, its users, audit log and restarts."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any

import pytest

from tests.e2e.cluster import NODE_NAME, Cluster
from tests.e2e.conftest import require_tools


def test_version_is_pinned_release(cluster: Cluster) -> None:
    info = cluster.get_json("/version")
    assert info["major"] == "1"
    assert info["minor"] == "37"
    assert info["gitVersion"].startswith("v1.37."), info


def test_admin_creates_and_reads_configmap(cluster: Cluster) -> None:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    created = cluster.kubectl("create", "configmap", name, "-n", "default", "--from-literal=k=v")
    assert created.returncode == 0, created.stderr
    got = cluster.kubectl("get", "configmap", name, "-n", "default", "-o", "json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["data"] == {"k": "v"}


def test_users_have_expected_authority(cluster: Cluster) -> None:
    who = cluster.kubectl("auth", "whoami", "-o", "json", user="node", check=True)
    user = json.loads(who.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:node:{NODE_NAME}"
    assert "system:nodes" in user["groups"]
    assert cluster.kubectl("auth", "can-i", "delete", "clusterroles", user="breakglass").stdout.strip() == "yes"
    assert cluster.kubectl("auth", "can-i", "list", "secrets", "-A", user="jane").stdout.strip() == "no"
    bg = json.loads(cluster.kubectl("auth", "whoami", "-o", "json", user="breakglass", check=True).stdout)
    assert "auditwarden:break-glass" in bg["status"]["userInfo"]["groups"]


def test_node_user_creates_mirror_pod(cluster: Cluster) -> None:
    name = f"kube-apiserver-{NODE_NAME}-{uuid.uuid4().hex[:6]}"
    pod = cluster.mirror_pod(name, ["kube-apiserver", "--audit-policy-file=/etc/kubernetes/audit-policy.yaml"])
    assert pod["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    assert pod["spec"]["containers"][0]["name"] == "kube-apiserver"
    out = cluster.kubectl("create", "-f", "-", "-o", "json", user="node", input=json.dumps(pod))
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["spec"]["nodeName"] == NODE_NAME
    assert "kubernetes.io/config.mirror" in created["metadata"]["annotations"]
    # ...and NodeRestriction really is on: the node may not place pods on another node
    pod["metadata"]["name"] = name + "-x"
    pod["spec"]["nodeName"] = "some-other-node"
    denied = cluster.kubectl("create", "-f", "-", user="node", input=json.dumps(pod))
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower(), denied.stderr


def test_audit_log_receives_events(cluster: Cluster) -> None:
    start = cluster.audit_log_offset()
    marker = f"audit-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "configmap", marker, "-n", "default", check=True)
    deadline = time.monotonic() + 10
    hits: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not hits:
        hits = [
            e
            for e in cluster.audit_events(start)
            if e.get("verb") == "create" and (e.get("objectRef") or {}).get("name") == marker
        ]
        time.sleep(0.2)
    assert hits, f"no audit event for configmap {marker} in {cluster.audit_log_path}"
    assert all(e["level"] == "Metadata" for e in hits)
    assert any(e.get("stage") == "ResponseComplete" for e in hits)


def test_validating_admission_webhook_enabled(cluster: Cluster) -> None:
    plugins = cluster.enabled_admission_plugins()
    assert "ValidatingAdmissionWebhook" in plugins.get("validating", []), plugins
    assert "NodeRestriction" in plugins.get("validating", []) + plugins.get("mutating", []), plugins


def test_restart_with_different_flag(cluster: Cluster) -> None:
    before = cluster.apiserver_pid
    cluster.restart(["--enable-admission-plugins=NodeRestriction,AlwaysPullImages"])
    try:
        assert cluster.apiserver_pid != before
        assert "AlwaysPullImages" in cluster.enabled_admission_plugins().get("mutating", [])
        # same etcd: objects survive the restart
        assert cluster.kubectl("get", "node", NODE_NAME).returncode == 0
    finally:
        cluster.restart([])
    assert "AlwaysPullImages" not in cluster.enabled_admission_plugins().get("mutating", [])


def test_helm_version() -> None:
    helm = require_tools("helm")["helm"]
    out = subprocess.run([str(helm), "version", "--short"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("v4."), out.stdout


def test_kube_bench_version() -> None:
    kb = require_tools("kube-bench")["kube-bench"]
    out = subprocess.run([str(kb), "version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("v0."), out.stdout


pytestmark = pytest.mark.e2e
