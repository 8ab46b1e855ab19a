"""Background reports as users get them: ``helm install --set reports.enabled=true`` on a real node.

The chart is installed with its defaults (webhook included) plus ``reports.enabled=true``,
``reports.installCRDs=true`` (the pinned OpenReports CRDs) and a schedule of every minute.  The
objects it must report on were there before the install, as on a cluster that was misconfigured
before auditwarden came: a weak audit-policy ConfigMap and a good one, labelled as the discovery
finds them.  The CronJob controller of kube-controller-manager fires the first scan; its pod gets
its ServiceAccount token and ``kube-root-ca.crt`` from the kubelet and reaches the apiserver the
in-cluster way (``KUBERNETES_SERVICE_HOST``, the ``kubernetes`` Service's ClusterIP, through
kube-proxy).  What the scan wrote is read back with ``kubectl get reports,clusterreports -A``.
Then the weak policy is fixed (the webhook admits the fix), the good one deleted (by the
break-glass user: the webhook refuses everyone else), and a second scan, a Job made from the
CronJob, must update the first Report in place and remove the other.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import policies as P
from tests.e2e.cluster import BREAK_GLASS_GROUP
from tests.e2e.node.node import IMAGE, POD_SUBNET, Node
from tests.e2e.webhook_server import HelmRelease, ensure_namespace, kubectl_apply, policy_configmap

RELEASE = "aw-reports"
NAMESPACE = "aw-reports"
SEEDED_NS = "aw-reports-seeded"
VALUES = {
    "image": {"repository": IMAGE.rsplit(":", 1)[0], "tag": IMAGE.rsplit(":", 1)[1]},
    "reports": {"enabled": True, "installCRDs": True, "schedule": "* * * * *"},
    "config": {"exemptions": {"groups": [BREAK_GLASS_GROUP]}},
}
#: seconds the first scheduled scan may take to be fired and to finish (the next minute, a pod's start, the scan)
FIRST_RUN_TIMEOUT = 120
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def seeded(node: Node) -> Iterator[dict[str, dict[str, Any]]]:
    """The two policy ConfigMaps, created before the chart (and its webhook) is installed."""
    ensure_namespace(node.cluster, SEEDED_NS)
    created = {}
    for name, policy in (("weak", P.COVERS_2), ("good", P.COVERS_ALL)):
        out = kubectl_apply(node.cluster, policy_configmap(name, SEEDED_NS, policy))
        assert out.returncode == 0, out.stderr
        created[name] = json.loads(node.kubectl("get", "configmap", name, "-n", SEEDED_NS, "-o", "json",
                                                check=True).stdout)  # fmt: skip
    try:
        yield created
    finally:  # after the release (and its webhook) is gone
        node.kubectl("delete", "namespace", SEEDED_NS, "--wait=false")


@pytest.fixture(scope="module")
def release(node: Node, seeded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRelease]:
    helm = HelmRelease(node.cluster, RELEASE, NAMESPACE, tmp_path_factory.mktemp("helm-reports"))
    try:
        with helm.installed_release(VALUES, "--wait", "--timeout", "240s"):
            FIGURES["helm install --wait (s)"] = helm.install_seconds
            yield helm
    finally:
        print("\nreports node figures: " + json.dumps(FIGURES))


# --------------------------------------------------------------------------- helpers


def cronjob_of(helm: HelmRelease) -> dict[str, Any]:
    [cron] = [d for d in helm.manifest() if d["kind"] == "CronJob"]
    return dict(cron)


def jobs_of(node: Node, cronjob: str) -> list[dict[str, Any]]:
    out = node.kubectl("get", "jobs", "-n", NAMESPACE, "-o", "json", check=True)
    return [
        j
        for j in json.loads(out.stdout)["items"]
        if any(o["kind"] == "CronJob" and o["name"] == cronjob for o in j["metadata"].get("ownerReferences", []))
    ]


def condition(job: dict[str, Any], kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in job.get("status", {}).get("conditions", []))


def job_story(node: Node, job: str) -> str:
    """Everything that says why a Job did not complete: its pods' logs, the Job, the events."""
    parts = []
    for args in (
        ("logs", "-n", NAMESPACE, "-l", f"job-name={job}", "--prefix", "--tail=-1", "--all-containers"),
        ("get", "job", job, "-n", NAMESPACE, "-o", "yaml"),
        ("get", "pods", "-n", NAMESPACE, "-l", f"job-name={job}", "-o", "wide"),
        ("get", "events", "-n", NAMESPACE, "--sort-by=.lastTimestamp"),
    ):
        out = node.kubectl(*args)
        parts.append(f"$ kubectl {' '.join(args)}\n{out.stdout}{out.stderr}")
    return "\n".join(parts)


