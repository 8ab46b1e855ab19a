"""`auditwarden scan` against the real kube-apiserver (issue 13): what a cluster holds, judged as `check` judges it.

The namespace is seeded, with no webhook installed, with good, weak and invalid policy
ConfigMaps, an ordinary ConfigMap, and kube-apiserver mirror Pods posted as the node (the
kubelet's identity).  ``scan --namespace`` (a real process, the admin's kubeconfig) must give
exactly the results ``check`` gives on the same objects written to files, with ``source`` naming
the object.  A user with no RBAC gets one clear line per refused read and exit code 2, never a
pass.
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

from tests.e2e import policies as P
from tests.e2e.cluster import Cluster
from tests.e2e.webhook_server import CHART, HelmRelease, ensure_namespace, policy_configmap, unique

AUDITWARDEN = [sys.executable, "-m", "webhook"]


@pytest.fixture(scope="module")
def seeded(cluster: Cluster) -> Iterator[dict[str, Any]]:
    """The namespace and the objects in it (as sent; the API server adds its own fields)."""
    ns = unique("aw-scan")
    ensure_namespace(cluster, ns)
    weak_flags = ["kube-apiserver", f"--audit-log-path={P.LOG_DIR}/audit.log"]  # no --audit-policy-file
    good_flags = [*weak_flags, f"--audit-policy-file={P.POLICY_PATH}", "--audit-log-maxage=30",
                  "--audit-log-maxbackup=10", "--audit-log-maxsize=100"]  # fmt: skip
    objects: list[dict[str, Any]] = [
        policy_configmap("weak", ns, P.COVERS_2),
        policy_configmap("good", ns, P.COVERS_ALL),
        policy_configmap("invalid", ns, P.INVALID_LEVEL),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-settings", "namespace": ns},
         "data": {"settings.ini": "[server]\nport = 8080\n"}},
    ]  # fmt: skip
    for name, flags in (("kube-apiserver-weak", weak_flags), ("kube-apiserver-good", good_flags)):
        pod = cluster.mirror_pod(name, flags, namespace=ns)
        pod["metadata"]["labels"] = {"component": "kube-apiserver", "tier": "control-plane"}
        pod["spec"]["volumes"], pod["spec"]["containers"][0]["volumeMounts"] = P.apiserver_volumes()
        objects.append(pod)
    try:
        for obj in objects:
            user = "node" if obj["kind"] == "Pod" else "admin"
            out = cluster.kubectl("create", "-f", "-", user=user, input=json.dumps(obj))
            assert out.returncode == 0, out.stderr
        yield {"namespace": ns, "objects": objects}
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AUDITWARDEN, *args], capture_output=True, text=True, timeout=120)


def by_source(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["source"]: {k: v for k, v in r.items() if k != "source"} for r in report["results"]}


def test_scan_gives_what_check_gives_on_the_same_objects(seeded: dict[str, Any], cluster: Cluster,
                                                         tmp_path: Path) -> None:  # fmt: skip
    ns = seeded["namespace"]
    scanned = run("scan", "--kubeconfig", str(cluster.kubeconfig("admin")), "--namespace", ns, "--format", "json")
    assert scanned.returncode == 1, scanned.stderr  # weak and invalid objects: a violation
    got = json.loads(scanned.stdout)

    files = tmp_path / "objects"
    files.mkdir()
    for obj in seeded["objects"]:
        (files / f"{obj['kind']}__{obj['metadata']['name']}.yaml").write_text(yaml.safe_dump(obj))
    checked = run("check", "--format", "json", str(files))
    assert checked.returncode == 1, checked.stderr
    want = {}
    for source, result in by_source(json.loads(checked.stdout)).items():
        path, _, key = source.partition("#")
        kind, _, name = Path(path).stem.partition("__")
        want[f"{kind} {ns}/{name}" + (f"#{key}" if key else "")] = result

    assert by_source(got) == want
    assert sorted(want) == sorted([
        f"ConfigMap {ns}/good#data[policy.yaml]", f"ConfigMap {ns}/invalid#data[policy.yaml]",
        f"ConfigMap {ns}/weak#data[policy.yaml]", f"Pod {ns}/kube-apiserver-good", f"Pod {ns}/kube-apiserver-weak",
    ])  # fmt: skip  (the ordinary ConfigMap is not audit configuration: never judged)
    summary = got["summary"]
    assert summary["exitCode"] == 1 and summary["unreadable"] == [], summary
    verdicts = {source: not result["violations"] for source, result in by_source(got).items()}
    assert verdicts[f"ConfigMap {ns}/good#data[policy.yaml]"] is True
    assert verdicts[f"ConfigMap {ns}/weak#data[policy.yaml]"] is False
    assert verdicts[f"ConfigMap {ns}/invalid#data[policy.yaml]"] is False
    assert verdicts[f"Pod {ns}/kube-apiserver-weak"] is False
    assert verdicts[f"Pod {ns}/kube-apiserver-good"] is True


def test_a_scan_without_rbac_says_what_to_grant_and_exits_2(seeded: dict[str, Any], cluster: Cluster) -> None:
    ns = seeded["namespace"]
    out = run("scan", "--kubeconfig", str(cluster.kubeconfig("jane")), "--namespace", ns, "--format", "json")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    report = json.loads(out.stdout)
    assert report["results"] == [] and report["summary"]["exitCode"] == 2
    unreadable = report["summary"]["unreadable"]
    assert any(f"cannot list configmaps in namespace {ns}: forbidden. Grant" in line for line in unreadable), unreadable
    assert any(f"cannot list pods in namespace {ns}: forbidden" in line for line in unreadable), unreadable
    text = run("scan", "--kubeconfig", str(cluster.kubeconfig("jane")), "--namespace", ns)
    assert text.returncode == 2 and "forbidden" in text.stdout + text.stderr


def test_the_charts_scan_cluster_role_is_all_a_scan_needs(seeded: dict[str, Any], cluster: Cluster,
                                                           tmp_path: Path) -> None:  # fmt: skip
    """The chart's `<fullname>-scan` ClusterRole, bound to jane in the namespace: her scan reads everything."""
    ns = seeded["namespace"]
    helm = HelmRelease(cluster, "scanrole", ns, tmp_path / "helm")
    rendered = helm.run("template", "scanrole", str(CHART), "--namespace", ns, "--set", "scanClusterRole.create=true",
                        "--show-only", "templates/rbac.yaml").stdout  # fmt: skip
    [role] = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ClusterRole"]
    role["metadata"]["name"] = unique("aw-scan-role")
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "jane-scans", "namespace": ns},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": role["metadata"]["name"]},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "jane"}]}  # fmt: skip
    try:
        for obj in (role, binding):
            out = cluster.kubectl("create", "-f", "-", input=json.dumps(obj))
            assert out.returncode == 0, out.stderr
        as_jane = run("scan", "--kubeconfig", str(cluster.kubeconfig("jane")), "--namespace", ns, "--format", "json")
        as_admin = run("scan", "--kubeconfig", str(cluster.kubeconfig("admin")), "--namespace", ns, "--format", "json")
        assert as_jane.returncode == 1, as_jane.stdout[-2000:]
        assert json.loads(as_jane.stdout) == json.loads(as_admin.stdout)
    finally:
        cluster.kubectl("delete", "clusterrole", role["metadata"]["name"], "--ignore-not-found")


