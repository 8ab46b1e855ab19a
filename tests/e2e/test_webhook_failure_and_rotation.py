"""failurePolicy with the webhook down, and certificate rotation while requests flow (issue 5 §3).

The chart's ConfigMap webhook fails closed (``failurePolicy: Fail``); ``helm upgrade --set
webhook.configMaps.failurePolicy=Ignore`` makes it fail open.  Unrelated ConfigMaps never reach
the webhook, so they keep working either way.  Rotation replaces both the serving certificate
(on disk, picked up by ``serve`` without a restart) and the CA bundle (``helm upgrade``), in the
order that never leaves the apiserver distrusting what is served: add the new CA, switch the
certificate, drop the old CA.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable

import pytest

from tests.e2e import policies as P
from tests.e2e.cluster import Cluster
from tests.e2e.webhook_server import (
    WEBHOOK_CONFIGMAPS,
    Deployment,
    DeployWebhook,
    configmap,
    denial_message,
    exists,
    kubectl_apply,
    policy_configmap,
    unique,
)

CONFIG = {"mode": "enforce", "profile": "baseline", "kubernetesVersion": "1.37"}


@pytest.fixture(scope="module")
def webhook(deploy_webhook: DeployWebhook) -> Deployment:
    return deploy_webhook("failure", CONFIG)


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting until {what}")
        time.sleep(0.3)


def failure_policy(cluster: Cluster, webhook: Deployment) -> str:
    vwc = json.loads(
        cluster.kubectl(
            "get", "validatingwebhookconfiguration", webhook.helm.webhook_configuration_name(), "-o", "json", check=True
        ).stdout
    )
    return str(next(h for h in vwc["webhooks"] if h["name"] == WEBHOOK_CONFIGMAPS)["failurePolicy"])


def unrelated_configmap_works(cluster: Cluster, namespace: str) -> None:
    name = unique("app-settings")
    out = kubectl_apply(cluster, configmap(name, namespace, {"LOG_LEVEL": "debug"}), verb="create")
    assert out.returncode == 0, out.stderr
    assert cluster.kubectl("delete", "configmap", name, "-n", namespace).returncode == 0


# ------------------------------------------------------------------------- webhook down


def test_webhook_down_with_failure_policy_fail_refuses_protected_changes(webhook: Deployment, cluster: Cluster) -> None:
    assert failure_policy(cluster, webhook) == "Fail"
    name = unique("policy")
    webhook.server.stop()
    try:
        out = kubectl_apply(cluster, policy_configmap(name, webhook.namespace, P.COVERS_ALL), verb="create")
        assert out.returncode != 0
        assert f'failed calling webhook "{WEBHOOK_CONFIGMAPS}"' in out.stderr, out.stderr
        assert not exists(cluster, "configmap", name, webhook.namespace)
        unrelated_configmap_works(cluster, webhook.namespace)
        unrelated_configmap_works(cluster, "kube-system")
    finally:
        webhook.server.start()


def test_webhook_down_with_failure_policy_ignore_lets_protected_changes_pass(
    webhook: Deployment, cluster: Cluster
) -> None:
    name = unique("policy")
    webhook.helm.upgrade(webhook.chart_values(webhook={"configMaps": {"failurePolicy": "Ignore"}}))
    try:
        assert failure_policy(cluster, webhook) == "Ignore"
        webhook.server.stop()
        obj = policy_configmap(name, webhook.namespace, P.COVERS_2)  # would be refused if the webhook answered

        def passes() -> bool:  # until the apiserver's informer has the new failurePolicy
            return kubectl_apply(cluster, obj, verb="create").returncode == 0

        eventually(passes, "a protected ConfigMap passes with failurePolicy Ignore")
        assert exists(cluster, "configmap", name, webhook.namespace)
        unrelated_configmap_works(cluster, webhook.namespace)
    finally:
        webhook.server.start()
        webhook.helm.upgrade(webhook.values)
    assert failure_policy(cluster, webhook) == "Fail"


# ------------------------------------------------------------------------- certificate rotation


class Prober(threading.Thread):
    """Keeps sending a bad policy (dry run) and records how each attempt ended."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.obj = policy_configmap("rotation-probe", namespace, P.COVERS_2)
        self.stop_event = threading.Event()
        self.outcomes: list[str] = []

    def run(self) -> None:
        while not self.stop_event.is_set():
            out = kubectl_apply(self.cluster, self.obj, "--dry-run=server", verb="create")
            if out.returncode == 0:
                self.outcomes.append("allowed")
            elif "denied the request" in out.stderr:
                self.outcomes.append("denied")
            else:
                self.outcomes.append("error: " + out.stderr.strip()[-300:])

    def finish(self) -> list[str]:
        self.stop_event.set()
        self.join(timeout=60)
        return self.outcomes


def validated(cluster: Cluster, namespace: str) -> None:
    """One bad policy refused by the webhook's verdict, one good policy allowed (dry run)."""
    bad = kubectl_apply(cluster, policy_configmap(unique("bad"), namespace, P.COVERS_2), "--dry-run=server")
    assert bad.returncode != 0
    assert "covers 2 of 6" in denial_message(bad.stderr)
    good = kubectl_apply(cluster, policy_configmap(unique("good"), namespace, P.COVERS_3), "--dry-run=server")
    assert good.returncode == 0, good.stderr


def ca_bundle_in_cluster(cluster: Cluster, webhook: Deployment) -> bytes:
    vwc = json.loads(
        cluster.kubectl(
            "get", "validatingwebhookconfiguration", webhook.helm.webhook_configuration_name(), "-o", "json", check=True
        ).stdout
    )
    bundles = {h["clientConfig"]["caBundle"] for h in vwc["webhooks"]}
    assert len(bundles) == 1
    return base64.b64decode(bundles.pop())


def test_certificate_rotation_keeps_requests_validated(webhook: Deployment, cluster: Cluster) -> None:
    ns, server = webhook.namespace, webhook.server
    old_ca = server.ca_pem
    old_fingerprint = server.served_certificate_sha256()
    validated(cluster, ns)
    prober = Prober(cluster, ns)
    prober.start()
    try:
        # 1. trust old + new CA
        new_ca = server.rotate("certs-rotated").read_bytes()
        both = base64.b64encode(old_ca + new_ca).decode()
        webhook.helm.upgrade(webhook.chart_values(tls={"caBundle": both}))
        assert ca_bundle_in_cluster(cluster, webhook) == old_ca + new_ca
        time.sleep(3)  # let the apiserver's webhook informer see the new bundle
        validated(cluster, ns)
        # 2. serve the new certificate (the files change on disk; no restart)
        server.serve_new_certificate("certs-rotated")
        eventually(lambda: server.served_certificate_sha256() != old_fingerprint, "serve presents the new certificate")
        validated(cluster, ns)
        # 3. drop the old CA
        webhook.helm.upgrade(webhook.chart_values(tls={"caBundle": base64.b64encode(new_ca).decode()}))
        assert ca_bundle_in_cluster(cluster, webhook) == new_ca
        time.sleep(3)
        validated(cluster, ns)
    finally:
        outcomes = prober.finish()
    assert len(outcomes) >= 5, f"the prober sent only {len(outcomes)} requests"
    assert set(outcomes) == {"denied"}, [o for o in outcomes if o != "denied"][:5]
    webhook.values = webhook.chart_values(tls={"caBundle": base64.b64encode(new_ca).decode()})
    assert server.ca_pem == new_ca
