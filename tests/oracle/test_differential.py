"""Differential test: auditwarden's loader and evaluator agree with upstream's own code.

Hypothesis generates random audit policies (valid and invalid: bad levels, stages, groups,
URLs, wrong types, unknown fields, old apiVersions) and random request attributes; the Go
oracle (tests/oracle/main.go, built on k8s.io/apiserver's real ``policy`` package) loads
and evaluates them; auditwarden must agree on validity, level and omitStages for every
request.  CI runs at least 2,000 generated policies (``AUDITWARDEN_DIFF_EXAMPLES``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.conformance import attributes
from webhook.core.checker import Evaluator
from webhook.core.policy import PolicyError, load_policy

EXAMPLES = int(os.environ.get("AUDITWARDEN_DIFF_EXAMPLES", "2500"))
FAST_EXAMPLES = min(EXAMPLES, 200)

LEVELS = ["None", "Metadata", "Request", "RequestResponse"]
STAGES = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]
USERS = ["jane", "system:kube-proxy", "system:serviceaccount:ci:deployer", "*", ""]
GROUPS = ["system:authenticated", "system:unauthenticated", "system:nodes", "system:serviceaccounts", "devs"]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "post", "*"]
API_GROUPS = ["", "apps", "rbac.authorization.k8s.io", "coordination.k8s.io"]
RULE_GROUPS = [*API_GROUPS, "*", "Apps", "rbac.authorization.k8s.io/v1", "-bad", "a..b"]
RESOURCES = ["pods", "secrets", "configmaps", "deployments", "namespaces", "roles", "leases"]
SUBRESOURCES = ["", "", "log", "exec", "status", "token"]
RULE_RESOURCES = [*RESOURCES, "pods/log", "pods/exec", "*", "*/log", "*/status", "pods/*", "*/*", "Pods", "pods/log/x"]
NAMES = ["", "web-0", "db-password", "kube-system", "settings"]
NAMESPACES = ["", "default", "kube-system", "team-a"]
PATHS = ["/api", "/apis", "/apis/apps", "/healthz", "/healthz/etcd", "/version", "/logs/kubelet.log", "/metrics", "/"]
URLS = ["/api*", "/apis*", "/healthz*", "/version", "*", "/logs*", "/", "/api", "healthz", "", "/a*b", "/**", "/logs/*"]


def sub(values: list[str], max_size: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), max_size=max_size)


@st.composite
def group_resources(draw: st.DrawFn) -> dict[str, Any]:
    gr: dict[str, Any] = {}
    if draw(st.booleans()):
        gr["group"] = draw(st.sampled_from(RULE_GROUPS))
    if draw(st.integers(0, 3)):
        gr["resources"] = draw(sub(RULE_RESOURCES))
    if draw(st.integers(0, 4)) == 0:
        gr["resourceNames"] = draw(sub(NAMES, 2))
    if draw(st.integers(0, 15)) == 0:
        gr["verbs"] = ["get"]  # unknown field inside GroupResources (reader_test.go)
    return gr


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    choice = draw(st.integers(0, 20))
    if choice == 0:
        pass  # missing level
    elif choice == 1:
        rule["level"] = draw(st.sampled_from(["", "none", "metadata", "Everything"]))
    else:
        rule["level"] = draw(st.sampled_from(LEVELS))
    for key, values in (("users", USERS), ("userGroups", GROUPS), ("verbs", VERBS), ("namespaces", NAMESPACES)):
        if draw(st.integers(0, 2)) == 0:
            rule[key] = draw(sub(values))
    branch = draw(st.integers(0, 4))
    if branch == 0:
        rule["resources"] = draw(st.lists(group_resources(), max_size=3))
    elif branch == 1:
        rule["nonResourceURLs"] = draw(sub(URLS))
    if draw(st.integers(0, 3)) == 0:
        rule["omitStages"] = draw(sub([*STAGES, "Bogus"], 3))
    if draw(st.integers(0, 6)) == 0:
        rule["omitManagedFields"] = draw(st.booleans())
    odd = draw(st.integers(0, 40))
    if odd == 0:
        rule["users"] = [7]  # a number where a string is due: fatal decode error
    elif odd == 1:
        rule["Level"] = "Metadata"  # case-sensitive: unknown field
    elif odd == 2:
        rule["verbs"] = "get"  # a string where a list is due
    return rule


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    api = draw(st.integers(0, 30))
    if api == 0:
        pass
    elif api == 1:
        policy["apiVersion"] = "audit.k8s.io/v1beta1"
    elif api == 2:
        policy["apiVersion"] = "audit.k8s.io/v1alpha1"
    else:
        policy["apiVersion"] = "audit.k8s.io/v1"
    if draw(st.integers(0, 30)) != 0:
        policy["kind"] = "Policy"
    if draw(st.integers(0, 3)) == 0:
        policy["omitStages"] = draw(sub([*STAGES, "Bogus"] if draw(st.integers(0, 8)) == 0 else STAGES))
    if draw(st.integers(0, 8)) == 0:
        policy["omitManagedFields"] = draw(st.booleans())
    if draw(st.integers(0, 20)) == 0:
        policy["metadata"] = {"name": "p"}
    policy["rules"] = draw(st.lists(rules(), min_size=0 if draw(st.integers(0, 25)) == 0 else 1, max_size=6))
    return policy


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    user = None
    if draw(st.integers(0, 5)):
        user = {"name": draw(st.sampled_from(USERS[:3])), "groups": draw(sub(GROUPS, 2))}
    if draw(st.integers(0, 4)) == 0:
        return {"user": user, "verb": draw(st.sampled_from(["get", "post", "put", "delete"])),
                "path": draw(st.sampled_from(PATHS)), "isResourceRequest": False}  # fmt: skip
    resource = draw(st.sampled_from(RESOURCES))
    return {
        "user": user,
        "verb": draw(st.sampled_from(VERBS[:-1])),
        "namespace": draw(st.sampled_from(NAMESPACES)),
        "apiGroup": draw(st.sampled_from(API_GROUPS)),
        "apiVersion": "v1",
        "resource": resource,
        "subresource": draw(st.sampled_from(SUBRESOURCES)),
        "name": draw(st.sampled_from(NAMES)),
        "path": f"/api/v1/{resource}",
        "isResourceRequest": True,
    }


def serialise(policy: dict[str, Any], as_yaml: bool) -> str:
    return yaml.safe_dump(policy, sort_keys=False) if as_yaml else json.dumps(policy)


@pytest.fixture(scope="module")
def oracle() -> Iterator[Any]:
    from tests.support.oracle import Oracle

    with Oracle() as o:
        yield o


COUNTER = {"policies": 0, "valid": 0, "requests": 0}


CASES = {"policy": policies(), "reqs": st.lists(requests(), min_size=1, max_size=8), "as_yaml": st.booleans()}


@pytest.mark.e2e  # the full run (CI); the fast loop runs the sample below
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(**CASES)
def test_auditwarden_agrees_with_upstream(oracle: Any, policy: dict[str, Any], reqs: list[dict[str, Any]],
                                          as_yaml: bool) -> None:  # fmt: skip
    valid = agrees(oracle, policy, reqs, as_yaml)
    COUNTER["policies"] += 1
    COUNTER["valid"] += valid
    COUNTER["requests"] += len(reqs) if valid else 0


@settings(max_examples=FAST_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(**CASES)
def test_auditwarden_agrees_with_upstream_on_a_sample(oracle: Any, policy: dict[str, Any],
                                                      reqs: list[dict[str, Any]], as_yaml: bool) -> None:  # fmt: skip
    agrees(oracle, policy, reqs, as_yaml)


def agrees(oracle: Any, policy: dict[str, Any], reqs: list[dict[str, Any]], as_yaml: bool) -> bool:
    """Validity, then level and omitStages of every request, as upstream's policy package decides them."""
    text = serialise(policy, as_yaml)
    upstream = oracle.check(text, reqs)
    try:
        ours = load_policy(text)
        ours_error = None
    except PolicyError as err:
        ours, ours_error = None, str(err)
    assert (ours is not None) == upstream["valid"], (
        f"validity differs: upstream {upstream['valid']} ({upstream.get('error')!r}), ours {ours_error!r}\n{text}"
    )
    if ours is None:
        return False
    evaluator = Evaluator(ours)
    for req, want in zip(reqs, upstream["results"], strict=True):
        got = evaluator.evaluate(attributes(req))
        assert got.level == want["level"], f"level differs for {req}\n{text}"
        # A set, as upstream's own tests compare it: when no rule matches, upstream returns the
        # policy's list verbatim (duplicates included); the union for a matched rule has none.
        assert got.omit_stages == set(want["omitStages"]), f"omitStages differ for {req}\n{text}"
    return True


@pytest.mark.e2e
def test_enough_cases_ran() -> None:
    """Runs after the property test in file order: proves the differential run was not vacuous."""
    assert COUNTER["policies"] >= min(EXAMPLES, 2000)
    assert COUNTER["valid"] >= COUNTER["policies"] // 4
    print(f"differential: {COUNTER}")