def wait_job_complete(node: Node, job: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = node.kubectl("get", "job", job, "-n", NAMESPACE, "-o", "json")
        if out.returncode == 0:
            got: dict[str, Any] = json.loads(out.stdout)
            if condition(got, "Complete"):
                return got
            if condition(got, "Failed"):
                pytest.fail(f"Job {job} failed:\n{job_story(node, job)}", pytrace=False)
        time.sleep(1)
    pytest.fail(f"Job {job} not complete after {timeout:.0f}s:\n{job_story(node, job)}", pytrace=False)


def scan_output(node: Node, job: str) -> dict[str, Any]:
    """The scan's own JSON output (``--format json``) from the Job's pod log."""
    out = node.kubectl("logs", f"job/{job}", "-n", NAMESPACE, "--tail=-1", check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def all_reports(node: Node) -> list[dict[str, Any]]:
    out = node.kubectl("get", "reports,clusterreports", "-A", "-o", "json", check=True)
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def seeded_reports(node: Node) -> dict[str, dict[str, Any]]:
    return {
        r["metadata"]["name"]: r
        for r in all_reports(node)
        if r["kind"] == "Report" and r["metadata"]["namespace"] == SEEDED_NS
    }


def outcomes(report: dict[str, Any], result: str) -> set[tuple[str, str]]:
    return {(r["policy"], r["rule"]) for r in report["results"] if r["result"] == result}


# --------------------------------------------------------------------------- the test


def test_the_cronjob_writes_reports_that_a_second_run_updates_in_place_and_removes(
    node: Node, release: HelmRelease, seeded: dict[str, dict[str, Any]]
) -> None:
    t0 = time.monotonic()
    cron = cronjob_of(release)
    cronjob = str(cron["metadata"]["name"])
    service_account = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]

    # 1. the CronJob controller fires the first scan on the schedule
    def first_job() -> str | None:
        jobs = jobs_of(node, cronjob)
        return str(jobs[0]["metadata"]["name"]) if jobs else None

    deadline = time.monotonic() + FIRST_RUN_TIMEOUT
    while (job := first_job()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"the CronJob fired no Job in {FIRST_RUN_TIMEOUT}s:\n"
                        + node.kubectl("get", "cronjob", cronjob, "-n", NAMESPACE, "-o", "yaml").stdout)  # fmt: skip
        time.sleep(1)
    FIGURES["install to first Job (s)"] = round(time.monotonic() - t0, 1)
    done = wait_job_complete(node, job, max(deadline - time.monotonic(), 30))
    FIGURES["install to first scan done (s)"] = round(time.monotonic() - t0, 1)
    assert done["metadata"]["annotations"].get("batch.kubernetes.io/cronjob-scheduled-timestamp"), done["metadata"]
    first_scan = scan_output(node, job)
    # it read everything (in-cluster config, token, CA, RBAC) and found the weak policy
    assert first_scan["summary"]["unreadable"] == [], first_scan["summary"]
    assert first_scan["summary"]["exitCode"] == 1, first_scan["summary"]  # a violation, yet the Job completed
    sources = {r["source"] for r in first_scan["results"]}
    assert {f"ConfigMap {SEEDED_NS}/weak#data[policy.yaml]", f"ConfigMap {SEEDED_NS}/good#data[policy.yaml]"} <= sources

    # the apiserver's own audit log: the Reports were written by the CronJob's ServiceAccount (its projected
    # token), from a pod's address (through the kubernetes Service), not by anyone else; nothing else in the
    # session writes Reports
    writes = [e for e in node.cluster.audit_events()
              if e.get("objectRef", {}).get("resource") == "reports" and e["verb"] in ("create", "update")
              and e["stage"] == "ResponseComplete"]  # fmt: skip
    assert writes, "no Report write in the apiserver's audit log"
    for e in writes:
        assert e["user"]["username"] == f"system:serviceaccount:{NAMESPACE}:{service_account}", e["user"]
        assert ipaddress.ip_address(e["sourceIPs"][0]) in ipaddress.ip_network(POD_SUBNET), e["sourceIPs"]
        assert e["responseStatus"]["code"] in (200, 201), e["responseStatus"]

    # 2. what `kubectl get reports,clusterreports -A` lists
    first = seeded_reports(node)
    assert sorted(first) == ["auditwarden-configmap-good", "auditwarden-configmap-weak"], sorted(first)
    weak, good = first["auditwarden-configmap-weak"], first["auditwarden-configmap-good"]
    for report, name in ((weak, "weak"), (good, "good")):
        assert report["source"] == "auditwarden"
        assert report["scope"] == {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "namespace": SEEDED_NS,
                                   "uid": seeded[name]["metadata"]["uid"]}  # fmt: skip
    assert {("categories-below-minimum", c) for c in P.COVERS_2_MISSING} <= outcomes(weak, "fail")
    hidden = next(r for r in weak["results"] if r["rule"] == "secret-access" and r["result"] == "fail")
    assert hidden["severity"] == "high" and P.COVERS_2_HIDING_RULE in hidden["properties"]["hidingRule"]
    assert weak["summary"]["fail"] == len(outcomes(weak, "fail")) > 0
    assert good["summary"]["fail"] == 0 and good["summary"]["pass"] == 6
    assert outcomes(good, "fail") == set()
    table = node.kubectl("get", "reports,clusterreports", "-A", check=True).stdout
    print("\n$ kubectl get reports,clusterreports -A\n" + table)
    assert f"{SEEDED_NS}" in table and "auditwarden-configmap-weak" in table and "auditwarden-configmap-good" in table
    # the cluster-wide report: the CronJob's identity read everything in scope (an unread object is an error there)
    [whole] = [r for r in all_reports(node)
               if r["kind"] == "ClusterReport" and r["metadata"]["name"] == "auditwarden-cluster"]  # fmt: skip
    assert whole["summary"]["error"] == 0
    assert [(r["policy"], r["result"]) for r in whole["results"]] == [("scan", "pass")]

    # 3. the weak policy is fixed (the webhook admits a compliant change), the good one deleted by break-glass
    fixed = policy_configmap("weak", SEEDED_NS, P.COVERS_ALL)
    out = node.kubectl("replace", "-f", "-", input=json.dumps(fixed))
    assert out.returncode == 0, out.stderr
    refused = node.kubectl("delete", "configmap", "good", "-n", SEEDED_NS)
    assert refused.returncode != 0 and "auditwarden" in refused.stderr, refused.stderr  # the webhook is there
    out = node.kubectl("delete", "configmap", "good", "-n", SEEDED_NS, user="breakglass")
    assert out.returncode == 0, out.stderr

    # 4. a second scan, a Job made from the CronJob once the schedule is suspended (no scan runs beside it)
    node.kubectl("patch", "cronjob", cronjob, "-n", NAMESPACE, "--type=merge", "-p", '{"spec":{"suspend":true}}',
                 check=True)  # fmt: skip
    for j in jobs_of(node, cronjob):  # a Job the schedule fired meanwhile ends first
        wait_job_complete(node, j["metadata"]["name"], 90)
    t1 = time.monotonic()
    node.kubectl("create", "job", "aw-reports-second", f"--from=cronjob/{cronjob}", "-n", NAMESPACE, check=True)
    wait_job_complete(node, "aw-reports-second", 90)
    FIGURES["second scan (create job --from) (s)"] = round(time.monotonic() - t1, 1)
    second_scan = scan_output(node, "aw-reports-second")
    assert second_scan["summary"]["unreadable"] == [], second_scan["summary"]

    after = seeded_reports(node)
    assert sorted(after) == ["auditwarden-configmap-weak"], sorted(after)  # the deleted object's Report is gone
    updated = after["auditwarden-configmap-weak"]
    assert updated["metadata"]["uid"] == weak["metadata"]["uid"]  # updated in place, not re-created
    assert updated["metadata"]["resourceVersion"] != weak["metadata"]["resourceVersion"]
    assert updated["summary"]["fail"] == 0 and updated["summary"]["pass"] == 6
    assert outcomes(updated, "fail") == set()
    FIGURES["test (s)"] = round(time.monotonic() - t0, 1)
