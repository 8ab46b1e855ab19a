"""Mirror Pods made by a real kubelet from a static-pod manifest, judged by the chart's pods.

The manifest in the kubelet's ``staticPodPath`` is a kube-apiserver static Pod the way kubeadm
writes it (``component: kube-apiserver``, audit flags, hostPath volumes for the policy and the
log).  Its container is a stand-in: ``localhost/kube-apiserver-standin:e2e`` runs the pause
binary under the name ``kube-apiserver`` (it ignores the flags), since what is judged is the
mirror Pod the kubelet posts, not the process.  The kubelet posts that mirror Pod with its node
credentials, and the apiserver asks the webhook (through the Service, on the pods' IPs).

This is the proof that the mirror-Pod path works end to end; the hand-posted mirror Pods of
tests/e2e/test_webhook_modes.py remain as the fast, fine-grained cases.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e import policies as P
from tests.e2e.cluster import NODE_NAME
from tests.e2e.node.node import STANDIN_IMAGE, Node
from tests.e2e.node.test_chart_on_node import IMAGE_VALUES, wait_for
from tests.e2e.webhook_server import WEBHOOK_MIRROR_PODS, HelmRelease

RELEASE = "aw-mirror"
NAMESPACE = "aw-mirror"
MIRROR = f"kube-apiserver-{NODE_NAME}"
MANIFEST = "kube-apiserver.yaml"


@pytest.fixture(scope="module")
def release(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRelease]:
    helm = HelmRelease(node.cluster, RELEASE, NAMESPACE, tmp_path_factory.mktemp("helm-mirror"))
    try:
        with helm.installed_release(IMAGE_VALUES, "--wait", "--timeout", "240s"):
            try:
                yield helm
            finally:  # before the release goes
                (node.static_pod_dir / MANIFEST).unlink(missing_ok=True)
    finally:
        wait_for(lambda: not mirror_pod(node), "the mirror Pod gone with its manifest", timeout=60)


def static_pod(node: Node, *, audit_policy_file: bool) -> dict[str, Any]:
    """A kubeadm-style kube-apiserver static Pod whose audit paths live in the node's directory."""
    policy_dir = node.dir / "static" / "audit"
    log_dir = node.dir / "static" / "audit-log"
    flags = P.flags_with(
        audit_policy_file=str(policy_dir / "policy.yaml") if audit_policy_file else None,
        audit_log_path=str(log_dir / "audit.log"),
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "kube-apiserver",
            "namespace": "kube-system",
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
        },
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "containers": [
                {
                    "name": "kube-apiserver",
                    "image": STANDIN_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["kube-apiserver", "--secure-port=16443", *(f"--{k}={v}" for k, v in flags.items())],
                    "volumeMounts": [
                        {"name": "audit-policy", "mountPath": str(policy_dir), "readOnly": True},
                        {"name": "audit-log", "mountPath": str(log_dir)},
                    ],
                }
            ],
            "volumes": [
                {"name": "audit-policy", "hostPath": {"path": str(policy_dir), "type": "DirectoryOrCreate"}},
                {"name": "audit-log", "hostPath": {"path": str(log_dir), "type": "DirectoryOrCreate"}},
            ],
        },
    }


def write_manifest(node: Node, pod: dict[str, Any]) -> None:
    tmp = node.static_pod_dir / f".{MANIFEST}.tmp"  # dot files are ignored by the kubelet
    tmp.write_text(yaml.safe_dump(pod, sort_keys=False))
    tmp.rename(node.static_pod_dir / MANIFEST)


def mirror_pod(node: Node) -> dict[str, Any] | None:
    out = node.kubectl("get", "pod", MIRROR, "-n", "kube-system", "-o", "json")
    if out.returncode != 0:
        assert "NotFound" in out.stderr, out.stderr
        return None
    pod: dict[str, Any] = json.loads(out.stdout)
    return pod


def kubelet_lines(node: Node, since: int, *needles: str) -> list[str]:
    text = node.kubelet_log.read_bytes()[since:].decode(errors="replace")
    return [line for line in text.splitlines() if all(n in line for n in needles)]


def test_in_enforce_a_manifest_without_audit_policy_file_gets_no_mirror_pod_until_fixed(
    release: HelmRelease, node: Node
) -> None:
    offset = node.kubelet_log.stat().st_size
    write_manifest(node, static_pod(node, audit_policy_file=False))
    refused = wait_for(
        lambda: kubelet_lines(node, offset, "Failed creating a mirror pod", WEBHOOK_MIRROR_PODS),
        "the kubelet reporting the refused mirror Pod",
        timeout=120,
    )
    print("\nkubelet: " + refused[0][:1500])
    assert "denied the request" in refused[0] and "--audit-policy-file" in refused[0], refused[0]
    listing = node.kubectl("get", "pods", "-n", "kube-system", "-o", "wide").stdout
    print("kubectl get pods -n kube-system:\n" + listing)
    assert MIRROR not in listing
    # the static pod itself runs: the kubelet does not need the mirror Pod to run it
    wait_for(lambda: STANDIN_IMAGE in node.ctr("containers", "ls").stdout, "the static pod's container running")

    write_manifest(node, static_pod(node, audit_policy_file=True))
    pod = wait_for(lambda: mirror_pod(node), "the mirror Pod of the fixed manifest", timeout=120)
    assert pod["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert any(a.startswith("--audit-policy-file=") for a in pod["spec"]["containers"][0]["command"])
    print("kubectl get pods -n kube-system:\n" + node.kubectl("get", "pods", "-n", "kube-system").stdout)


def test_in_warn_the_mirror_pod_appears_with_warnings(release: HelmRelease, node: Node) -> None:
    release.upgrade({**IMAGE_VALUES, "config": {"mode": "warn"}}, "--wait", "--timeout", "240s")
    (node.static_pod_dir / MANIFEST).unlink(missing_ok=True)
    wait_for(lambda: not mirror_pod(node), "the compliant mirror Pod gone", timeout=60)
    time.sleep(1)
    offset = node.kubelet_log.stat().st_size
    write_manifest(node, static_pod(node, audit_policy_file=False))
    pod = wait_for(lambda: mirror_pod(node), "the mirror Pod of the non-compliant manifest in warn", timeout=120)
    assert not any(a.startswith("--audit-policy-file") for a in pod["spec"]["containers"][0]["command"])
    # client-go logs the apiserver's Warning headers the kubelet received
    warned = wait_for(
        lambda: kubelet_lines(node, offset, "--audit-policy-file"), "the warning in the kubelet's log", timeout=30
    )
    print("\nkubelet: " + warned[0][:1500])
    # and the webhook logged an allowed decision with warnings for it
    decisions = []
    for p in json.loads(
        node.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json", check=True).stdout
    )["items"]:
        logs = node.kubectl("logs", "-n", NAMESPACE, p["metadata"]["name"]).stdout
        decisions += [
            e for e in map(json.loads, logs.splitlines()) if e.get("kind") == "Pod" and e.get("name") == MIRROR
        ]
    # in warn mode the violations are answered as warnings: the decision line says "warn"
    warned_decisions = [
        e for e in decisions
        if e.get("allowed") and e.get("verdict") == "warn" and "audit-policy-file-missing" in e.get("violations", [])
    ]  # fmt: skip
    assert warned_decisions, decisions
