"""`auditwarden fix` against the real kube-apiserver (issue 12): refused with the concrete rule, then admitted.

kube-apiserver sends the weak policy ConfigMap to ``auditwarden serve`` (enforce, baseline; the
chart in url mode) and refuses it with the webhook's message, which names the rule(s) to add and
where. ``auditwarden fix --write`` repairs the file; the ConfigMap made from the repaired file is
then admitted by the same apiserver, and the repaired policy is one kube-apiserver would load.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.e2e import policies as P
from tests.e2e.cluster import Cluster
from tests.e2e.webhook_server import (
    WEBHOOK_CONFIGMAPS,
    Deployment,
    DeployWebhook,
    denial_message,
    exists,
    kubectl_apply,
    policy_configmap,
    unique,
)
from webhook.cli import main
from webhook.core.policy import load_policy

CONFIG = {"mode": "enforce", "profile": "baseline", "kubernetesVersion": "1.37"}


@pytest.fixture(scope="module")
def webhook(deploy_webhook: DeployWebhook) -> Deployment:
    return deploy_webhook("fix", CONFIG)


def test_a_weak_policy_is_refused_with_the_rule_to_add_and_the_fixed_one_is_admitted(
    webhook: Deployment, cluster: Cluster, tmp_path: Path
) -> None:
    name = unique("fix-me")
    refused = kubectl_apply(cluster, policy_configmap(name, webhook.namespace, P.COVERS_2), verb="create")
    assert refused.returncode != 0
    assert f'admission webhook "{WEBHOOK_CONFIGMAPS}" denied the request' in refused.stderr, refused.stderr
    message = denial_message(refused.stderr)
    # COVERS_2: rule 0 (None for get/list/watch) hides the reads; the repair goes right before it
    assert re.search(r"Fix: (remove .*; )?add before rule 0: - level: \w+, ", message), message
    assert not exists(cluster, "configmap", name, webhook.namespace)

    policy = tmp_path / "policy.yaml"
    policy.write_text(P.COVERS_2)
    result = CliRunner().invoke(main, ["fix", "--write", str(policy)])
    assert result.exit_code == 0, result.output
    repaired = policy.read_text()
    assert repaired != P.COVERS_2 and "# auditwarden fix:" in repaired
    load_policy(repaired)  # loads as kube-apiserver loads it (the oracle tests prove the loader)

    admitted = kubectl_apply(cluster, policy_configmap(name, webhook.namespace, repaired), verb="create")
    assert admitted.returncode == 0, admitted.stderr
    assert exists(cluster, "configmap", name, webhook.namespace)
