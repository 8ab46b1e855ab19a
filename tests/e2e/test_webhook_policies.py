"""kube-apiserver calls auditwarden for audit-policy ConfigMaps and kubeadm-config (issue 5 §3).

``auditwarden serve`` (enforce, baseline) runs on loopback; the chart is installed in url mode;
every request below is a real ``kubectl`` call against the real apiserver, which sends the
AdmissionReview, verifies the TLS certificate against the chart's caBundle and applies the
verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

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
    warnings_of,
)

CONFIG = {"mode": "enforce", "profile": "baseline", "kubernetesVersion": "1.37"}


@pytest.fixture(scope="module")
def webhook(deploy_webhook: DeployWebhook) -> Deployment:
    return deploy_webhook("policies", CONFIG)


# ------------------------------------------------------------------------- audit policies


def test_policy_covering_three_categories_is_created(webhook: Deployment, cluster: Cluster) -> None:
    name = unique("policy-3")
    out = kubectl_apply(cluster, policy_configmap(name, webhook.namespace, P.COVERS_3), verb="create")
    assert out.returncode == 0, out.stderr
    assert exists(cluster, "configmap", name, webhook.namespace)


def test_policy_covering_every_category_is_created_without_warnings(webhook: Deployment, cluster: Cluster) -> None:
    name = unique("policy-all")
    out = kubectl_apply(cluster, policy_configmap(name, webhook.namespace, P.COVERS_ALL), verb="create")
    assert out.returncode == 0, out.stderr
    assert warnings_of(out.stderr) == []


def test_policy_covering_two_categories_is_refused(webhook: Deployment, cluster: Cluster) -> None:
    name = unique("policy-2")
    out = kubectl_apply(cluster, policy_configmap(name, webhook.namespace, P.COVERS_2), verb="create")
    assert out.returncode != 0
    assert f'admission webhook "{WEBHOOK_CONFIGMAPS}" denied the request' in out.stderr, out.stderr
    message = denial_message(out.stderr)
    for category in P.COVERS_2_MISSING:  # the missing categories, by id ...
        assert category in message, (category, message)
    assert P.COVERS_2_HIDING_RULE in message, message  # ... and the rule that hid them
    assert "2 of 6" in message, message
    assert not exists(cluster, "configmap", name, webhook.namespace)


def test_dry_run_of_a_bad_policy_is_refused_with_the_same_message_and_nothing_is_stored(
    webhook: Deployment, cluster: Cluster
) -> None:
    name = unique("dry-bad")
    obj = policy_configmap(name, webhook.namespace, P.COVERS_2)
    dry = kubectl_apply(cluster, obj, "--dry-run=server")
    assert dry.returncode != 0
    assert not exists(cluster, "configmap", name, webhook.namespace)
    real = kubectl_apply(cluster, obj)
    assert real.returncode != 0
    assert denial_message(dry.stderr) == denial_message(real.stderr)
    assert not exists(cluster, "configmap", name, webhook.namespace)


def test_dry_run_of_a_good_policy_succeeds_and_nothing_is_stored(webhook: Deployment, cluster: Cluster) -> None:
    name = unique("dry-good")
    before = webhook.server.requests_total(kind="ConfigMap", operation="CREATE")
    dry = kubectl_apply(cluster, policy_configmap(name, webhook.namespace, P.COVERS_3), "--dry-run=server")
    assert dry.returncode == 0, dry.stderr
    assert "(server dry run)" in dry.stdout, dry.stdout
    assert not exists(cluster, "configmap", name, webhook.namespace)
    # the apiserver did ask the webhook (a dry run is judged, sideEffects: None)
    assert webhook.server.requests_total(kind="ConfigMap", operation="CREATE") == before + 1


def test_deleting_a_policy_configmap_is_judged(webhook: Deployment, cluster: Cluster) -> None:
    """DELETE is sent with the oldObject: removing the cluster's audit policy is refused in enforce."""
    name = unique("policy-del")
    assert (
        kubectl_apply(cluster, policy_configmap(name, webhook.namespace, P.COVERS_ALL), verb="create").returncode == 0
    )
    out = cluster.kubectl("delete", "configmap", name, "-n", webhook.namespace)
    assert out.returncode != 0
    assert "denied the request" in out.stderr, out.stderr
    assert exists(cluster, "configmap", name, webhook.namespace)


# ------------------------------------------------------------------------- kubeadm-config


@pytest.fixture
def kubeadm_config(webhook: Deployment, cluster: Cluster) -> Iterator[dict[str, object]]:
    """A compliant kube-system/kubeadm-config (deleted after the release is gone)."""
    obj = configmap("kubeadm-config", "kube-system", {"ClusterConfiguration": P.cluster_configuration()})
    if ("configmap", "kubeadm-config", "kube-system") not in webhook.cleanup:
        webhook.cleanup.append(("configmap", "kubeadm-config", "kube-system"))
    out = kubectl_apply(cluster, obj)
    assert out.returncode == 0, out.stderr
    yield obj


def _edited(**changes: str | None) -> dict[str, object]:
    return configmap("kubeadm-config", "kube-system", {"ClusterConfiguration": P.cluster_configuration(**changes)})


