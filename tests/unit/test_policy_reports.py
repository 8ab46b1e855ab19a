"""Scan results as policy reports (webhook.openreports): OpenReports Report/ClusterReport by default,
wg-policy PolicyReport/ClusterPolicyReport on request, each one valid against the pinned CRD the chart
installs, with no field the API server would prune."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.e2e import policies as P
from webhook.cli.common import judge_into, make_context
from webhook.core.analysis import DocumentResult
from webhook.openreports import APIS, CLUSTER_REPORT, ReportFormat, build_cluster_report, build_report
from webhook.report import Report

FILES = Path(__file__).resolve().parents[2] / "charts" / "auditwarden" / "files"
NOW = 1_800_000_000.0


def judged(obj: dict[str, Any], source: str) -> list[DocumentResult]:
    report = Report([], "baseline", "1.37")
    judge_into(report, obj, source, make_context("baseline", None, None, ()))
    return report.results


def configmap(name: str, policy: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "team-a", "uid": "0b6f-1",
                         "labels": {"auditwarden.io/kind": "audit-policy"}},
            "data": {"policy.yaml": policy}}  # fmt: skip


def crd_schema(fmt: ReportFormat, plural: str) -> dict[str, Any]:
    api = APIS[fmt]
    crd = yaml.safe_load((FILES / fmt / f"{api.group}_{plural}.yaml").read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == api.version]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def pruned(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """The fields of ``value`` a structural schema does not name: what the API server would silently drop."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or path == ".metadata":
        return []
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None:
            return [] if "additionalProperties" in schema else [path]
        return [p for k, v in value.items()
                for p in ([f"{path}.{k}"] if k not in props else pruned(v, props[k], f"{path}.{k}"))]  # fmt: skip
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in pruned(v, schema.get("items", {}), f"{path}[{i}]")]
    return []


def assert_valid(report: dict[str, Any], fmt: ReportFormat) -> None:
    api = APIS[fmt]
    plural = api.plural if report["metadata"].get("namespace") else api.cluster_plural
    schema = crd_schema(fmt, plural)
    assert report["apiVersion"] == api.api_version
    jsonschema.validate(report, schema)
    assert pruned(report, schema) == []


@pytest.mark.parametrize("fmt", ["openreports", "wgpolicyk8s"])
def test_a_weak_policy_gives_one_failed_result_per_category_it_hides(fmt: ReportFormat) -> None:
    obj = configmap("weak", P.COVERS_2)
    report = build_report(obj, judged(obj, "ConfigMap team-a/weak#data[policy.yaml]"), fmt=fmt, now=NOW)
    assert_valid(report, fmt)
    assert report["kind"] == APIS[fmt].kind
    assert report["metadata"] == {"name": "auditwarden-configmap-weak", "namespace": "team-a",
                                  "labels": {"app.kubernetes.io/managed-by": "auditwarden"}}  # fmt: skip
    assert report["scope"] == {"apiVersion": "v1", "kind": "ConfigMap", "name": "weak", "namespace": "team-a",
                               "uid": "0b6f-1"}  # fmt: skip
    failed = {r["rule"]: r for r in report["results"] if r["result"] == "fail"}
    assert set(failed) == set(P.COVERS_2_MISSING)
    secret = failed["secret-access"]
    assert secret["policy"] == "categories-below-minimum" and secret["severity"] == "high"
    assert secret["properties"]["hidingRule"].startswith(P.COVERS_2_HIDING_RULE)
    assert secret["timestamp"] == {"seconds": 1_800_000_000, "nanos": 0}
    assert report["summary"]["fail"] == len(failed)
    assert report["summary"]["pass"] == 6 - len(failed)
    # only OpenReports has a report-level source (wgpolicyk8s v1alpha2 would prune it)
    assert ("source" in report) == (fmt == "openreports")


@pytest.mark.parametrize("fmt", ["openreports", "wgpolicyk8s"])
def test_a_cluster_scoped_object_gets_a_cluster_report(fmt: ReportFormat) -> None:
    """An object with no namespace (OpenShift's APIServer) is reported in a ClusterReport scoped to it."""
    obj = {"apiVersion": "config.openshift.io/v1", "kind": "APIServer", "metadata": {"name": "cluster"}}
    report = build_report(obj, [], fmt=fmt, now=NOW)
    assert_valid(report, fmt)
    assert report["kind"] == APIS[fmt].cluster_kind
    assert "namespace" not in report["metadata"] and "namespace" not in report["scope"]
    assert [r["policy"] for r in report["results"]] == ["audit-configuration"]


@pytest.mark.parametrize("fmt", ["openreports", "wgpolicyk8s"])
def test_the_cluster_report_shows_what_could_not_be_read_as_errors_never_as_a_pass(fmt: ReportFormat) -> None:
    line = "cannot list configmaps in namespace kube-system: forbidden. Grant ..."
    report = build_cluster_report([], [line], fmt=fmt, now=NOW)
    assert_valid(report, fmt)
    assert report["metadata"]["name"] == CLUSTER_REPORT and "scope" not in report
    assert [(r["result"], r["message"]) for r in report["results"]] == [("error", line)]
    assert report["summary"] == {"pass": 0, "fail": 0, "warn": 0, "error": 1, "skip": 0}
    clean = build_cluster_report([], [], fmt=fmt, now=NOW)
    assert [(r["policy"], r["result"]) for r in clean["results"]] == [("scan", "pass")]


def test_the_cluster_report_carries_the_findings_that_belong_to_no_object() -> None:
    """A managed provider's policy (scan --provider) is cluster-wide: its results go in auditwarden-cluster."""
    provider = judged({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None"}]}, "provider x")
    report = build_cluster_report(provider, [], now=NOW)
    assert_valid(report, "openreports")
    assert {r["properties"]["document"] for r in report["results"]} == {"provider x"}
    assert report["summary"]["fail"] > 0 and report["summary"]["error"] == 0
