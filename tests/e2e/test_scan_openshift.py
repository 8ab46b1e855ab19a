"""`auditwarden scan` and OpenShift's APIServer ``cluster`` object, against the real kube-apiserver.

The e2e kube-apiserver is no OpenShift, but it serves OpenShift's real CRD for
``apiservers.config.openshift.io`` (tests/data/openshift/, pinned, with provenance) exactly as
an OpenShift cluster does: its defaults (``spec.audit: {profile: Default}``) and its validation.
``scan -A`` must judge the ``cluster`` object exactly as ``check`` judges the same object in a
file; before the CRD is installed, and when the object is absent, the scan says nothing about
it; a user who may not read it is told what to grant (exit code 2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import Cluster
from tests.e2e.webhook_server import CHART
from tests.support.tools import DATA

AUDITWARDEN = [sys.executable, "-m", "webhook"]
CRD = DATA / "openshift" / "0000_10_config-operator_01_apiservers-Default.crd.yaml"
CRD_NAME = "apiservers.config.openshift.io"
SOURCE = "APIServer cluster"
GRANT = "cannot get apiservers.config.openshift.io cluster: forbidden. Grant the scanning identity get on " \
        "apiservers.config.openshift.io"  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AUDITWARDEN, *args], capture_output=True, text=True, timeout=180)


def scan_all(cluster: Cluster, user: str = "admin") -> dict[str, Any]:
    out = run("scan", "--kubeconfig", str(cluster.kubeconfig(user)), "-A", "--format", "json")
    assert out.returncode in (0, 1, 2) and "Traceback" not in out.stderr, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    assert report["summary"]["exitCode"] == out.returncode
    return report


def about_openshift(report: dict[str, Any]) -> list[Any]:
    """The results and unreadable lines of a scan that concern the APIServer object."""
    return [r for r in report["results"] if r["source"] == SOURCE] + [
        u for u in report["summary"]["unreadable"] if "apiservers" in u or "openshift" in u
    ]


def without_source(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "source"}


@pytest.fixture(scope="module")
def no_crd(cluster: Cluster) -> Cluster:
    cluster.kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=true", check=True, timeout=120)
    return cluster


def test_a_cluster_without_the_api_scans_without_a_word_about_it(no_crd: Cluster) -> None:
    admin = scan_all(no_crd)
    assert about_openshift(admin) == []
    # jane may read nothing: RBAC refuses the APIServer read too, but discovery shows the API is not served
    jane = scan_all(no_crd, "jane")
    assert jane["summary"]["exitCode"] == 2 and jane["summary"]["unreadable"]  # pods and configmaps
    assert about_openshift(jane) == []


@pytest.fixture(scope="module")
def openshift_api(no_crd: Cluster) -> Iterator[Cluster]:
    cluster = no_crd
    cluster.kubectl("apply", "--server-side", "-f", str(CRD), check=True)
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s", check=True)
    try:
        yield cluster
    finally:
        cluster.kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=false")


def put(cluster: Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("delete", "apiservers.config.openshift.io", "cluster", "--ignore-not-found", "--wait=true",
                    check=True)  # fmt: skip
    out = cluster.kubectl("create", "-f", "-", input=json.dumps(obj))
    assert out.returncode == 0, out.stderr


def apiserver(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "config.openshift.io/v1", "kind": "APIServer", "metadata": {"name": "cluster"}, "spec": spec}


SPECS = {
    "profile-none": {"audit": {"profile": "None"}},
    "defaulted": {},  # the API server fills in spec.audit {profile: Default}
    "nulls": {"audit": {"profile": None, "customRules": None}},  # pruned, then defaulted
    "write-request-bodies": {"audit": {"profile": "WriteRequestBodies"}},
    "custom-rules": {"audit": {"profile": "Default", "customRules": [
        {"group": "system:authenticated", "profile": "None"}, {"group": "ci-bots", "profile": "AllRequestBodies"}]}},
}  # fmt: skip


@pytest.mark.parametrize("name", list(SPECS))
def test_scan_judges_the_cluster_object_as_check_judges_its_file(openshift_api: Cluster, name: str,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    obj = apiserver(SPECS[name])
    put(openshift_api, obj)
    scanned = [r for r in scan_all(openshift_api)["results"] if r["source"] == SOURCE]
    f = tmp_path / "apiserver.yaml"
    f.write_text(yaml.safe_dump(obj))
    checked = run("check", "--format", "json", str(f))
    assert checked.returncode in (0, 1), checked.stderr
    [from_file] = json.loads(checked.stdout)["results"]
    assert [without_source(r) for r in scanned] == [without_source(from_file)]
    [result] = scanned
    assert result["kind"] == "openshift-apiserver"
    codes = [v["code"] for v in result["violations"]]
    if name == "profile-none":
        assert codes[0] == "audit-profile-none" and result["coveredCount"] == 0
    elif name == "custom-rules":
        assert codes == ["categories-below-minimum"]
        assert "Fix: set spec.audit.customRules[group=system:authenticated].profile: Default" in \
            result["violations"][0]["message"]  # fmt: skip
    else:
        assert codes == [] and result["coveredCount"] == 6


def test_the_crd_refuses_what_check_calls_invalid(openshift_api: Cluster, tmp_path: Path) -> None:
    obj = apiserver({"audit": {"profile": "Bogus"}})
    out = openshift_api.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj))
    assert out.returncode != 0 and 'Unsupported value: "Bogus"' in out.stderr, out.stderr
    f = tmp_path / "apiserver.yaml"
    f.write_text(yaml.safe_dump(obj))
    checked = json.loads(run("check", "--format", "json", str(f)).stdout)
    assert [v["code"] for v in checked["results"][0]["violations"]] == ["openshift-audit-invalid"]
    assert 'spec.audit.profile: Unsupported value: "Bogus"' in checked["results"][0]["violations"][0]["message"]


def test_a_user_who_may_not_read_it_is_told_what_to_grant(openshift_api: Cluster) -> None:
    put(openshift_api, apiserver({}))
    jane = scan_all(openshift_api, "jane")
    assert jane["summary"]["exitCode"] == 2
    assert [u for u in jane["summary"]["unreadable"] if "apiservers" in u] == [
        f"{GRANT} (a ClusterRole bound to it; the chart's scan ClusterRole has this rule)"
    ]
    assert not [r for r in jane["results"] if r["source"] == SOURCE]  # never a pass on what was not read


def test_a_served_api_without_the_cluster_object_is_nothing_to_judge(openshift_api: Cluster) -> None:
    openshift_api.kubectl("delete", "apiservers.config.openshift.io", "cluster", "--ignore-not-found", check=True)
    assert about_openshift(scan_all(openshift_api)) == []


def cluster_report(cluster: Cluster) -> dict[str, Any] | None:
    out = cluster.kubectl("get", "clusterreports.openreports.io", "auditwarden-apiserver-cluster", "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def test_its_report_is_a_cluster_report_written_updated_and_removed(openshift_api: Cluster) -> None:
    """`scan -A --write-reports`: the cluster-scoped object's findings in a ClusterReport scoped to it."""
    cluster = openshift_api
    for f in sorted((Path(CHART) / "files" / "openreports").glob("*.yaml")):
        cluster.kubectl("apply", "--server-side", "-f", str(f), check=True)
    for plural in ("reports", "clusterreports"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.openreports.io", "--timeout=60s",
                        check=True)  # fmt: skip
    admin = str(cluster.kubeconfig("admin"))

    put(cluster, apiserver({"audit": {"profile": "None"}}))
    assert run("scan", "--kubeconfig", admin, "-A", "--write-reports", "--format", "json").returncode == 1
    first = cluster_report(cluster)
    assert first is not None
    assert first["scope"]["kind"] == "APIServer" and first["scope"]["name"] == "cluster"
    assert ("audit-profile-none", "fail") in {(r["policy"], r["result"]) for r in first["results"]}

    put(cluster, apiserver({}))  # Default: the same report, updated in place
    run("scan", "--kubeconfig", admin, "-A", "--write-reports", "--format", "json")
    second = cluster_report(cluster)
    assert second is not None and second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["summary"]["fail"] == 0 and second["summary"]["pass"] == 6

    cluster.kubectl("delete", "apiservers.config.openshift.io", "cluster", check=True)
    run("scan", "--kubeconfig", admin, "-A", "--write-reports", "--format", "json")
    assert cluster_report(cluster) is None  # no longer true: removed
