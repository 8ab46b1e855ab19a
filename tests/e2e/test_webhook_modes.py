"""Mirror Pods, the three modes and break-glass exemptions through the real apiserver (issue 5 §3).

Mirror Pods are created the way the kubelet creates them: by the node's own identity
(``system:node:cp-1``, with NodeRestriction on), bound to that node, owned by the Node object,
annotated ``kubernetes.io/config.mirror``.  Modes are switched by restarting ``auditwarden
serve`` with another configuration; every test leaves the server in ``enforce``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from tests.e2e import policies as P
from tests.e2e.cluster import BREAK_GLASS_GROUP, NODE_NAME, Cluster
from tests.e2e.webhook_server import (
    WEBHOOK_MIRROR_PODS,
    Deployment,
    DeployWebhook,
    denial_message,
    exists,
    kubectl_apply,
    policy_configmap,
    unique,
    warnings_of,
)

ENFORCE = {
    "mode": "enforce",
    "profile": "baseline",
    "kubernetesVersion": "1.37",
    "exemptions": {"users": [], "groups": [BREAK_GLASS_GROUP]},
}


@pytest.fixture(scope="module")
def webhook(deploy_webhook: DeployWebhook) -> Deployment:
    return deploy_webhook("modes", ENFORCE)


@contextmanager
def mode(webhook: Deployment, **config: Any) -> Iterator[None]:
    """Run the block with serve restarted on ENFORCE + ``config``; back to ENFORCE afterwards."""
    webhook.switch_mode({**ENFORCE, **config})
    try:
        yield
    finally:
        webhook.switch_mode(ENFORCE)


# ------------------------------------------------------------------------- mirror Pods


def mirror_pod(cluster: Cluster, webhook: Deployment, command: list[str]) -> dict[str, Any]:
    name = f"kube-apiserver-{NODE_NAME}-{uuid.uuid4().hex[:6]}"
    pod = cluster.mirror_pod(name, command)
    pod["metadata"]["labels"] = {"component": "kube-apiserver", "tier": "control-plane"}
    volumes, mounts = P.apiserver_volumes()
    pod["spec"]["volumes"] = volumes
    pod["spec"]["containers"][0]["volumeMounts"] = mounts
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["priorityClassName"] = "system-node-critical"
    webhook.cleanup.append(("pod", name, "kube-system"))
    return pod


def test_compliant_mirror_pod_is_created(webhook: Deployment, cluster: Cluster) -> None:
    pod = mirror_pod(cluster, webhook, P.apiserver_command())
    out = kubectl_apply(cluster, pod, user="node", verb="create")
    assert out.returncode == 0, out.stderr
    assert exists(cluster, "pod", pod["metadata"]["name"], "kube-system")


def test_mirror_pod_without_audit_policy_file_is_refused_in_enforce(webhook: Deployment, cluster: Cluster) -> None:
    before = webhook.server.requests_total(kind="Pod", verdict="deny")
    pod = mirror_pod(cluster, webhook, P.apiserver_command(audit_policy_file=None))
    out = kubectl_apply(cluster, pod, user="node", verb="create")
    assert out.returncode != 0
    assert f'admission webhook "{WEBHOOK_MIRROR_PODS}" denied the request' in out.stderr, out.stderr
    assert "--audit-policy-file" in denial_message(out.stderr)
    assert not exists(cluster, "pod", pod["metadata"]["name"], "kube-system")
    assert webhook.server.requests_total(kind="Pod", verdict="deny") == before + 1


def test_mirror_pod_without_audit_policy_file_is_allowed_with_warnings_in_warn(
    webhook: Deployment, cluster: Cluster
) -> None:
    pod = mirror_pod(cluster, webhook, P.apiserver_command(audit_policy_file=None))
    with mode(webhook, mode="warn"):
        out = kubectl_apply(cluster, pod, user="node", verb="create")
    assert out.returncode == 0, out.stderr
    warnings = warnings_of(out.stderr)
    assert warnings, out.stderr
    assert any("--audit-policy-file" in w for w in warnings), warnings
    assert all(len(w) <= 120 for w in warnings), warnings
    assert exists(cluster, "pod", pod["metadata"]["name"], "kube-system")


def test_mirror_pod_deletion_never_reaches_the_webhook(webhook: Deployment, cluster: Cluster) -> None:
    pod = mirror_pod(cluster, webhook, P.apiserver_command())
    assert kubectl_apply(cluster, pod, user="node", verb="create").returncode == 0
    before = webhook.server.requests_total()
    out = cluster.kubectl(
        "delete", "pod", pod["metadata"]["name"], "-n", "kube-system", "--grace-period=0", "--force", user="node"
    )
    assert out.returncode == 0, out.stderr
    assert webhook.server.requests_total() == before


# ------------------------------------------------------------------------- ratchet


def test_ratchet_allows_relabelling_a_noncompliant_policy_but_not_weakening_it(
    webhook: Deployment, cluster: Cluster
) -> None:
    name, ns = unique("legacy-policy"), webhook.namespace
    # a policy that was already there before auditwarden (created while only warning)
    with mode(webhook, mode="warn"):
        out = kubectl_apply(cluster, policy_configmap(name, ns, P.COVERS_2_PODS_RBAC), verb="create")
        assert out.returncode == 0, out.stderr
    with mode(webhook, mode="ratchet"):
        # a CREATE of the same content is judged as in enforce
        again = kubectl_apply(cluster, policy_configmap(unique("new-policy"), ns, P.COVERS_2_PODS_RBAC), verb="create")
        assert again.returncode != 0 and "denied the request" in again.stderr, again.stderr
        # relabelling: the policy does not change, so it does not get worse
        relabel = cluster.kubectl("label", "configmap", name, "-n", ns, "owner=platform-team")
        assert relabel.returncode == 0, relabel.stderr
        # weakening: rbac-changes is lost (2 -> 1 categories)
        weaker = kubectl_apply(cluster, policy_configmap(name, ns, P.COVERS_1, owner="platform-team"))
        assert weaker.returncode != 0
        message = denial_message(weaker.stderr)
        assert "rbac-changes" in message, message
    stored = json.loads(cluster.kubectl("get", "configmap", name, "-n", ns, "-o", "json", check=True).stdout)
    assert stored["metadata"]["labels"]["owner"] == "platform-team"
    assert stored["data"]["policy.yaml"] == P.COVERS_2_PODS_RBAC


# ------------------------------------------------------------------------- exemptions


def audit_annotations(cluster: Cluster, since: int, name: str, verb: str, timeout: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        for event in cluster.audit_events(since):
            ref = event.get("objectRef") or {}
            if ref.get("resource") == "configmaps" and ref.get("name") == name and event.get("verb") == verb:
                annotations: Mapping[str, str] = event.get("annotations") or {}
                if event.get("stage") == "ResponseComplete":
                    return dict(annotations)
        if time.monotonic() > deadline:
            raise AssertionError(f"no ResponseComplete audit event for {verb} configmaps/{name}")
        time.sleep(0.2)


def test_break_glass_group_pushes_a_noncompliant_change_and_the_audit_log_records_it(
    webhook: Deployment, cluster: Cluster
) -> None:
    name, ns = unique("policy"), webhook.namespace
    assert kubectl_apply(cluster, policy_configmap(name, ns, P.COVERS_ALL), verb="create").returncode == 0
    weak = policy_configmap(name, ns, P.COVERS_2)
    # an ordinary cluster-admin may not ...
    refused = kubectl_apply(cluster, weak)
    assert refused.returncode != 0 and "denied the request" in refused.stderr, refused.stderr
    # ... the break-glass group may, with a warning, and the cluster's audit log says who and why
    since = cluster.audit_log_offset()
    out = kubectl_apply(cluster, weak, user="breakglass")
    assert out.returncode == 0, out.stderr
    assert warnings_of(out.stderr), out.stderr
    stored = json.loads(cluster.kubectl("get", "configmap", name, "-n", ns, "-o", "json", check=True).stdout)
    assert stored["data"]["policy.yaml"] == P.COVERS_2
    annotations = audit_annotations(cluster, since, name, "patch")
    exempted = {k: v for k, v in annotations.items() if k.endswith("auditwarden.io/exempted-by")}
    assert exempted, annotations
    assert list(exempted) == ["configmaps.auditwarden.io/exempted-by"], exempted
    assert BREAK_GLASS_GROUP in next(iter(exempted.values())), exempted
    assert any(k.endswith("auditwarden.io/verdict") for k in annotations), annotations


def test_an_annotation_on_the_object_does_not_exempt_it(webhook: Deployment, cluster: Cluster) -> None:
    obj = policy_configmap(unique("policy"), webhook.namespace, P.COVERS_2)
    obj["metadata"]["annotations"] = {"auditwarden.io/exempt": "true", "auditwarden.io/exempted-by": "me"}
    out = kubectl_apply(cluster, obj, verb="create")
    assert out.returncode != 0 and "denied the request" in out.stderr, out.stderr
