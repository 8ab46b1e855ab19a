"""Escaped policies are judged, against the real kube-apiserver and the chart's matchConditions (issue 14).

``apiVersion: "audit\\x2ek8s.io/v1"`` is ``audit.k8s.io/v1`` to every YAML reader. The chart's CEL
condition must send such a ConfigMap to the webhook although its raw text lacks ``audit.k8s.io``,
and auditwarden must judge it by its decoded content. Ordinary ConfigMaps with backslashes stay
away from the webhook, and the largest ConfigMaps pass the condition within CEL's cost limit (an
error there would refuse the write: failurePolicy Fail).
"""

from __future__ import annotations

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
    unique,
    warnings_of,
)

CONFIG = {"mode": "enforce", "profile": "baseline", "kubernetesVersion": "1.37"}
PLAIN = "apiVersion: audit.k8s.io/v1"
ESCAPED = 'apiVersion: "audit\\x2ek8s.io/v1"'


def escaped(policy: str) -> str:
    assert PLAIN in policy
    out = policy.replace(PLAIN, ESCAPED)
    assert "audit.k8s.io" not in out
    return out


@pytest.fixture(scope="module")
def webhook(deploy_webhook: DeployWebhook) -> Deployment:
    return deploy_webhook("escaped", CONFIG)


def test_an_unlabelled_escaped_weak_policy_is_refused_naming_the_categories(
    webhook: Deployment, cluster: Cluster
) -> None:
    name = unique("escaped-weak")
    out = kubectl_apply(cluster, configmap(name, webhook.namespace, {"policy.yaml": escaped(P.COVERS_2)}),
                        verb="create")  # fmt: skip
    assert out.returncode != 0
    assert f'admission webhook "{WEBHOOK_CONFIGMAPS}" denied the request' in out.stderr, out.stderr
    message = denial_message(out.stderr)
    for category in P.COVERS_2_MISSING:
        assert category in message, (category, message)
    assert not exists(cluster, "configmap", name, webhook.namespace)


def test_the_escaped_form_of_the_same_policy_is_the_same_policy_and_weakening_it_is_refused(
    webhook: Deployment, cluster: Cluster
) -> None:
    name = unique("escaped-update")
    obj = configmap(name, webhook.namespace, {"policy.yaml": P.COVERS_ALL})
    out = kubectl_apply(cluster, obj, verb="create")
    assert out.returncode == 0, out.stderr
    assert any(w.startswith("recommended: label auditwarden.io/kind=audit-policy") for w in warnings_of(out.stderr))
    obj["data"] = {"policy.yaml": escaped(P.COVERS_ALL)}
    out = kubectl_apply(cluster, obj)
    assert out.returncode == 0, out.stderr  # not "configuration-dropped": the same policy
    obj["data"] = {"policy.yaml": escaped(P.COVERS_2)}
    out = kubectl_apply(cluster, obj)
    assert out.returncode != 0 and "denied the request" in out.stderr, out.stderr
    assert "categories-below-minimum" in out.stderr or "event categories" in denial_message(out.stderr)


def test_ordinary_configmaps_with_backslashes_never_reach_the_webhook(webhook: Deployment, cluster: Cluster) -> None:
    before = webhook.server.requests_total()
    data = {
        "run.sh": "#!/bin/sh\nexec /bin/server \\\n  --port=8080 \\\n  --verbose\nprintf '%s\\n' done\n",
        "nginx.conf": "location ~ \\.php$ {\n  fastcgi_pass 127.0.0.1:9000;\n}\n",
        "haproxy.cfg": "tcp-check send SENTINEL\\ get-master-addr-by-name\\ mymaster\\r\\n\n",
    }
    name = unique("ordinary")
    obj = configmap(name, webhook.namespace, data)
    assert kubectl_apply(cluster, obj, verb="create").returncode == 0
    obj["data"] = {**data, "extra": "if ! test -f x; then exit 1; fi\n"}
    assert kubectl_apply(cluster, obj).returncode == 0
    assert cluster.kubectl("delete", "configmap", name, "-n", webhook.namespace).returncode == 0
    assert webhook.server.requests_total() == before


def test_the_largest_configmaps_pass_the_condition_within_the_cel_cost_limit(
    webhook: Deployment, cluster: Cluster
) -> None:
    """An UPDATE evaluates the condition on both objects; none of these is sent, so every test runs."""
    before = webhook.server.requests_total()
    cases = {
        "one-mib": {"v": "x = 1\n" * ((1024 * 1024 - 4096) // 6)},
        "precise": {"v": ("if ! a; then b; fi # x\\y\n" * (190 * 1024 // 26))},
        # 2048 values of 95 characters: the precise tests on every value, 190 KiB in all (the worst case)
        "many-keys": {f"k{i}": ("# x\\y if !a " * 8)[:94] + "\n" for i in range(2048)},
        "plain-keys": {f"k{i}": "x = 1" for i in range(30000)},
    }
    for label, data in cases.items():
        name = unique(label)
        obj = configmap(name, webhook.namespace, data)
        out = kubectl_apply(cluster, obj, verb="create")
        assert out.returncode == 0, (label, out.stderr[-2000:])
        obj["metadata"]["labels"] = {"touched": "yes"}
        out = kubectl_apply(cluster, obj, verb="replace")
        assert out.returncode == 0, (label, out.stderr[-2000:])
        assert cluster.kubectl("delete", "configmap", name, "-n", webhook.namespace).returncode == 0
    assert webhook.server.requests_total() == before
