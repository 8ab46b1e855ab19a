"""Rule entries that can never match (README "Finding codes": ``rule-never-matches``).

kube-apiserver loads them and they simply never match; auditwarden warns, naming the rule, the
field, the reason and a correction.  Warnings only: the verdict comes from evaluation.  Built-in
groups and resources come from ``webhook/data/builtin-api-v1.37.json``, generated from upstream's
discovery documents by ``scripts/gen_builtin_api.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.context import BUILTIN_API_FILE, build_context
from webhook.core.nevermatch import never_matches
from webhook.core.policy import PolicyError, load_policy
from webhook.core.verdict import judge

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "corpus" / "policies"
CTX = build_context()

# The remediation example of the issue, verbatim.
EXEC_EXAMPLE = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
  omitStages: [RequestReceived]
- level: RequestResponse
  verbs: ["exec"]
  resources:
  - group: ""
    resources: ["pods", "pods/exec"]
"""

# Corpus policies with entries that never match, and where; every other valid one has none.
FLAGGED = {
    "falco-k8saudit-plugin.yaml": ["rules[0].resources[0].resources[1] 'deployments'"],
    # PUT .../certificatesigningrequests/NAME/approval is "update"; "approve" is the RBAC check on the signer.
    "eks-anywhere-default.yaml": ["rules[5].verbs[3] 'approve'"],
}


def policy(*rules: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(rules)}, sort_keys=False)


def warnings_for(text: str) -> list[str]:
    return [f.message for f in never_matches(load_policy(text), CTX.builtin_api)]


def one_warning(*rules: dict[str, Any]) -> str:
    found = warnings_for(policy(*rules))
    assert len(found) == 1, found
    return found[0]


def test_the_exec_verb_example_is_warned_about_with_the_request_it_really_is() -> None:
    [message] = warnings_for(EXEC_EXAMPLE)
    assert message.startswith("rule 1 (level RequestResponse")
    assert "rules[1].verbs[0] 'exec' never matches a request" in message
    assert "create (or get, over WebSocket) on the pods/exec subresource" in message
    assert 'Fix: verbs: ["create", "get"] with resources ["pods/exec"]' in message


def test_the_warning_reaches_the_verdict_and_does_not_change_it() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p", "namespace": "kube-system",
          "labels": {"auditwarden.io/kind": "audit-policy"}}, "data": {"policy.yaml": EXEC_EXAMPLE}}  # fmt: skip
    verdict = judge(cm, None, operation="CREATE", mode="enforce", context=CTX)
    assert verdict.allowed and verdict.decision == "allow"
    assert [w.code for w in verdict.warnings].count("rule-never-matches") == 1


def test_falco_lists_deployments_under_the_core_group_where_they_never_match() -> None:
    [message] = warnings_for((CORPUS / "falco-k8saudit-plugin.yaml").read_text(encoding="utf-8"))
    assert "rules[0].resources[0].resources[1] 'deployments'" in message
    assert 'served by group "apps", not by the core group' in message and 'under group: "apps"' in message


def corpus_policies() -> list[Path]:
    out = []
    for path in sorted(CORPUS.glob("*.yaml")):
        try:
            load_policy(path.read_text(encoding="utf-8"))
        except PolicyError:
            continue  # v1beta1 policies: kube-apiserver 1.37 refuses them, nothing is evaluated
        out.append(path)
    return out


@pytest.mark.parametrize("path", corpus_policies(), ids=lambda p: p.name)
def test_corpus_policies_warn_exactly_where_an_entry_never_matches(path: Path) -> None:
    found = warnings_for(path.read_text(encoding="utf-8"))
    expected = FLAGGED.get(path.name, [])
    assert len(found) == len(expected), found
    for message, where in zip(found, expected, strict=True):
        assert where in message


def test_the_corpus_count() -> None:
    """21 valid corpus policies without a warning; 2 warnings on the two listed in FLAGGED."""
    counts = {p.name: len(warnings_for(p.read_text(encoding="utf-8"))) for p in corpus_policies()}
    assert sum(counts.values()) == 2
    assert sorted(name for name, n in counts.items() if n) == sorted(FLAGGED)
    assert sum(1 for n in counts.values() if n == 0) == len(counts) - 2 == 21