def test_kubeadm_config_without_audit_log_path_is_refused(kubeadm_config: object, cluster: Cluster) -> None:
    out = kubectl_apply(cluster, _edited(audit_log_path=None))
    assert out.returncode != 0
    message = denial_message(out.stderr)
    assert "--audit-log-path" in message, message
    assert "kube-system/kubeadm-config" in message, message
    stored = cluster.kubectl("get", "configmap", "kubeadm-config", "-n", "kube-system", "-o", "yaml", check=True).stdout
    assert "audit-log-path" in stored


def test_kubeadm_config_lowering_maxage_below_30_is_refused(kubeadm_config: object, cluster: Cluster) -> None:
    out = kubectl_apply(cluster, _edited(audit_log_maxage="7"))
    assert out.returncode != 0
    message = denial_message(out.stderr)
    assert "--audit-log-maxage" in message, message
    assert "7" in message, message


def test_kubeadm_config_raising_maxage_is_allowed(kubeadm_config: object, cluster: Cluster) -> None:
    out = kubectl_apply(cluster, _edited(audit_log_maxage="90"))
    assert out.returncode == 0, out.stderr
    stored = cluster.kubectl("get", "configmap", "kubeadm-config", "-n", "kube-system", "-o", "yaml", check=True).stdout
    assert "value: '90'" in stored or 'value: "90"' in stored, stored


def test_kubeadm_config_whose_duplicate_maxage_ends_in_0_is_refused(kubeadm_config: object, cluster: Cluster) -> None:
    """kubeadm 1.37 appends extraArgs in the order written and keeps duplicates (ArgumentsToCommand), so
    kube-apiserver's pflag takes the last one: "30" then "0" deploys --audit-log-maxage=0 (issue 15)."""
    cc = yaml.safe_load(P.cluster_configuration())
    cc["apiServer"]["extraArgs"].append({"name": "audit-log-maxage", "value": "0"})
    edited = configmap("kubeadm-config", "kube-system", {"ClusterConfiguration": yaml.safe_dump(cc, sort_keys=False)})
    out = kubectl_apply(cluster, edited)
    assert out.returncode != 0, out.stdout
    message = denial_message(out.stderr)
    assert "--audit-log-maxage=0 is below the CIS/STIG minimum" in message, message
    stored = cluster.kubectl("get", "configmap", "kubeadm-config", "-n", "kube-system", "-o", "yaml", check=True).stdout
    assert "value: '0'" not in stored and 'value: "0"' not in stored, stored


def test_kubeadm_config_whose_duplicate_maxage_ends_in_30_is_allowed(kubeadm_config: object, cluster: Cluster) -> None:
    """The mirror image: "7" then "30" deploys --audit-log-maxage=30, which passes."""
    cc = yaml.safe_load(P.cluster_configuration(audit_log_maxage="7"))
    cc["apiServer"]["extraArgs"].append({"name": "audit-log-maxage", "value": "30"})
    edited = configmap("kubeadm-config", "kube-system", {"ClusterConfiguration": yaml.safe_dump(cc, sort_keys=False)})
    out = kubectl_apply(cluster, edited)
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------------- scoping


def test_unrelated_configmaps_never_reach_the_webhook(webhook: Deployment, cluster: Cluster) -> None:
    """matchConditions keep ordinary ConfigMaps away from the webhook: its request counter does not move."""
    ns = webhook.namespace
    before = webhook.server.requests_total()
    for namespace in (ns, "kube-system", "default"):
        name = unique("settings")
        obj = configmap(name, namespace, {"app.properties": "color=blue\n", "replicas": "3"})
        assert kubectl_apply(cluster, obj, verb="create").returncode == 0
        obj["data"] = {"app.properties": "color=green\n"}
        assert kubectl_apply(cluster, obj).returncode == 0
        assert cluster.kubectl("label", "configmap", name, "-n", namespace, "team=web").returncode == 0
        assert cluster.kubectl("delete", "configmap", name, "-n", namespace).returncode == 0
    assert webhook.server.requests_total() == before
    # control: a relevant ConfigMap does reach it
    assert kubectl_apply(cluster, policy_configmap(unique("policy"), ns, P.COVERS_3), verb="create").returncode == 0
    assert webhook.server.requests_total(kind="ConfigMap", operation="CREATE", verdict="allow") >= 1
    assert webhook.server.requests_total() == before + 1


def test_release_namespace_is_exempt(webhook: Deployment, cluster: Cluster) -> None:
    """The chart's namespaceSelector always excludes its own namespace (no deadlock when the webhook is down)."""
    out = kubectl_apply(
        cluster, policy_configmap(unique("policy-2"), webhook.helm.namespace, P.COVERS_2), verb="create"
    )
    assert out.returncode == 0, out.stderr


def test_the_apiserver_verified_the_certificate_against_the_ca_bundle(webhook: Deployment, tmp_path: Path) -> None:
    """Sanity: the caBundle in the cluster is exactly the CA of the certificate serve presents."""
    import base64
    import json

    vwc = json.loads(
        webhook.cluster.kubectl(
            "get", "validatingwebhookconfiguration", webhook.helm.webhook_configuration_name(), "-o", "json", check=True
        ).stdout
    )
    for hook in vwc["webhooks"]:
        assert hook["clientConfig"]["url"] == webhook.server.url
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == webhook.server.ca_pem
        assert hook["sideEffects"] == "None"
