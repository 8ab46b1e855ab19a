"""Real AdmissionReviews over real TLS to the real server: every kind of verdict."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.integration.conftest import Server
from tests.support.reviews import (
    GOOD_POLICY,
    INVALID_POLICY,
    WEAK_POLICY,
    WEAK_POLICY_2,
    apiserver_pod,
    configmap,
    plain_pod,
    policy_configmap,
    review,
)
from webhook.cli import main


def metric_value(text: str, metric: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus exposition text (label order does not matter)."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if not m or m.group(1) != metric:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if found == labels:
            return float(m.group(3))
    return None


def gauge(server: Server, namespace: str, name: str) -> float | None:
    return metric_value(server.metrics(), "auditwarden_policy_categories_covered", namespace=namespace, name=name)


def assert_warnings_valid(resp: dict[str, Any]) -> None:
    warnings = resp.get("warnings", [])
    assert len(warnings) <= 5
    for w in warnings:
        assert 0 < len(w) <= 120 and all(ch.isprintable() for ch in w)


def test_allow(enforce: Server) -> None:
    resp = enforce.answer(review(policy_configmap()))
    assert resp["allowed"] is True
    assert resp["auditAnnotations"]["verdict"] == "allow"
    assert resp["auditAnnotations"]["categories"].split(",") == [
        "authentication", "api-calls", "rbac-denials", "pod-creation", "secret-access", "rbac-changes",
    ]  # fmt: skip


def test_deny(enforce: Server) -> None:
    resp = enforce.answer(review(policy_configmap(WEAK_POLICY)))
    assert resp["allowed"] is False
    status = resp["status"]
    assert status["code"] == 403 and status["reason"] == "Forbidden"
    assert status["message"].startswith(
        "ConfigMap kube-system/audit-policy is refused (mode enforce, profile baseline)"
    )
    assert "[categories-below-minimum]" in status["message"] and "Fix:" in status["message"]
    assert resp["auditAnnotations"]["verdict"] == "deny"
    assert_warnings_valid(resp)


def test_a_denial_names_the_repair_and_the_policy_fix_writes_is_allowed(enforce: Server, tmp_path: Path) -> None:
    resp = enforce.answer(review(policy_configmap(WEAK_POLICY)))
    message = resp["status"]["message"]
    # WEAK_POLICY: rule 0 hides secrets, nothing else matches: the rules go before rule 0 or at the end.
    assert re.search(r"Fix: (remove .*; )?add (before rule 0|at the end): - level: Metadata, ", message), message
    assert all(len(w) <= 120 for w in resp["warnings"]) and not any("Fix: add" in w for w in resp["warnings"])
    policy = tmp_path / "policy.yaml"
    policy.write_text(WEAK_POLICY)
    assert CliRunner().invoke(main, ["fix", "--write", str(policy)]).exit_code == 0
    fixed = enforce.answer(review(policy_configmap(policy.read_text())))
    assert fixed["allowed"] is True and fixed["auditAnnotations"]["verdict"] in ("allow", "warn")


def test_invalid_policy_is_denied_with_the_apiservers_reason(enforce: Server) -> None:
    resp = enforce.answer(review(policy_configmap(INVALID_POLICY)))
    assert resp["allowed"] is False
    assert "kube-apiserver would refuse to start with this policy" in resp["status"]["message"]
    assert "audit.k8s.io/v1beta1" in resp["status"]["message"]


def test_ratchet(start_server: Any) -> None:
    server: Server = start_server({"mode": "ratchet"})
    same = server.answer(review(policy_configmap(WEAK_POLICY_2), operation="UPDATE", old=policy_configmap(WEAK_POLICY)))
    assert same["allowed"] is True and same["auditAnnotations"]["verdict"] == "warn"
    assert any("covers 0 of 6" in w for w in same["warnings"])
    worse = server.answer(review(policy_configmap(WEAK_POLICY), operation="UPDATE", old=policy_configmap()))
    assert worse["allowed"] is False and worse["status"]["code"] == 403
    create = server.answer(review(policy_configmap(WEAK_POLICY)))
    assert create["allowed"] is False  # a CREATE has no old version: judged as in enforce
    invalid = server.answer(review(policy_configmap(INVALID_POLICY), operation="UPDATE",
                                   old=policy_configmap(INVALID_POLICY)))  # fmt: skip
    assert invalid["allowed"] is False  # kube-apiserver would not start: always denied


def test_warn_mode(start_server: Any) -> None:
    server: Server = start_server({"mode": "warn"})
    resp = server.answer(review(policy_configmap(WEAK_POLICY)))
    assert resp["allowed"] is True and "status" not in resp
    assert resp["auditAnnotations"]["verdict"] == "warn"
    assert resp["warnings"][0].startswith("the policy covers 0 of 6 event categories")
    assert_warnings_valid(resp)
    pod = server.answer(review(apiserver_pod(drop=("--audit-log-path", "--audit-log-max"))))
    assert pod["allowed"] is True and pod["auditAnnotations"]["verdict"] == "warn"
    assert pod["warnings"] and pod["auditAnnotations"]["violations"]
    assert_warnings_valid(pod)


def test_dry_run_same_verdict_no_gauge(enforce: Server) -> None:
    cm = policy_configmap(name="dry-run-policy")
    dry = enforce.answer(review(cm, dry_run=True))
    assert dry["allowed"] is True
    assert gauge(enforce, "kube-system", "dry-run-policy") is None  # no side effect
    real = enforce.answer(review(cm))
    assert {k: v for k, v in dry.items() if k != "uid"} == {k: v for k, v in real.items() if k != "uid"}
    assert gauge(enforce, "kube-system", "dry-run-policy") == 6
    bad_dry = enforce.answer(review(policy_configmap(WEAK_POLICY, name="dry-run-policy"), operation="UPDATE",
                                    old=cm, dry_run=True))  # fmt: skip
    bad_real = enforce.answer(review(policy_configmap(WEAK_POLICY, name="dry-run-policy"), operation="UPDATE", old=cm))
    assert bad_dry["allowed"] is bad_real["allowed"] is False
    assert bad_dry["status"] == bad_real["status"]
    assert gauge(enforce, "kube-system", "dry-run-policy") == 6


def test_exemption(enforce: Server) -> None:
    by_user = enforce.answer(review(policy_configmap(WEAK_POLICY), user="breakglass"))
    assert by_user["allowed"] is True
    assert by_user["auditAnnotations"]["verdict"] == "exempted"
    assert by_user["auditAnnotations"]["exempted-by"] == "user:breakglass"
    assert by_user["warnings"][0].startswith("allowed only because user:breakglass is exempt")
    by_group = enforce.answer(review(policy_configmap(WEAK_POLICY), user="oncall", groups=["system:breakglass"]))
    assert by_group["allowed"] is True and by_group["auditAnnotations"]["exempted-by"] == "group:system:breakglass"
    compliant = enforce.answer(review(policy_configmap(), user="breakglass"))
    assert compliant["auditAnnotations"]["verdict"] == "allow" and "exempted-by" not in compliant["auditAnnotations"]


def test_delete(enforce: Server) -> None:
    cm = enforce.answer(review(None, old=policy_configmap(), operation="DELETE"))
    assert cm["allowed"] is False
    assert "deleting it removes an audit policy" in cm["status"]["message"]
    unrelated = enforce.answer(review(None, old=configmap({"a": "b"}, name="x", namespace="y"), operation="DELETE"))
    assert unrelated["allowed"] is True
    pod = enforce.answer(review(None, old=apiserver_pod(drop=("--audit-log-path",)), operation="DELETE"))
    assert pod["allowed"] is True and pod["auditAnnotations"] == {"verdict": "skip"}


def test_mirror_pod(enforce: Server) -> None:
    good = enforce.answer(review(apiserver_pod()))
    assert good["allowed"] is True and good["auditAnnotations"]["verdict"] == "allow"
    assert any("was not supplied" in w for w in good["warnings"])  # no policySources: content unseen
    bad = enforce.answer(review(apiserver_pod(drop=("--audit-log-path",))))
    assert bad["allowed"] is False
    assert "Pod kube-system/kube-apiserver-cp-1 is refused" in bad["status"]["message"]
    assert "--audit-log-path" in bad["status"]["message"]
    dropped = enforce.answer(review(apiserver_pod(drop=("--audit-policy-file",)), operation="UPDATE",
                                    old=apiserver_pod()))  # fmt: skip
    assert dropped["allowed"] is False


def test_mirror_pod_in_warn_mode_is_allowed_with_warnings(start_server: Any) -> None:
    server: Server = start_server({"mode": "enforce", "targets": {"mirrorPods": {"mode": "warn"}}})
    resp = server.answer(review(apiserver_pod(drop=("--audit-log-path",))))
    assert resp["allowed"] is True and resp["auditAnnotations"]["verdict"] == "warn"
    assert resp["warnings"]
    assert_warnings_valid(resp)
    assert server.answer(review(policy_configmap(WEAK_POLICY)))["allowed"] is False  # ConfigMaps still enforced


@pytest.mark.parametrize(
    "doc",
    [
        review(configmap({"settings.json": '{"theme": "dark"}'}, name="frontend", namespace="shop")),
        review(plain_pod()),
        review(apiserver_pod(mirror=False)),
        review(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s", "namespace": "shop"},
                "data": {"policy": "YXVkaXQuazhzLmlv"},
            }
        ),
        review(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "shop"}},
            group="apps",
        ),
        review(apiserver_pod(), operation="UPDATE", old=apiserver_pod(), sub_resource="status"),
    ],
    ids=["configmap", "pod", "non-mirror-apiserver-pod", "secret", "deployment", "mirror-pod-status"],
)
def test_unrelated_objects_are_allowed_at_once(enforce: Server, doc: dict[str, Any]) -> None:
    resp = enforce.answer(doc)
    assert resp == {"uid": doc["request"]["uid"], "allowed": True, "auditAnnotations": {"verdict": "skip"}}


def test_metrics_count_requests(enforce: Server) -> None:
    labels = {"kind": "ConfigMap", "operation": "CREATE", "verdict": "deny", "mode": "enforce"}
    before = metric_value(enforce.metrics(), "auditwarden_admission_requests_total", **labels) or 0.0
    enforce.answer(review(policy_configmap(WEAK_POLICY)))
    text = enforce.metrics()
    assert metric_value(text, "auditwarden_admission_requests_total", **labels) == before + 1
    assert "auditwarden_admission_duration_seconds_bucket" in text
    assert "auditwarden_tls_certificate_not_after_timestamp_seconds" in text


def test_decision_logs_are_json_lines_without_contents(enforce: Server) -> None:
    import json
    import time

    marker = "do-not-log-this-policy-text"
    enforce.answer(review(policy_configmap(WEAK_POLICY + f"# {marker}\n", name="logged")))
    time.sleep(0.3)
    lines = [json.loads(line) for line in enforce.log().splitlines() if line.startswith("{")]
    decisions = [e for e in lines if e.get("msg") == "admission decision" and e.get("name") == "logged"]
    assert decisions and decisions[-1]["verdict"] == "deny" and decisions[-1]["user"] == "alice"
    assert decisions[-1]["violations"] == ["categories-below-minimum"]
    assert marker not in enforce.log()


def test_health_endpoints(enforce: Server) -> None:
    assert enforce.get("/healthz").json() == {"status": "ok"}
    ready = enforce.get("/readyz").json()
    assert ready["status"] == "ready" and ready["certificate"]["loaded"] is True
    assert enforce.post(b"{}", path="/noop").status_code in (404, 405)


def test_good_policy_is_still_allowed_after_everything(enforce: Server) -> None:
    assert enforce.answer(review(policy_configmap(GOOD_POLICY)))["allowed"] is True