def test_a_nonexistent_subresource_is_named_with_the_real_one() -> None:
    message = one_warning({"level": "Metadata", "resources": [{"group": "", "resources": ["pods/logs"]}]})
    assert "pods has no subresource 'logs' in the core group" in message and 'Fix: "pods/log"' in message


def test_a_subresource_no_resource_of_the_group_has() -> None:
    message = one_warning({"level": "Metadata", "resources": [{"group": "apps", "resources": ["*/logs"]}]})
    assert "no resource of group 'apps' has a subresource 'logs'" in message
    assert warnings_for(policy({"level": "Metadata", "resources": [{"group": "apps", "resources": ["*/scale"]}]})) == []


def test_a_shortened_group_name_is_warned_about_with_its_full_name() -> None:
    message = one_warning({"level": "Metadata", "resources": [{"group": "rbac"}]})
    assert "'rbac' is short for \"rbac.authorization.k8s.io\"" in message
    assert "Fix: group: 'rbac.authorization.k8s.io'" in message


def test_core_is_not_the_name_of_the_core_group() -> None:
    assert 'Fix: group: ""' in one_warning({"level": "Metadata", "resources": [{"group": "core"}]})


def test_verbs_are_lower_case() -> None:
    assert "Fix: verbs: [\"get\"]" in one_warning({"level": "Metadata", "verbs": ["GET"], "resources": [{"group": ""}]})


def test_an_rbac_only_verb_is_never_a_request_verb() -> None:
    message = one_warning({"level": "Metadata", "verbs": ["impersonate"], "resources": [{"group": ""}]})
    assert "RBAC authorization verb" in message


def test_a_non_resource_rule_sees_http_methods_not_resource_verbs() -> None:
    message = one_warning({"level": "Metadata", "verbs": ["list", "get"], "nonResourceURLs": ["/healthz"]})
    assert "verbs[0] 'list'" in message and "HTTP method in lower case" in message
    assert warnings_for(policy({"level": "Metadata", "verbs": ["post", "head"], "nonResourceURLs": ["/x"]})) == []
    # "post" on a resource rule is the HTTP method of "create".
    post = one_warning({"level": "Metadata", "verbs": ["post"], "resources": [{"group": ""}]})
    assert 'Fix: verbs: ["create"]' in post


def test_a_rule_for_any_request_accepts_the_verbs_of_either_kind() -> None:
    verbs = ["post", "list", "deletecollection", "proxy", "*"]
    assert warnings_for(policy({"level": "Metadata", "verbs": verbs})) == []


def test_only_built_in_groups_are_judged() -> None:
    rules = [
        {"level": "Metadata", "resources": [{"group": "example.com", "resources": ["deployments", "pods/logs"]}]},
        # A resource the table does not know in a built-in group may be one of an older release.
        {"level": "Metadata", "resources": [{"group": "policy", "resources": ["podsecuritypolicies"]}]},
        {"level": "Metadata", "resources": [{"group": "*", "resources": ["deployments/logs"]}]},
        {"level": "Metadata", "resources": [{"group": "extensions"}]},
    ]
    assert warnings_for(policy(*rules)) == []


def test_a_rule_with_both_resources_and_non_resource_urls_is_refused_as_kube_apiserver_refuses_it() -> None:
    text = policy({"level": "Metadata", "nonResourceURLs": ["/api/*"], "resources": [{"group": ""}]})
    with pytest.raises(PolicyError, match="rules cannot apply to both regular resources and non-resource URLs"):
        load_policy(text)


# ------------------------------------------------------------------ the table and where it comes from


def test_the_table_records_its_upstream_source() -> None:
    table = json.loads(BUILTIN_API_FILE.read_text(encoding="utf-8"))
    assert table["provenance"]["source"].startswith("k8s.io/kubernetes@v1.37.2")
    assert "api/discovery/api__v1.json" in table["provenance"]["files"]
    assert table["provenance"]["generator"] == "scripts/gen_builtin_api.py"
    assert CTX.builtin_api.version == table["kubernetesVersion"] == "1.37"


DISCOVERY = Path.home() / "go" / "pkg" / "mod" / "k8s.io" / "kubernetes@v1.37.2" / "api" / "discovery"


@pytest.mark.skipif(not DISCOVERY.is_dir(), reason="k8s.io/kubernetes@v1.37.2 is not in the Go module cache")
def test_the_checked_in_table_is_what_the_generator_reads_from_upstream() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_builtin_api.py"), "--check", "--discovery", str(DISCOVERY)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
