"""auditwarden's policy loader vs kube-apiserver's, on every policy we have (issue 5 §5).

1. For every audit policy in ``tests/data/corpus/`` (the policy files, and the policies embedded in
   the kubeadm, distro and static-pod files), every policy of the upstream conformance data the
   unit tests use, and the e2e scenarios' own policies: "kube-apiserver would start with this
   ``--audit-policy-file``" as judged by auditwarden (``webhook.core.policy.load_policy``)
   equals the verdict of upstream's loader (``LoadPolicyFromBytes`` of k8s.io/apiserver
   v0.37.2, in the Go oracle).
2. Then the real thing for a handful of them: the session's kube-apiserver is restarted with
   ``--audit-policy-file`` pointing at the policy, and it starts exactly when auditwarden says
   it would (and the reason it logs when it refuses is the one auditwarden gives).  The
   original configuration is restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e import policies as P
from tests.e2e.cluster import Cluster, ClusterError
from tests.support.tools import DATA
from webhook.core.policy import PolicyError, load_policy

CORPUS = DATA / "corpus"
CONFORMANCE = DATA / "conformance" / "checker-conformance.yaml"


def _embedded_policies(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """Policies inside other documents: Policy mappings, or strings holding a Policy document."""
    if isinstance(node, dict):
        if node.get("kind") == "Policy" and str(node.get("apiVersion", "")).startswith("audit.k8s.io/"):
            yield where, yaml.safe_dump(node, sort_keys=False)
            return
        for k, v in node.items():
            yield from _embedded_policies(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _embedded_policies(v, f"{where}[{i}]")
    elif isinstance(node, str) and "kind: Policy" in node and "audit.k8s.io" in node:
        yield where, node


def collect() -> dict[str, str]:
    found: dict[str, str] = {}
    for f in sorted((CORPUS / "policies").glob("*.yaml")):
        found[f"corpus/policies/{f.name}"] = f.read_text()
    for f in sorted(CORPUS.rglob("*.yaml")):
        rel = f.relative_to(CORPUS)
        if rel.parts[0] == "policies" or f.name.isupper() or f.name == "INDEX.yaml":
            continue
        for i, doc in enumerate(yaml.safe_load_all(f.read_text())):
            for where, text in _embedded_policies(doc, f"corpus/{rel}#{i}"):
                found[where] = text
    data = yaml.safe_load(CONFORMANCE.read_text())
    for case in data["loadCases"]:
        found[f"conformance/loadCases/{case['id']}"] = case["input"]
    for case in data["validationCases"]:
        found[f"conformance/validationCases/{case['id']}"] = yaml.safe_dump(case["policy"], sort_keys=False)
    seen: set[str] = set()
    for case in data["evaluationCases"]:
        text = yaml.safe_dump(case["policy"], sort_keys=False)
        if text not in seen:
            seen.add(text)
            found[f"conformance/evaluationCases/{case['id']}"] = text
    for name, text in P.ALL.items():
        found[f"e2e/{name}"] = text
    return found


POLICIES = collect()


def auditwarden_loads(text: str) -> tuple[bool, str]:
    try:
        load_policy(text)
    except PolicyError as err:
        return False, str(err)
    return True, ""


@pytest.fixture(scope="module")
def oracle() -> Iterator[Any]:
    from tests.support.oracle import Oracle

    with Oracle() as o:
        yield o


def test_every_kind_of_source_is_covered() -> None:
    prefixes = {k.split("/")[0] + "/" + k.split("/")[1] for k in POLICIES}
    assert {"corpus/policies", "conformance/loadCases", "conformance/validationCases"} <= prefixes, prefixes
    assert sum(k.startswith("corpus/policies/") for k in POLICIES) == len(list((CORPUS / "policies").glob("*.yaml")))
    assert any(k.startswith("corpus/") and not k.startswith("corpus/policies/") for k in POLICIES), "no embedded"
    assert len(POLICIES) >= 60, len(POLICIES)


@pytest.mark.parametrize("source", sorted(POLICIES))
def test_auditwarden_loader_agrees_with_upstream(oracle: Any, source: str) -> None:
    text = POLICIES[source]
    upstream = oracle.check(text, [], validate_only=False)
    ours, reason = auditwarden_loads(text)
    assert ours == upstream["valid"], (
        f"{source}: auditwarden says {'loads' if ours else 'refused: ' + reason}, "
        f"upstream says {'loads' if upstream['valid'] else 'refused: ' + upstream['error']}"
    )


# ------------------------------------------------------------------------- the real apiserver

REAL = {
    "corpus-gce": (CORPUS / "policies" / "gce-configure-helper.yaml").read_text(),
    "weak-but-loadable": P.COVERS_2,
    "unknown-field-dropped": P.UNKNOWN_FIELD,
    "group-wildcard-1.36": P.GROUP_WILDCARD,
    "unsupported-level": P.INVALID_LEVEL,
    "v1beta1-from-corpus": (CORPUS / "policies" / "gardener-example-custom-policy.yaml").read_text(),
    "zero-rules": P.INVALID_NO_RULES,
}


@pytest.fixture(scope="module")
def restarts(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[bool, str]]]:
    """Restart the session apiserver once per policy; (started, error) each; then restore its defaults."""
    workdir = tmp_path_factory.mktemp("real-loader")
    results: dict[str, tuple[bool, str]] = {}
    try:
        for name, text in REAL.items():
            path = workdir / f"{name}.yaml"
            path.write_text(text)
            try:
                cluster.restart([f"--audit-policy-file={path}"])
                results[name] = (True, "")
            except ClusterError as err:
                results[name] = (False, str(err))
    finally:
        cluster.restart([])
    yield results


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_apiserver_starts_exactly_when_auditwarden_says_it_would(
    restarts: dict[str, tuple[bool, str]], name: str
) -> None:
    started, log = restarts[name]
    ours, reason = auditwarden_loads(REAL[name])
    assert started == ours, f"{name}: apiserver started={started}, auditwarden predicted {ours} ({reason})\n{log}"
    if not started:
        # the apiserver names the same problem
        key = {"unsupported-level": "Everything", "v1beta1-from-corpus": "v1beta1", "zero-rules": "0 rules"}[name]
        assert key in log, log
        assert key in reason, reason


def test_both_outcomes_were_exercised(restarts: dict[str, tuple[bool, str]]) -> None:
    assert {started for started, _ in restarts.values()} == {True, False}


def test_cluster_is_back_to_its_own_policy(cluster: Cluster, restarts: dict[str, tuple[bool, str]]) -> None:
    assert f"--audit-policy-file={cluster.audit_policy_path}" in cluster.apiserver_flags
    status, _ = cluster.request("/readyz")
    assert status == 200
