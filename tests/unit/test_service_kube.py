"""policySources: finding the policy path of a Pod, picking the policy in a ConfigMap, the TTL cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.reviews import GOOD_POLICY, WEAK_POLICY, apiserver_pod
from webhook.service.config import PolicySource
from webhook.service.kube import PolicySourceError, PolicySources, audit_policy_file, pick_policy


def pod_with(command: list[str] | None = None, args: list[str] | None = None) -> dict[str, Any]:
    pod = apiserver_pod()
    container = pod["spec"]["containers"][0]
    container["command"] = command or ["kube-apiserver"]
    if args is not None:
        container["args"] = args
    return pod


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (["kube-apiserver", "--audit-policy-file=/etc/a.yaml"], None, "/etc/a.yaml"),
        (["kube-apiserver", "--audit-policy-file", "/etc/b.yaml"], None, "/etc/b.yaml"),
        (["kube-apiserver"], ["--audit-policy-file=/etc/c.yaml"], "/etc/c.yaml"),
        (["/usr/local/bin/kube-apiserver", "--audit-policy-file=/x", "--audit-policy-file=/etc/last.yaml"], None,
         "/etc/last.yaml"),
        (["kube-apiserver", "--audit_policy_file=/etc/underscore.yaml"], None, "/etc/underscore.yaml"),
        (["kube-apiserver", "--audit-log-path=/var/log/a.log"], None, None),
        (["kube-apiserver", "--audit-policy-file="], None, None),
    ],
)  # fmt: skip
def test_audit_policy_file_of_a_pod(command: list[str], args: list[str] | None, expected: str | None) -> None:
    assert audit_policy_file(pod_with(command, args)) == expected


def test_audit_policy_file_of_something_else() -> None:
    assert audit_policy_file({"kind": "Pod", "spec": {"containers": [{"name": "web", "command": ["nginx"]}]}}) is None
    assert audit_policy_file({"kind": "Pod"}) is None


def test_pick_policy() -> None:
    src = PolicySource("kube-system", "audit-policy")
    assert pick_policy({"README": "see audit.k8s.io docs", "policy.yaml": GOOD_POLICY}, src) == GOOD_POLICY
    assert pick_policy({"a": "x", "b": WEAK_POLICY}, src) == WEAK_POLICY
    with pytest.raises(PolicySourceError, match="holds no audit policy"):
        pick_policy({"a": "x"}, src)
    keyed = PolicySource("kube-system", "audit-policy", "strict.yaml")
    assert pick_policy({"policy.yaml": GOOD_POLICY, "strict.yaml": WEAK_POLICY}, keyed) == WEAK_POLICY
    with pytest.raises(PolicySourceError, match=r"has no data key 'strict\.yaml'"):
        pick_policy({"policy.yaml": GOOD_POLICY}, keyed)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    def __init__(self) -> None:
        self.calls = 0
        self.result: Mapping[str, Any] | Exception = {"policy.yaml": GOOD_POLICY}

    def __call__(self, namespace: str, name: str, timeout: float) -> Mapping[str, Any]:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_ttl_cache_and_dry_run() -> None:
    src = PolicySource("kube-system", "audit-policy")
    clock, fetcher = Clock(), Fetcher()
    sources = PolicySources({"/p.yaml": src}, ttl_seconds=60, fetcher=fetcher, clock=clock)
    assert sources.source_for("/p.yaml") == src and sources.source_for("/other.yaml") is None
    assert sources.policy_text(src, dry_run=True) == (GOOD_POLICY, "fetched")
    assert sources.policy_text(src, dry_run=True) == (GOOD_POLICY, "fetched")
    assert fetcher.calls == 2  # dry runs never write the cache
    assert sources.policy_text(src, dry_run=False) == (GOOD_POLICY, "fetched")
    assert sources.policy_text(src, dry_run=True) == (GOOD_POLICY, "cache-hit")
    assert fetcher.calls == 3
    fetcher.result = {"policy.yaml": WEAK_POLICY}
    clock.now += 59
    assert sources.policy_text(src, dry_run=False)[0] == GOOD_POLICY
    clock.now += 2
    assert sources.policy_text(src, dry_run=False) == (WEAK_POLICY, "fetched")


def test_failures_are_cached_briefly() -> None:
    src = PolicySource("kube-system", "audit-policy")
    clock, fetcher = Clock(), Fetcher()
    fetcher.result = PolicySourceError("reading ConfigMap kube-system/audit-policy: HTTP 404 Not Found")
    sources = PolicySources({"/p.yaml": src}, ttl_seconds=60, fetcher=fetcher, clock=clock)
    for _ in range(3):
        with pytest.raises(PolicySourceError, match="HTTP 404"):
            sources.policy_text(src, dry_run=False)
    assert fetcher.calls == 1
    fetcher.result = {"policy.yaml": GOOD_POLICY}
    clock.now += 6
    assert sources.policy_text(src, dry_run=False) == (GOOD_POLICY, "fetched")


def test_without_a_cluster_the_lookup_fails_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    src = PolicySource("kube-system", "audit-policy")
    sources = PolicySources({"/p.yaml": src}, ttl_seconds=60)
    with pytest.raises(PolicySourceError, match=r"not running in a cluster .* \$KUBECONFIG is not set"):
        sources.policy_text(src, dry_run=False)
