"""Managed-cluster profiles (`check --provider`): the provider's own policy, judged with the same categories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from webhook.cli import main
from webhook.core.policy import load_policy
from webhook.providers import PROVIDERS, load_provider

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "corpus" / "policies"


@pytest.mark.parametrize("key", PROVIDERS)
def test_each_providers_policy_loads_as_kube_apiserver_loads_it_and_names_its_source(key: str) -> None:
    p = load_provider(key)
    load_policy(p.policy_text)
    assert "# source-repo:" in p.policy_text and "# source-commit:" in p.policy_text
    assert p.cannot_change and p.can_change


@pytest.mark.parametrize(("key", "corpus"), [("gke", "gce-configure-helper.yaml"), ("aks", "aks-engine-default.yaml")])
def test_the_packaged_policies_are_the_corpus_files(key: str, corpus: str) -> None:
    assert load_provider(key).policy_text == (CORPUS / corpus).read_text()


def check(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["check", "--format", "json", *args])
    return result.exit_code, json.loads(result.output)


def test_aks_with_only_kube_audit_admin_exported_loses_secret_reads() -> None:
    code, report = check("--provider", "aks")
    by_source = {r["source"]: r for r in report["results"]}
    full = by_source["provider aks"]
    admin_only = by_source["provider aks (only kube-audit-admin exported)"]
    assert not full["violations"] and full["categories"]["secret-access"]["covered"] is True
    assert admin_only["categories"]["secret-access"]["covered"] is False
    assert code == 1  # the variant fails the baseline profile
    [aks] = report["providers"]
    assert aks["provider"] == "aks" and "kube-audit-admin" in " ".join(aks["canChange"])


def test_eks_says_audit_logging_is_off_by_default() -> None:
    code, report = check("--provider", "eks")
    assert code == 0
    [eks] = report["providers"]
    assert "OFF by default" in " ".join(eks["canChange"])


def test_check_needs_paths_or_a_provider() -> None:
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 2 and "--provider" in result.output


@pytest.mark.parametrize("key", PROVIDERS)
def test_a_providers_findings_never_propose_editing_the_policy_it_runs(key: str) -> None:
    """Where `check` on a file would say "Fix: add before rule 0 ...", a provider's finding says what its users
    can change instead: the provider runs the policy."""
    out = CliRunner().invoke(main, ["check", "--profile", "strict", "--provider", key, "--format", "json"])
    findings = [f for r in json.loads(out.output)["results"] for f in [*r["violations"], *r["warnings"]]]
    assert findings, out.output
    assert not [f for f in findings if "auditwarden fix" in f["message"]]
    can_change = load_provider(key).can_change[0]
    with_fix = [f["message"] for f in findings if " Fix: " in f["message"]]
    assert all(f"what you can change: {can_change}" in m for m in with_fix), with_fix
