"""The Flask app in-process (Flask's test client): routing, transport checks, side effects."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from tests.support.reviews import (
    GOOD_POLICY,
    WEAK_POLICY,
    apiserver_pod,
    body,
    configmap,
    plain_pod,
    policy_configmap,
    review,
)
from webhook.service.app import create_app, parse_timeout
from webhook.service.cache import VerdictCache
from webhook.service.config import ServiceConfig, parse_config
from webhook.service.isolation import AnalysisFailed
from webhook.service.kube import PolicySourceError, PolicySources
from webhook.service.tls import CertReloader


def make_app(raw: Mapping[str, Any] | None = None, **kw: Any) -> Flask:
    config = parse_config(dict(raw or {}))
    return create_app(config, **kw)


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    app = make_app({"exemptions": {"users": ["breakglass"], "groups": ["system:breakglass"]}})
    yield app.test_client()


def post(client: FlaskClient, doc: Mapping[str, Any] | bytes, path: str = "/validate", **kw: Any) -> Any:
    data = doc if isinstance(doc, bytes) else body(dict(doc))
    return client.post(path, data=data, content_type=kw.pop("content_type", "application/json"), **kw)


def answer(client: FlaskClient, doc: Mapping[str, Any]) -> dict[str, Any]:
    r = post(client, doc)
    assert r.status_code == 200, r.get_data(as_text=True)
    out: dict[str, Any] = r.get_json()["response"]
    assert out["uid"] == doc["request"]["uid"]
    return out


def sample(metric: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(metric, labels or None)
    return float(value or 0.0)


# ----------------------------------------------------------------------------- routing


def test_compliant_policy_is_allowed(client: FlaskClient) -> None:
    resp = answer(client, review(policy_configmap()))
    assert resp["allowed"] is True
    assert resp["auditAnnotations"]["verdict"] == "allow"


def test_non_compliant_policy_is_denied(client: FlaskClient) -> None:
    resp = answer(client, review(policy_configmap(WEAK_POLICY)))
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 403
    assert "ConfigMap kube-system/audit-policy" in resp["status"]["message"]


def test_exemption_by_user_and_by_group(client: FlaskClient) -> None:
    resp = answer(client, review(policy_configmap(WEAK_POLICY), user="breakglass"))
    assert resp["allowed"] is True and resp["auditAnnotations"]["exempted-by"] == "user:breakglass"
    resp = answer(client, review(policy_configmap(WEAK_POLICY), user="carol", groups=["system:breakglass"]))
    assert resp["allowed"] is True and resp["auditAnnotations"]["exempted-by"] == "group:system:breakglass"


def test_an_annotation_on_the_object_is_no_exemption(client: FlaskClient) -> None:
    cm = policy_configmap(WEAK_POLICY)
    cm["metadata"]["annotations"] = {"auditwarden.io/exempt": "true", "auditwarden.io/skip": "true"}
    assert answer(client, review(cm))["allowed"] is False


class ExplodingAnalyzer:
    """Fails the test if the core would be asked (the object must be allowed at once)."""

    def judge(self, *a: Any, **kw: Any) -> Any:
        raise AssertionError("judge() must not be called for this request")


@pytest.mark.parametrize(
    "doc",
    [
        review(configmap({"app.properties": "color=blue"}, name="app", namespace="shop")),
        review(configmap(None, name="empty", namespace="shop")),
        review(plain_pod()),
        review(apiserver_pod(mirror=False)),  # a kube-apiserver Pod that is not a mirror Pod
        review(None, old=apiserver_pod(), operation="DELETE"),  # the kubelet's clean-up
        review(apiserver_pod(), operation="UPDATE", old=apiserver_pod(), sub_resource="status"),
        review({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"}}),
        review(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "d"}}, group="apps"
        ),
        review(policy_configmap(WEAK_POLICY), operation="CONNECT"),
    ],
    ids=[
        "unrelated-cm",
        "cm-without-data",
        "plain-pod",
        "non-mirror-apiserver-pod",
        "mirror-pod-delete",
        "pod-status",
        "secret",
        "deployment",
        "connect",
    ],
)
def test_everything_else_is_allowed_at_once(doc: dict[str, Any]) -> None:
    app = make_app(analyzer=ExplodingAnalyzer())
    resp = answer(app.test_client(), doc)
    assert resp["allowed"] is True
    assert resp["auditAnnotations"] == {"verdict": "skip"}
    assert "warnings" not in resp


def test_unrelated_configmaps_are_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    from webhook.core import yamlsafe

    def boom(*a: Any, **kw: Any) -> Any:
        raise AssertionError("YAML parsed for an unrelated ConfigMap")

    monkeypatch.setattr(yamlsafe, "load_all", boom)
    big = configmap({f"k{i}": "x: [1, 2, 3]\n" * 10 for i in range(2000)}, name="big", namespace="shop")
    assert answer(make_app().test_client(), review(big))["allowed"] is True


def test_removing_a_policy_from_a_configmap_is_judged(client: FlaskClient) -> None:
    # The new version mentions nothing audit-related; the old one did: judged as a change.
    resp = answer(client, review(configmap({"note": "gone"}), operation="UPDATE", old=policy_configmap()))
    assert resp["allowed"] is False
    assert "configuration-dropped" in resp["auditAnnotations"]["violations"]


def test_delete_of_a_policy_configmap_is_denied_in_enforce(client: FlaskClient) -> None:
    resp = answer(client, review(None, old=policy_configmap(), operation="DELETE"))
    assert resp["allowed"] is False
    assert "configuration-deleted" in resp["auditAnnotations"]["violations"]


def test_mirror_pods_use_their_own_target_mode() -> None:
    app = make_app({"mode": "enforce", "targets": {"mirrorPods": {"mode": "warn"}}})
    c = app.test_client()
    pod = apiserver_pod(drop=("--audit-log-path",))
    resp = answer(c, review(pod))
    assert resp["allowed"] is True and resp["auditAnnotations"]["verdict"] == "warn"
    assert any("--audit-log-path" in w or "backend" in w for w in resp["warnings"])
    # ConfigMaps still enforce.
    assert answer(c, review(policy_configmap(WEAK_POLICY)))["allowed"] is False


def test_ratchet_allows_a_change_that_is_not_worse() -> None:
    c = make_app({"mode": "ratchet"}).test_client()
    same = answer(c, review(policy_configmap(WEAK_POLICY), operation="UPDATE", old=policy_configmap(WEAK_POLICY)))
    assert same["allowed"] is True and same["auditAnnotations"]["verdict"] == "warn"
    worse = answer(c, review(policy_configmap(WEAK_POLICY), operation="UPDATE", old=policy_configmap(GOOD_POLICY)))
    assert worse["allowed"] is False


# ------------------------------------------------------------------- transport checks


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    r = post(client, review(policy_configmap()), content_type="text/yaml")
    assert r.status_code == 415
    assert r.get_json() == {"error": "content type must be application/json, got 'text/yaml'"}
    r = client.post("/validate", data=b"{}")
    assert r.status_code == 415


def test_body_over_the_limit_is_413_by_content_length() -> None:
    c = make_app({"maxRequestBytes": 4096}).test_client()
    r = post(c, b"{" + b" " * 5000 + b"}")
    assert r.status_code == 413
    assert "larger than the limit of 4096 bytes" in r.get_json()["error"]


def test_body_over_the_limit_is_413_without_content_length() -> None:
    from werkzeug.test import create_environ

    app = make_app({"maxRequestBytes": 4096})

    class Endless(io.RawIOBase):
        read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            n = len(b)
            b[:n] = b" " * n
            self.read_bytes += n
            return n

    stream = Endless()
    environ = create_environ("/validate", method="POST", content_type="application/json")
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = stream
    environ["wsgi.input_terminated"] = True  # what gunicorn sets for a chunked body
    status: list[str] = []
    out = b"".join(app(environ, lambda s, h, *a: status.append(s)))  # type: ignore[arg-type]
    assert status[0].startswith("413")
    assert b"larger than the limit of 4096 bytes" in out
    assert stream.read_bytes <= 4096 + 64 * 1024  # read up to the limit, never the whole stream


def test_a_client_that_stops_sending_gets_400() -> None:
    from werkzeug.test import create_environ

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            raise ConnectionResetError("peer went away")

    environ = create_environ("/validate", method="POST", content_type="application/json")
    environ["CONTENT_LENGTH"] = "100"
    environ["wsgi.input"] = Broken()
    status: list[str] = []
    out = b"".join(make_app()(environ, lambda s, h, *a: status.append(s)))  # type: ignore[arg-type]
    assert status[0].startswith("400")
    assert json.loads(out)["error"].startswith("the request body could not be read: ")


def test_malformed_json_is_400_with_the_reason(client: FlaskClient) -> None:
    r = post(client, b'{"apiVersion": ')
    assert r.status_code == 400
    assert r.get_json()["error"].startswith("body is not valid JSON")


def test_other_methods_and_paths_answer_json(client: FlaskClient) -> None:
    assert client.get("/validate").status_code == 405
    r = client.get("/nope")
    assert r.status_code == 404 and "error" in r.get_json()


def test_noop_exists_only_for_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    assert post(make_app().test_client(), b"{}", path="/noop").status_code == 404
    monkeypatch.setenv("AUDITWARDEN_BENCH_NOOP", "1")
    r = post(make_app().test_client(), b"not even json", path="/noop")
    assert r.status_code == 200 and r.get_json()["response"]["allowed"] is True


def test_the_apiserver_timeout_parameter() -> None:
    assert parse_timeout("10s") == 10.0
    assert parse_timeout("1500ms") == 1.5
    assert parse_timeout("1m") == 60.0
    assert parse_timeout(None) is None and parse_timeout("soon") is None


def test_the_service_judges_a_review_body_without_flask() -> None:
    from webhook.service.config import build_context
    from webhook.service.decide import Service

    config = parse_config({})
    outcome = Service(config, build_context(config)).review(body(review(policy_configmap(WEAK_POLICY))))
    assert outcome.status == 200 and outcome.kind == "ConfigMap"
    assert outcome.verdict is not None and outcome.verdict.decision == "deny"
    assert Service(config, build_context(config)).review(b"[]").body == {
        "error": "body must be a JSON object (an AdmissionReview), got an array"}  # fmt: skip


# ---------------------------------------------------------------------- failure modes


class FailingAnalyzer:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def judge(self, *a: Any, **kw: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(("mode", "allowed"), [("enforce", False), ("ratchet", False), ("warn", True)])
def test_an_internal_error_is_answered_never_a_500(mode: str, allowed: bool) -> None:
    c = make_app({"mode": mode}, analyzer=FailingAnalyzer(KeyError("boom"))).test_client()
    r = post(c, review(policy_configmap()))
    assert r.status_code == 200
    resp = r.get_json()["response"]
    assert resp["allowed"] is allowed
    assert "internal error" in resp["warnings"][0]
    if not allowed:
        assert resp["status"]["code"] == 403 and "refused to be safe" in resp["status"]["message"]
    # The next request is answered normally.
    assert post(c, review(configmap({"a": "b"}, name="x", namespace="y"))).status_code == 200


def test_an_analysis_deadline_is_a_denial_with_the_reason() -> None:
    failed = AnalysisFailed("the analysis did not finish within 2.0 s: the content is too large", "deadline")
    c = make_app(analyzer=FailingAnalyzer(failed)).test_client()
    before = sample("auditwarden_analysis_failures_total", reason="deadline")
    resp = answer(c, review(policy_configmap()))
    assert resp["allowed"] is False
    assert "did not finish within 2.0 s" in resp["status"]["message"]
    assert sample("auditwarden_analysis_failures_total", reason="deadline") == before + 1


def test_an_analysis_deadline_is_a_denial_in_ratchet_mode_although_nothing_got_worse() -> None:
    failed = AnalysisFailed("the analysis did not finish within 2.0 s: the content is too large", "deadline")
    c = make_app({"mode": "ratchet"}, analyzer=FailingAnalyzer(failed)).test_client()
    cm = policy_configmap()
    resp = answer(c, review(cm, operation="UPDATE", old=cm))
    assert resp["allowed"] is False
    assert resp["auditAnnotations"] == {"verdict": "deny", "violations": "analysis-failed"}
    assert "(mode ratchet, profile baseline): 1) [analysis-failed] the analysis did not finish within 2.0 s" in (
        resp["status"]["message"])  # fmt: skip


def test_an_analysis_deadline_is_a_warning_in_warn_mode_and_exempted_for_the_break_glass_user() -> None:
    failed = AnalysisFailed("the analysis did not finish within 2.0 s", "deadline")
    c = make_app({"mode": "warn"}, analyzer=FailingAnalyzer(failed)).test_client()
    resp = answer(c, review(policy_configmap()))
    assert (resp["allowed"], resp["auditAnnotations"]["verdict"]) == (True, "warn")
    c = make_app({"exemptions": {"users": ["breakglass"]}}, analyzer=FailingAnalyzer(failed)).test_client()
    resp = answer(c, review(policy_configmap(), user="breakglass"))
    assert (resp["allowed"], resp["auditAnnotations"]["verdict"]) == (True, "exempted")
    assert resp["auditAnnotations"]["violations"] == "analysis-failed"


# ---------------------------------------------------------------- dry-run, metrics, cache


def test_dry_run_gets_the_same_verdict_without_side_effects() -> None:
    cache = VerdictCache()
    c = make_app(cache=cache).test_client()
    cm = policy_configmap(name="dry-run-only")
    dry = answer(c, review(cm, dry_run=True))
    assert dry["allowed"] is True
    assert (
        REGISTRY.get_sample_value(
            "auditwarden_policy_categories_covered", {"namespace": "kube-system", "name": "dry-run-only"}
        )
        is None
    )
    assert len(cache) == 0
    real = answer(c, review(cm))
    assert {k: v for k, v in real.items() if k != "uid"} == {k: v for k, v in dry.items() if k != "uid"}
    assert sample("auditwarden_policy_categories_covered", namespace="kube-system", name="dry-run-only") == 6
    assert len(cache) == 1


def test_denied_writes_do_not_move_the_gauge(client: FlaskClient) -> None:
    answer(client, review(policy_configmap(name="gauge-test")))
    assert sample("auditwarden_policy_categories_covered", namespace="kube-system", name="gauge-test") == 6
    answer(client, review(policy_configmap(WEAK_POLICY, name="gauge-test"), operation="UPDATE",
                          old=policy_configmap(name="gauge-test")))  # fmt: skip
    assert sample("auditwarden_policy_categories_covered", namespace="kube-system", name="gauge-test") == 6


def test_request_counter_and_duration(client: FlaskClient) -> None:
    labels = {"kind": "ConfigMap", "operation": "CREATE", "verdict": "deny", "mode": "enforce"}
    before = sample("auditwarden_admission_requests_total", **labels)
    before_count = sample("auditwarden_admission_duration_seconds_count", kind="ConfigMap")
    answer(client, review(policy_configmap(WEAK_POLICY)))
    assert sample("auditwarden_admission_requests_total", **labels) == before + 1
    assert sample("auditwarden_admission_duration_seconds_count", kind="ConfigMap") == before_count + 1
    before_bad = sample("auditwarden_admission_bad_requests_total", reason="not-json")
    post(client, b"{")
    assert sample("auditwarden_admission_bad_requests_total", reason="not-json") == before_bad + 1
    text = client.get("/metrics").get_data(as_text=True)
    assert "auditwarden_admission_requests_total" in text and "auditwarden_policy_categories_covered" in text


def test_the_verdict_memo_is_keyed_by_content() -> None:
    cache = VerdictCache()
    c = make_app({"exemptions": {"users": ["breakglass"]}}, cache=cache).test_client()
    cm = policy_configmap(WEAK_POLICY)
    first = answer(c, review(cm))
    cm2 = policy_configmap(WEAK_POLICY)  # different uid/resourceVersion: the same content
    cm2["metadata"]["resourceVersion"] = "99"
    cm2["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    second = answer(c, review(cm2))
    assert cache.hits == 1 and first["status"] == second["status"]
    answer(c, review(policy_configmap(GOOD_POLICY)))
    assert cache.hits == 1 and len(cache) == 2
    answer(c, review(cm, user="breakglass"))  # the exemption is part of the key
    assert cache.hits == 1


# ------------------------------------------------------------------------ policySources


class FakeFetcher:
    def __init__(self, data: Mapping[str, Any] | Exception) -> None:
        self.data = data
        self.calls = 0

    def __call__(self, namespace: str, name: str, timeout: float) -> Mapping[str, Any]:
        self.calls += 1
        assert timeout <= 2.0
        if isinstance(self.data, Exception):
            raise self.data
        return self.data


def sources_app(fetcher: FakeFetcher, **raw: Any) -> tuple[Flask, PolicySources]:
    config = parse_config({"policySources": {"/etc/kubernetes/audit-policy.yaml": "kube-system/audit-policy"}, **raw})
    sources = PolicySources(config.policy_sources, ttl_seconds=60, fetcher=fetcher)
    return create_app(config, sources=sources, cache=VerdictCache(0)), sources


def test_policy_source_is_judged_with_the_mirror_pod() -> None:
    fetcher = FakeFetcher({"policy.yaml": WEAK_POLICY})
    app, _ = sources_app(fetcher)
    resp = answer(app.test_client(), review(apiserver_pod()))
    assert resp["allowed"] is False
    assert "categories-below-minimum" in resp["auditAnnotations"]["violations"]
    assert resp["status"]["message"].endswith(
        "(The policy of --audit-policy-file=/etc/kubernetes/audit-policy.yaml was read from ConfigMap "
        "kube-system/audit-policy, per policySources.)"
    )
    fetcher.data = {"policy.yaml": GOOD_POLICY}
    resp = answer(app.test_client(), review(apiserver_pod()))
    assert resp["allowed"] is False  # cached for the TTL: still the weak policy
    assert fetcher.calls == 1


def test_policy_source_dry_run_reads_but_never_writes_the_cache() -> None:
    fetcher = FakeFetcher({"policy.yaml": GOOD_POLICY})
    app, _ = sources_app(fetcher)
    c = app.test_client()
    resp = answer(c, review(apiserver_pod(), dry_run=True))
    assert resp["allowed"] is True and resp["auditAnnotations"]["categories"]
    answer(c, review(apiserver_pod(), dry_run=True))
    assert fetcher.calls == 2  # nothing was cached by the dry runs
    answer(c, review(apiserver_pod()))
    answer(c, review(apiserver_pod(), dry_run=True))
    assert fetcher.calls == 3  # the real request cached it; the dry run read it


def test_policy_source_failure_is_a_warning() -> None:
    fetcher = FakeFetcher(PolicySourceError("reading ConfigMap kube-system/audit-policy: HTTP 403 Forbidden"))
    app, _ = sources_app(fetcher)
    resp = answer(app.test_client(), review(apiserver_pod()))
    assert resp["allowed"] is True
    assert any(w.startswith("policySources: reading ConfigMap kube-system/audit-policy: HTTP 403") for w in
               resp["warnings"])  # fmt: skip


def test_policy_source_failure_denies_when_configured() -> None:
    fetcher = FakeFetcher(PolicySourceError("reading ConfigMap kube-system/audit-policy: timed out"))
    app, _ = sources_app(fetcher, denyOnPolicySourceError=True)
    resp = answer(app.test_client(), review(apiserver_pod()))
    assert resp["allowed"] is False
    assert "denyOnPolicySourceError" in resp["status"]["message"]
    exempt = answer(app.test_client(), review(apiserver_pod(), user="x", groups=["system:masters"]))
    assert exempt["allowed"] is False
    app2, _ = sources_app(FakeFetcher(PolicySourceError("down")), denyOnPolicySourceError=True,
                          exemptions={"users": ["breakglass"]})  # fmt: skip
    resp = answer(app2.test_client(), review(apiserver_pod(), user="breakglass"))
    assert resp["allowed"] is True and resp["auditAnnotations"]["verdict"] == "exempted"


def test_a_denial_for_a_failed_policy_lookup_names_it_in_the_violations_annotation() -> None:
    app, _ = sources_app(FakeFetcher(PolicySourceError("down")), denyOnPolicySourceError=True)
    resp = answer(app.test_client(), review(apiserver_pod()))
    assert resp["allowed"] is False
    assert resp["auditAnnotations"]["violations"] == "policy-source-error"
    assert "[policy-source-error] policySources: down;" in resp["status"]["message"]


def test_an_exempt_user_with_deny_on_policy_source_error_is_allowed_with_the_exempted_warning() -> None:
    app, _ = sources_app(FakeFetcher(PolicySourceError("down")), denyOnPolicySourceError=True,
                         exemptions={"users": ["breakglass"]})  # fmt: skip
    resp = answer(app.test_client(), review(apiserver_pod(), user="breakglass"))
    assert resp["allowed"] is True and "status" not in resp
    assert resp["auditAnnotations"] == {
        "verdict": "exempted", "exempted-by": "user:breakglass", "violations": "policy-source-error"}  # fmt: skip
    assert resp["warnings"][0].startswith("allowed only because user:breakglass is exempt (break-glass)")
    assert any(w.startswith("policySources: down;") for w in resp["warnings"])


def test_unmapped_policy_paths_never_touch_the_api() -> None:
    fetcher = FakeFetcher({"policy.yaml": GOOD_POLICY})
    app, _ = sources_app(fetcher)
    flags = [f.replace("/etc/kubernetes/audit-policy.yaml", "/etc/other.yaml") for f in apiserver_pod()["spec"][
        "containers"][0]["command"]]  # fmt: skip
    answer(app.test_client(), review(apiserver_pod(flags)))
    answer(app.test_client(), review(policy_configmap()))
    assert fetcher.calls == 0


# --------------------------------------------------------------------- health, readiness


def test_healthz_and_readyz_without_tls(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def _write_cert(directory: Path, *, days: int, not_before_days: int = -1) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=not_before_days))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    crt, pem = directory / "tls.crt", directory / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt, pem


def test_readyz_fails_with_an_expired_certificate(tmp_path: Path) -> None:
    crt, key = _write_cert(tmp_path, days=-1, not_before_days=-10)
    app = create_app(ServiceConfig(), tls=CertReloader(str(crt), str(key)))
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert "expired" in r.get_json()["problems"][0]
    crt, key = _write_cert(tmp_path, days=30)
    app = create_app(ServiceConfig(), tls=CertReloader(str(crt), str(key), interval=0))
    r = app.test_client().get("/readyz")
    assert r.status_code == 200 and r.get_json()["certificate"]["loaded"] is True


def test_readyz_fails_without_a_certificate(tmp_path: Path) -> None:
    app = create_app(ServiceConfig(), tls=CertReloader(str(tmp_path / "no.crt"), str(tmp_path / "no.key")))
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert "no serving certificate loaded" in r.get_json()["problems"][0]


def test_decision_log_lines_never_contain_object_contents(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret_marker = "s3cr3t-value-in-the-policy"
    policy = WEAK_POLICY + f"# {secret_marker}\n"
    with caplog.at_level("INFO", logger="auditwarden"):
        answer(client, review(policy_configmap(policy)))
    decisions = [r for r in caplog.records if r.getMessage() == "admission decision"]
    assert decisions
    fields = decisions[-1].fields  # type: ignore[attr-defined]
    assert fields["verdict"] == "deny" and fields["name"] == "audit-policy" and fields["user"] == "alice"
    assert fields["violations"] == ["categories-below-minimum"]
    # The full repair goes to the log (the denial names only what fits), one line per change.
    (lines,) = fields["repair"].values()
    assert lines and all(line.startswith(("insert ", "remove ")) for line in lines)
    assert secret_marker not in json.dumps(fields)
    assert all(secret_marker not in r.getMessage() for r in caplog.records)


def test_the_gunicorn_master_forgets_a_dead_worker_without_writing_metric_files_of_its_own(tmp_path: Path) -> None:
    # A metric file of the master would hold the certificate-expiry gauge (livemin) at 0 for good.
    import subprocess
    import sys

    (tmp_path / "gauge_livemin_4242.db").write_bytes(b"")  # a dead worker's live gauge
    script = "from types import SimpleNamespace as N; import webhook.gunicorn_conf as c; c.child_exit(0, N(pid=4242))"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert list(tmp_path.iterdir()) == []
