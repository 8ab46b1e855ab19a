"""The chart with default values (service mode) against the real apiserver (issue 5 §2).

No pod can run here (there is no kubelet), so the Deployment never becomes ready and the
webhook's Service has no endpoints: while a default release is installed, a write of an
audit-related ConfigMap outside the release namespace fails closed.  These tests therefore only
write unrelated objects (or use server-side dry runs) and always uninstall; each release has a
name and namespace of its own, so the tests do not depend on their order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import policies as P
from tests.e2e.cluster import Cluster
from tests.e2e.webhook_server import (
    WEBHOOK_CONFIGMAPS,
    HelmRelease,
    configmap,
    exists,
    kubectl_apply,
    policy_configmap,
)

EXPECTED_KINDS = {
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "ValidatingWebhookConfiguration",
}


@contextmanager
def installed(cluster: Cluster, workdir: Path, name: str, namespace: str) -> Iterator[HelmRelease]:
    with HelmRelease(cluster, name, namespace, workdir).installed_release({}) as helm:  # default values
        yield helm


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRelease]:
    with installed(cluster, tmp_path_factory.mktemp("helm-default"), "auditwarden", "aw-e2e-service-mode") as helm:
        yield helm


def get_json(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    args = ["get", kind, name, "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    out: dict[str, Any] = json.loads(cluster.kubectl(*args, check=True).stdout)
    return out


def generated_tls(cluster: Cluster, helm: HelmRelease) -> tuple[dict[str, str], set[str]]:
    """(data of the chart-generated TLS Secret, caBundles of the webhook configuration)."""
    secret = next(d for d in helm.manifest() if d["kind"] == "Secret" and d.get("type") == "kubernetes.io/tls")
    data = get_json(cluster, "secret", secret["metadata"]["name"], helm.namespace)["data"]
    vwc = get_json(cluster, "validatingwebhookconfiguration", helm.webhook_configuration_name())
    return data, {h["clientConfig"]["caBundle"] for h in vwc["webhooks"]}


def test_install_with_default_values_creates_every_rendered_object(release: HelmRelease, cluster: Cluster) -> None:
    status = json.loads(release.run("status", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    manifest = release.manifest()
    assert {d["kind"] for d in manifest} >= EXPECTED_KINDS, {d["kind"] for d in manifest}
    for doc in manifest:
        kind, name = doc["kind"], doc["metadata"]["name"]
        namespaced = kind != "ValidatingWebhookConfiguration"
        got = get_json(cluster, kind.lower(), name, release.namespace if namespaced else None)
        assert got["kind"] == kind and got["metadata"]["name"] == name
        # the apiserver stored what was rendered (server-side defaulting aside)
        assert got["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == release.name, got["metadata"]


def test_webhook_configuration_points_at_the_service_with_the_generated_ca(
    release: HelmRelease, cluster: Cluster
) -> None:
    data, bundles = generated_tls(cluster, release)
    assert bundles == {data["ca.crt"]}
    vwc = get_json(cluster, "validatingwebhookconfiguration", release.webhook_configuration_name())
    for hook in vwc["webhooks"]:
        svc = hook["clientConfig"]["service"]
        assert svc["namespace"] == release.namespace and svc["path"] == "/validate"
        assert exists(cluster, "service", svc["name"], release.namespace)
        assert release.namespace in hook["namespaceSelector"]["matchExpressions"][0]["values"]
        assert hook["matchConditions"], hook  # 1.37 >= 1.30: CEL scoping


def test_without_endpoints_protected_writes_fail_closed_and_unrelated_ones_work(
    release: HelmRelease, cluster: Cluster
) -> None:
    refused = kubectl_apply(
        cluster, policy_configmap("would-be-policy", "default", P.COVERS_ALL), "--dry-run=server", verb="create"
    )
    assert refused.returncode != 0
    assert f'failed calling webhook "{WEBHOOK_CONFIGMAPS}"' in refused.stderr, refused.stderr
    plain = configmap("plain-settings", "default", {"key": "value"})
    assert kubectl_apply(cluster, plain, verb="create").returncode == 0
    assert cluster.kubectl("delete", "configmap", "plain-settings", "-n", "default").returncode == 0
    # the release namespace is always exempt
    own = kubectl_apply(cluster, policy_configmap("own-policy", release.namespace, P.COVERS_2), "--dry-run=server")
    assert own.returncode == 0, own.stderr


def test_upgrade_keeps_the_generated_certificate(release: HelmRelease, cluster: Cluster) -> None:
    before_data, before_bundles = generated_tls(cluster, release)
    release.upgrade({"replicaCount": 3, "config": {"profile": "strict"}})
    status = json.loads(release.run("status", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert status["version"] >= 2 and status["info"]["status"] == "deployed"
    deployment = next(d for d in release.manifest() if d["kind"] == "Deployment")
    assert get_json(cluster, "deployment", deployment["metadata"]["name"], release.namespace)["spec"]["replicas"] == 3
    after_data, after_bundles = generated_tls(cluster, release)
    assert after_data == before_data
    assert after_bundles == before_bundles


def test_uninstall_removes_the_webhook_configuration(cluster: Cluster, tmp_path: Path) -> None:
    with installed(cluster, tmp_path, "auditwarden-e2e-uninstall", "aw-e2e-uninstall") as helm:
        vwc = helm.webhook_configuration_name()
        assert exists(cluster, "validatingwebhookconfiguration", vwc)
        secret = next(d for d in helm.manifest() if d["kind"] == "Secret")["metadata"]["name"]
        out = helm.uninstall()
        assert out.returncode == 0, out.stderr
        assert not exists(cluster, "validatingwebhookconfiguration", vwc)
        assert not exists(cluster, "secret", secret, "aw-e2e-uninstall")
