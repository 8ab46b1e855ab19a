"""AdmissionReview wire rules: the strict parser and the pure response builder."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.support.reviews import WEAK_POLICY, body, policy_configmap, review
from webhook.context import build_context
from webhook.core.findings import Finding
from webhook.core.verdict import Facts, Verdict, judge
from webhook.service.admission import (
    MAX_MESSAGE_CHARS,
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    BadReview,
    allowed_response,
    build_response,
    clean_line,
    parse_review,
    warning_line,
)

CTX = build_context()


def bad(raw: bytes) -> BadReview:
    with pytest.raises(BadReview) as err:
        parse_review(raw)
    return err.value


# ---------------------------------------------------------------------------- parser


def test_a_valid_review_parses() -> None:
    doc = review(policy_configmap(), operation="UPDATE", old=policy_configmap(), dry_run=True, uid="abc")
    req = parse_review(body(doc))
    assert req["uid"] == "abc"
    assert req["kind"]["kind"] == "ConfigMap"
    assert req["operation"] == "UPDATE"
    assert req["dryRun"] is True
    assert req["userInfo"]["username"] == "alice"


def test_missing_user_info_becomes_empty() -> None:
    doc = review(policy_configmap())
    del doc["request"]["userInfo"]
    assert parse_review(body(doc))["userInfo"] == {}


BAD_FIELD = "bad-request-field"


@pytest.mark.parametrize(
    ("mutate", "reason", "code"),
    [
        (lambda d: d.update(apiVersion="admission.k8s.io/v1beta1"),
         "apiVersion must be 'admission.k8s.io/v1', got 'admission.k8s.io/v1beta1'", "wrong-api-version"),
        (lambda d: d.pop("apiVersion"), "apiVersion must be 'admission.k8s.io/v1', got nothing", "wrong-api-version"),
        (lambda d: d.update(kind="ConfigMap"), "kind must be 'AdmissionReview', got 'ConfigMap'", "wrong-kind"),
        (lambda d: d.pop("request"), "request is missing", "no-request"),
        (lambda d: d.update(request=[]), "request must be an object, got an array", "no-request"),
        (lambda d: d["request"].pop("uid"), "request.uid is missing", "no-uid"),
        (lambda d: d["request"].update(uid=""), "request.uid is not a non-empty string (a string)", "no-uid"),
        (lambda d: d["request"].update(uid=7), "request.uid is not a non-empty string (a number)", "no-uid"),
        (lambda d: d["request"].update(kind="ConfigMap"), "request.kind must be an object", BAD_FIELD),
        (lambda d: d["request"].update(operation="PATCH"),
         "request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got 'PATCH'", BAD_FIELD),
        (lambda d: d["request"].update(object="x"), "request.object must be an object or null, got a string",
         BAD_FIELD),
        (lambda d: d["request"].update(oldObject=[1]), "request.oldObject must be an object or null, got an array",
         BAD_FIELD),
        (lambda d: d["request"].update(dryRun="yes"), "request.dryRun must be a boolean, got a string", BAD_FIELD),
        (lambda d: d["request"].update(userInfo="alice"), "request.userInfo must be an object", BAD_FIELD),
        (lambda d: d["request"]["userInfo"].update(groups="admins"),
         "request.userInfo.groups must be a list of strings", BAD_FIELD),
        (lambda d: d["request"].update(namespace=3), "request.namespace must be a string", BAD_FIELD),
    ],
)  # fmt: skip
def test_malformed_reviews_are_refused_with_a_reason(mutate: Any, reason: str, code: str) -> None:
    doc = review(policy_configmap())
    mutate(doc)
    err = bad(body(doc))
    assert err.reason.startswith(reason), err.reason
    assert err.code == code


@pytest.mark.parametrize(
    ("raw", "reason", "code"),
    [
        (b"\xff\xfe{}", "body is not valid UTF-8 (byte 0)", "not-utf8"),
        ('{"a": "\u00e9"}'.encode("latin-1"), "body is not valid UTF-8 (byte 7)", "not-utf8"),
        (b"", "body is not valid JSON: Expecting value", "not-json"),
        (b"{", "body is not valid JSON", "not-json"),
        (b"[1, 2]", "body must be a JSON object (an AdmissionReview), got an array", "not-object"),
        (b'"AdmissionReview"', "body must be a JSON object (an AdmissionReview), got a string", "not-object"),
        (b"null", "body must be a JSON object (an AdmissionReview), got null", "not-object"),
        (b'{"apiVersion": NaN}', "body is not valid JSON: NaN is not valid JSON", "not-json"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not valid JSON: nested too deeply", "not-json"),
        (b'{"x": ' + b"9" * 5000 + b"}", "body is not valid JSON", "not-json"),
    ],
)
def test_bodies_that_are_not_json_objects(raw: bytes, reason: str, code: str) -> None:
    err = bad(raw)
    assert err.reason.startswith(reason), err.reason
    assert err.code == code
    assert "\n" not in err.reason and len(err.reason) < 400


# ------------------------------------------------------------------------- responses


def judged(obj: dict[str, Any], **kw: Any) -> Verdict:
    return judge(obj, None, operation="CREATE", mode=kw.pop("mode", "enforce"), context=CTX, **kw)


def test_a_denial_names_the_object_each_violation_and_the_fix() -> None:
    verdict = judged(policy_configmap(WEAK_POLICY))
    doc = build_response("u-1", verdict, kind="ConfigMap", name="audit-policy", namespace="kube-system")
    assert doc["apiVersion"] == "admission.k8s.io/v1" and doc["kind"] == "AdmissionReview"
    resp = doc["response"]
    assert resp["uid"] == "u-1" and resp["allowed"] is False
    status = resp["status"]
    assert status["code"] == 403 and status["reason"] == "Forbidden"
    msg = status["message"]
    assert msg.startswith("ConfigMap kube-system/audit-policy is refused (mode enforce, profile baseline): ")
    assert "[categories-below-minimum]" in msg
    assert "secret-access" in msg and "Fix:" in msg
    assert "Audit policy covers 0 of 6 event categories" in msg
    assert "\n" not in msg
    assert "patch" not in resp and "patchType" not in resp
    assert resp["auditAnnotations"]["verdict"] == "deny"
    assert resp["auditAnnotations"]["violations"] == "categories-below-minimum"
    assert resp["auditAnnotations"]["categories"] == ""
    assert resp["warnings"]


def test_an_allowance_carries_annotations_but_no_status() -> None:
    verdict = judged(policy_configmap())
    resp = build_response("u-2", verdict, kind="ConfigMap", name="audit-policy", namespace="kube-system")["response"]
    assert resp["allowed"] is True and "status" not in resp
    assert resp["auditAnnotations"]["verdict"] == "allow"
    assert tuple(resp["auditAnnotations"]["categories"].split(",")) == verdict.categories
    assert len(verdict.categories) == 6


def test_exemption_is_annotated_and_warned() -> None:
    verdict = judged(policy_configmap(WEAK_POLICY), exempted_by="user:breakglass")
    resp = build_response("u-3", verdict, kind="ConfigMap", name="audit-policy", namespace="kube-system")["response"]
    assert resp["allowed"] is True
    assert resp["auditAnnotations"]["verdict"] == "exempted"
    assert resp["auditAnnotations"]["exempted-by"] == "user:breakglass"
    assert resp["warnings"][0].startswith("allowed only because user:breakglass is exempt")
    assert any("covers 0 of 6" in w for w in resp["warnings"])  # the violation is still reported


def test_annotation_keys_become_qualified_names_after_the_apiserver_prefix() -> None:
    # kube-apiserver adds "<webhook name>/"; the result must have exactly one "/".
    verdict = judged(policy_configmap(WEAK_POLICY), exempted_by="group:system:breakglass")
    resp = build_response("u", verdict, kind="ConfigMap")["response"]
    for key in resp["auditAnnotations"]:
        assert "/" not in key
        full = f"configmaps.auditwarden.io/{key}"
        assert full.count("/") == 1 and len(key) <= 63


def _verdict_with(findings: list[Finding], *, allowed: bool = False) -> Verdict:
    return Verdict(allowed=allowed, decision="deny" if not allowed else "warn", violations=tuple(findings),
                   object_name="ns/name")  # fmt: skip


def test_warnings_are_single_short_lines_and_few() -> None:
    nasty = [
        Finding("a", "line one\nline two\r\n\tand a tab"),
        Finding("b", "escape \x1b[31mred\x1b[0m and bell \x07 and NUL \x00"),
        Finding("c", "bidi \u202etxt.exe\u202c zero\u200bwidth line\u2028separator"),
        Finding("d", "x" * 500),
        Finding("e", "ünïcödé is kept: Straße, 監査"),
        Finding("f", "sixth"),
        Finding("g", "seventh"),
    ]
    resp = build_response("u", _verdict_with(nasty), kind="ConfigMap", name="n", namespace="ns")["response"]
    warnings = resp["warnings"]
    assert len(warnings) == MAX_WARNINGS
    for w in warnings:
        assert len(w) <= MAX_WARNING_CHARS
        assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in w), repr(w)
    assert warnings[0] == "line one line two and a tab"
    assert warnings[1] == "escape [31mred [0m and bell and NUL"
    assert warnings[2] == "bidi txt.exe zero width line separator"
    assert warnings[3].endswith("...") and len(warnings[3]) == MAX_WARNING_CHARS
    assert warnings[4] == "3 more findings: see the audit annotation violations / auditwarden logs"
    # The denial message is one line too, and keeps every finding.
    assert "\n" not in resp["status"]["message"] and "\x1b" not in resp["status"]["message"]
    assert "seventh" in resp["status"]["message"]


def test_exactly_five_findings_need_no_summary_line() -> None:
    findings = [Finding(str(i), f"finding {i}") for i in range(5)]
    warnings = build_response("u", _verdict_with(findings), kind="ConfigMap")["response"]["warnings"]
    assert warnings == [f"finding {i}" for i in range(5)]


def test_duplicate_warnings_are_merged() -> None:
    findings = [Finding("x", "same"), Finding("y", "same"), Finding("z", "other")]
    assert build_response("u", _verdict_with(findings), kind="ConfigMap")["response"]["warnings"] == ["same", "other"]


def test_warning_lines_keep_whole_sentences() -> None:
    msg = (
        "the policy covers 0 of 6 event categories at Metadata level or higher; the baseline profile requires at "
        "least 3. Not covered: authentication: probe auth-failed-resource: no rule matched"
    )
    assert warning_line(msg) == (
        "the policy covers 0 of 6 event categories at Metadata level or higher; the baseline profile requires at "
        "least 3."
    )


def test_unrelated_and_unanalysed_answers() -> None:
    doc = allowed_response("u-9")
    assert doc["response"] == {"uid": "u-9", "allowed": True, "auditAnnotations": {"verdict": "skip"}}
    failed = Facts(violations=(Finding("analysis-failed", "the analysis did not finish\nin time"),), unanalysed=True)
    verdict = judge(policy_configmap(), None, operation="CREATE", mode="enforce", context=CTX, facts=failed)
    resp = build_response("u-8", verdict, kind="ConfigMap", name="b", namespace="a")["response"]
    assert resp["allowed"] is False and resp["status"]["code"] == 403 and resp["status"]["reason"] == "Forbidden"
    assert resp["status"]["message"] == (
        "ConfigMap a/b is refused (mode enforce, profile baseline): 1) [analysis-failed] the analysis did not "
        "finish in time"
    )
    assert resp["auditAnnotations"] == {"verdict": "deny", "violations": "analysis-failed"}
    verdict = judge(policy_configmap(), None, operation="CREATE", mode="warn", context=CTX, facts=failed)
    allowed = build_response("u-7", verdict, kind="Pod", name="x", namespace="kube-system")["response"]
    assert allowed["allowed"] is True and "status" not in allowed
    assert allowed["warnings"] == ["the analysis did not finish in time"]
    assert allowed["auditAnnotations"] == {"verdict": "warn", "violations": "analysis-failed"}


def test_responses_are_json_serialisable_with_the_same_uid() -> None:
    verdict = judged(policy_configmap(WEAK_POLICY))
    doc = build_response("7c1b-uid", verdict, kind="ConfigMap")
    assert json.loads(json.dumps(doc))["response"]["uid"] == "7c1b-uid"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=400), min_size=0, max_size=12), st.booleans())
@example(["; " + "a" * 200], False)  # once gave " ..." (emptied only after the ";" was cut)
@example(["0" * 118 + " ; " + "0" * 10], True)  # once kept a trailing space
def test_any_findings_give_valid_warnings(messages: list[str], allowed: bool) -> None:
    findings = [Finding(f"code-{i}", m) for i, m in enumerate(messages)]
    resp = build_response("u", _verdict_with(findings, allowed=allowed), kind="ConfigMap", name="n")["response"]
    warnings = resp.get("warnings", [])
    assert len(warnings) <= MAX_WARNINGS
    assert len(set(warnings)) == len(warnings)
    for w in warnings:
        assert w and len(w) <= MAX_WARNING_CHARS
        assert w == w.strip()
        assert all(ch.isprintable() for ch in w), repr(w)
        w.encode("utf-8")  # no lone surrogates


@given(st.text(max_size=300), st.integers(min_value=8, max_value=200))
@settings(deadline=None)
def test_clean_line_bounds(text: str, limit: int) -> None:
    line = clean_line(text, limit)
    assert len(line) <= limit
    assert all(ch.isprintable() for ch in line)


def test_one_json_type_namer_serves_the_review_parser_the_policy_decoder_and_yaml_files() -> None:
    from webhook.core.jsontypes import described, json_type

    assert [json_type(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "null", "bool", "number", "number", "string", "array", "object"]  # fmt: skip  # Go's encoding/json names
    assert [described(v) for v in (None, True, 1, [], {})] == ["null", "a boolean", "a number", "an array", "an object"]
    assert [described(v, yaml=True) for v in (1, 1.5, [], {})] == ["an integer", "a number", "a list", "a mapping"]


def test_a_denial_names_the_concrete_rule_to_add_and_where() -> None:
    # The README's "Try it" policy: rule 0 hides every read.
    policy = ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  verbs: [get, list, watch]\n"
              "- level: RequestResponse\n  resources: [{group: '', resources: [pods]}]\n")  # fmt: skip
    verdict = judged(policy_configmap(policy))
    msg = build_response("u", verdict, kind="ConfigMap", name="p", namespace="kube-system")["response"]["status"][
        "message"
    ]
    want = 'Fix: add before rule 0: - level: Metadata, verbs: [list, get], resources: [{group: "", resources: [pods, '
    assert want in msg
    assert "add at the end: - level: Metadata" in msg and "(auditwarden fix --write applies this)" in msg


@pytest.mark.parametrize("profile", ["baseline", "strict", "stig"])
def test_the_concrete_fix_keeps_the_denial_within_the_message_limit(profile: str) -> None:
    # Every rule hidden, policy-level omitStages on every stage: the longest repair there is.
    policy = ("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived, ResponseStarted]\n"
              "rules:\n" + "".join(f"- level: None\n  users: [u{i}]\n  omitStages: [ResponseComplete]\n"
                                   for i in range(40)) + "- level: None\n")  # fmt: skip
    ctx = build_context(profile=profile)
    verdict = judge(policy_configmap(policy), None, operation="CREATE", mode="enforce", context=ctx)
    msg = build_response("u", verdict, kind="ConfigMap", profile=profile)["response"]["status"]["message"]
    assert len(msg) <= MAX_MESSAGE_CHARS + 500  # the summary and notes may follow the capped findings
    assert "Fix: " in msg and ("add before rule 40" in msg or "more (run auditwarden fix)" in msg)