def reports(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    out = cluster.kubectl("get", "reports.openreports.io", "-n", ns, "-o", "json", check=True)
    return {r["metadata"]["name"]: r for r in json.loads(out.stdout)["items"]}


def test_reports_are_written_updated_in_place_and_removed(seeded: dict[str, Any], cluster: Cluster) -> None:
    """With the pinned OpenReports CRDs installed: one Report per judged object, with the fields Policy Reporter
    reads; a fixed object's Report is updated in place (same uid); a deleted object's Report is removed."""
    ns = seeded["namespace"]
    crds = Path(CHART) / "files" / "openreports"
    for f in sorted(crds.glob("openreports.io_*.yaml")):
        cluster.kubectl("apply", "--server-side", "-f", str(f), check=True)
    cluster.kubectl("wait", "--for=condition=Established", "crd/reports.openreports.io", "--timeout=60s", check=True)
    admin = str(cluster.kubeconfig("admin"))

    first = run("scan", "--kubeconfig", admin, "--namespace", ns, "--write-reports", "--format", "json")
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr
    written = reports(cluster, ns)
    assert sorted(written) == sorted(["auditwarden-configmap-good", "auditwarden-configmap-invalid",
                                      "auditwarden-configmap-weak", "auditwarden-pod-kube-apiserver-good",
                                      "auditwarden-pod-kube-apiserver-weak"])  # fmt: skip
    weak = written["auditwarden-configmap-weak"]
    assert weak["source"] == "auditwarden"
    assert weak["scope"]["kind"] == "ConfigMap" and weak["scope"]["name"] == "weak" and weak["scope"]["uid"]
    failed = {(r["policy"], r["rule"]) for r in weak["results"] if r["result"] == "fail"}
    assert {("categories-below-minimum", c) for c in P.COVERS_2_MISSING} <= failed, failed
    hidden = next(r for r in weak["results"] if r["rule"] == "secret-access" and r["result"] == "fail")
    assert hidden["severity"] == "high" and hidden["properties"]["probe"]
    assert "rule 0" in hidden["properties"]["hidingRule"]
    assert weak["summary"]["fail"] == len([r for r in weak["results"] if r["result"] == "fail"]) > 0
    pod = written["auditwarden-pod-kube-apiserver-weak"]
    assert ("audit-policy-file-missing", "--audit-policy-file") in {(r["policy"], r["rule"]) for r in pod["results"]}
    good = written["auditwarden-configmap-good"]
    assert good["summary"]["fail"] == 0 and good["summary"]["pass"] == 6

    # fix the weak policy, remove the invalid one: the same Report is updated, the other one goes
    fixed = policy_configmap("weak", ns, P.COVERS_ALL)
    cluster.kubectl("replace", "-f", "-", input=json.dumps(fixed), check=True)
    cluster.kubectl("delete", "configmap", "invalid", "-n", ns, check=True)
    second = run("scan", "--kubeconfig", admin, "--namespace", ns, "--write-reports", "--format", "json")
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr  # the weak mirror Pod is still there
    after = reports(cluster, ns)
    assert "auditwarden-configmap-invalid" not in after
    updated = after["auditwarden-configmap-weak"]
    assert updated["metadata"]["uid"] == weak["metadata"]["uid"]  # updated in place, not re-created
    assert updated["metadata"]["resourceVersion"] != weak["metadata"]["resourceVersion"]
    assert updated["summary"]["fail"] == 0 and updated["summary"]["pass"] == 6
    listed = cluster.kubectl("get", "reports", "-n", ns, check=True).stdout
    assert "auditwarden-configmap-weak" in listed


@pytest.mark.parametrize("fmt", ["openreports", "wgpolicyk8s"])
def test_a_whole_cluster_scan_also_keeps_the_cluster_report(seeded: dict[str, Any], cluster: Cluster,
                                                            fmt: str) -> None:  # fmt: skip
    """`scan -A --write-reports` in either report API: a report per judged object, listed by `kubectl get
    <reports>,<clusterreports> -A`, and `auditwarden-cluster` with what belongs to no object (here the AKS
    provider's policy); a cluster-scoped report of auditwarden's that is no longer true is removed."""
    ns = seeded["namespace"]
    plural, cluster_plural, group = {"openreports": ("reports", "clusterreports", "openreports.io"),
                                     "wgpolicyk8s": ("policyreports", "clusterpolicyreports", "wgpolicyk8s.io")}[fmt]
    for f in sorted((Path(CHART) / "files" / fmt).glob("*.yaml")):
        cluster.kubectl("apply", "--server-side", "-f", str(f), check=True)
    for p in (plural, cluster_plural):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{p}.{group}", "--timeout=60s", check=True)
    kind = {"openreports": "ClusterReport", "wgpolicyk8s": "ClusterPolicyReport"}[fmt]
    stale = {"apiVersion": f"{group}/{'v1alpha1' if fmt == 'openreports' else 'v1alpha2'}", "kind": kind,
             "metadata": {"name": "auditwarden-apiserver-gone",
                          "labels": {"app.kubernetes.io/managed-by": "auditwarden"}},
             "results": [{"policy": "audit-configuration", "result": "pass"}]}  # fmt: skip
    cluster.kubectl("create", "-f", "-", input=json.dumps(stale), check=True)

    admin = str(cluster.kubeconfig("admin"))
    out = run("scan", "--kubeconfig", admin, "-A", "--write-reports", "--reports-format", fmt, "--provider", "aks",
              "--format", "json")  # fmt: skip
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr
    assert json.loads(out.stdout)["summary"]["unreadable"] == [], out.stdout[-3000:]
    listed = json.loads(cluster.kubectl("get", f"{plural}.{group},{cluster_plural}.{group}", "-A", "-o", "json",
                                        check=True).stdout)["items"]  # fmt: skip
    names = {(r["metadata"].get("namespace"), r["metadata"]["name"]): r for r in listed}
    assert (None, "auditwarden-apiserver-gone") not in names
    assert {(ns, "auditwarden-configmap-good"), (ns, "auditwarden-pod-kube-apiserver-weak")} <= set(names)
    whole = names[(None, "auditwarden-cluster")]
    assert whole["kind"] == kind and "scope" not in whole
    documents = {r["properties"]["document"] for r in whole["results"]}
    assert documents == {"provider aks", "provider aks (only kube-audit-admin exported)"}, documents
    assert whole["summary"]["fail"] > 0  # kube-audit-admin drops get/list: Secret reads are not exported
    assert all(r["source"] == "auditwarden" and r["timestamp"]["seconds"] > 0 for r in whole["results"])

    again = run("scan", "--kubeconfig", admin, "-A", "--write-reports", "--reports-format", fmt, "--format", "json")
    assert again.returncode == 1, again.stdout[-3000:] + again.stderr
    after = json.loads(cluster.kubectl("get", f"{cluster_plural}.{group}", "auditwarden-cluster", "-o", "json",
                                       check=True).stdout)  # fmt: skip
    assert after["metadata"]["uid"] == whole["metadata"]["uid"]  # updated in place
    assert [r["policy"] for r in after["results"]] == ["scan"]  # no provider now: nothing but a clean read
    table = cluster.kubectl("get", f"{plural}.{group},{cluster_plural}.{group}", "-A", check=True).stdout
    assert "auditwarden-cluster" in table and "auditwarden-configmap-good" in table


def test_a_server_it_cannot_trust_or_reach_is_a_clear_line_and_exit_2(cluster: Cluster, tmp_path: Path) -> None:
    """The admin's kubeconfig with another CA (the apiserver's certificate does not verify) or with a port nobody
    listens on: no stack trace, no pass, one line naming the read that failed."""
    import socket

    from cryptography.hazmat.primitives.serialization import Encoding

    from webhook.certs import Authority

    config = json.loads(cluster.kubeconfig("admin").read_text())
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(Authority.new("not-the-cluster-ca").ca.cert.public_bytes(Encoding.PEM))
    config["clusters"][0]["cluster"]["certificate-authority"] = str(other_ca)
    untrusted = tmp_path / "untrusted.kubeconfig"
    untrusted.write_text(json.dumps(config))

    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = json.loads(cluster.kubeconfig("admin").read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    unreachable = tmp_path / "unreachable.kubeconfig"
    unreachable.write_text(json.dumps(config))

    for kubeconfig, why in ((untrusted, "CERTIFICATE_VERIFY_FAILED"), (unreachable, "Connection refused")):
        out = run("scan", "--kubeconfig", str(kubeconfig), "--namespace", "kube-system", "--format", "json")
        assert out.returncode == 2, (out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        report = json.loads(out.stdout)
        assert report["results"] == []
        unreadable = report["summary"]["unreadable"]
        assert unreadable and all(line.startswith("cannot ") and why in line for line in unreadable), unreadable
        first, *rest = unreadable
        assert first.startswith("cannot get configmaps kubeadm-config in namespace kube-system: ")
        assert rest and all(": not tried, as " in line for line in rest), rest  # one failure is enough
        assert all(len(line) < 300 for line in unreadable), unreadable  # urllib3's retry chatter left out


def test_a_server_that_never_answers_ends_the_scan_in_seconds(tmp_path: Path) -> None:
    """A listener that accepts and says nothing (a hung apiserver, a black-holing proxy): one timeout, the other reads
    not tried, exit 2, well within the CronJob's deadline."""
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        kubeconfig = tmp_path / "silent.kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{silent.getsockname()[1]}",
                                                   "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))  # fmt: skip
        started = time.monotonic()
        out = run("scan", "--kubeconfig", str(kubeconfig), "-A", "--format", "json")
        took = time.monotonic() - started
    assert out.returncode == 2, (out.stdout, out.stderr)
    first, *rest = json.loads(out.stdout)["summary"]["unreadable"]
    assert "timed out waiting for 127.0.0.1:" in first or "no connection to 127.0.0.1:" in first, first
    assert rest and all(": not tried, as " in line for line in rest), rest
    assert took < 60, took  # a bound on the scan, not a speed measurement: 2 attempts of one read, not 3 x 4


def test_exit_zero_turns_a_violation_into_0_but_not_an_unreadable_object(seeded: dict[str, Any],
                                                                          cluster: Cluster) -> None:  # fmt: skip
    """`--exit-zero` (the chart's report CronJob: a finding is a Report, not a failed Job): 1 becomes 0, 2 stays."""
    ns = seeded["namespace"]
    found = run("scan", "--kubeconfig", str(cluster.kubeconfig("admin")), "--namespace", ns, "--format", "json",
                "--exit-zero")  # fmt: skip
    assert found.returncode == 0, found.stderr
    summary = json.loads(found.stdout)["summary"]
    assert summary["failed"] > 0 and summary["exitCode"] == 1, summary  # the output still says what check says
    refused = run("scan", "--kubeconfig", str(cluster.kubeconfig("jane")), "--namespace", ns, "--format", "json",
                  "--exit-zero")  # fmt: skip
    assert refused.returncode == 2, refused.stdout[-2000:]
