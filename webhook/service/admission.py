"""AdmissionReview ``admission.k8s.io/v1``: wire types, a strict parser, a pure response builder.

The rules are those of kube-apiserver's webhook dispatcher (upstream, in
``staging/src/k8s.io/apiserver``: ``pkg/admission/plugin/webhook/request/admissionreview.go``,
``.../validating/dispatcher.go`` and ``.../errors/statuserror.go``; types in kubernetes/api
``admission/v1/types.go``):

* the answer is an ``AdmissionReview`` of the same apiVersion with ``response.uid`` equal to
  ``request.uid``; a validating webhook never returns ``patch``/``patchType``;
* ``status`` is read only when ``allowed`` is false: ``code`` 403, ``reason`` "Forbidden" and a
  message a person can act on (the apiserver prefixes it with
  ``admission webhook "<name>" denied the request:``);
* ``warnings`` become ``Warning: 299`` headers: one with a control character or invalid UTF-8
  is *silently dropped*, and past 4096 characters in total all are cut to 256 characters —
  so each is kept to one printable line of at most :data:`MAX_WARNING_CHARS` and there are
  at most :data:`MAX_WARNINGS`;
* ``auditAnnotations`` keys are prefixed by the apiserver with ``<webhook name>/`` and must
  then be a qualified name (exactly one ``/``; ``admission/attributes.go: checkKeyFormat``).
  Keys sent here are therefore bare (``verdict``); with the chart's webhook names the audit
  event shows ``configmaps.auditwarden.io/verdict`` and ``mirrorpods.auditwarden.io/verdict``.
  A key that already contained a ``/`` would be dropped by the apiserver with only a log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NotRequired, TypedDict, get_args

from webhook.core.findings import Finding
from webhook.core.jsontypes import described
from webhook.core.verdict import Verdict

__all__ = [
    "ADMISSION_API_VERSION",
    "ANNOTATION_CATEGORIES",
    "ANNOTATION_EXEMPTED_BY",
    "ANNOTATION_VERDICT",
    "ANNOTATION_VIOLATIONS",
    "MAX_WARNINGS",
    "MAX_WARNING_CHARS",
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionReview",
    "BadReview",
    "ErrorBody",
    "GroupVersionKind",
    "Status",
    "UserInfo",
    "allowed_response",
    "build_response",
    "clean_line",
    "parse_review",
]

ADMISSION_API_VERSION = "admission.k8s.io/v1"
MAX_WARNINGS = 5
MAX_WARNING_CHARS = 120
MAX_MESSAGE_CHARS = 3000
# Audit annotation keys as sent (the apiserver prefixes "<webhook name>/").
ANNOTATION_VERDICT = "verdict"
ANNOTATION_CATEGORIES = "categories"
ANNOTATION_EXEMPTED_BY = "exempted-by"
ANNOTATION_VIOLATIONS = "violations"
_MAX_ANNOTATION_CHARS = 1000

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class AdmissionRequest(TypedDict):
    uid: str
    kind: GroupVersionKind
    resource: NotRequired[GroupVersionResource]
    subResource: NotRequired[str]
    requestKind: NotRequired[GroupVersionKind]
    requestResource: NotRequired[GroupVersionResource]
    requestSubResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    operation: Operation
    userInfo: UserInfo
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]
    options: NotRequired[dict[str, Any] | None]


class Status(TypedDict, total=False):
    code: int
    reason: str
    message: str


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: str
    request: NotRequired[AdmissionRequest]
    response: NotRequired[AdmissionResponse]


class ErrorBody(TypedDict):
    """The body of an HTTP 4xx answer (not an AdmissionReview: the request was not one)."""

    error: str


class BadReview(ValueError):
    """The body is not an AdmissionReview auditwarden can answer (HTTP 400).

    ``reason`` is for people (and the JSON error body); ``code`` is a short stable label for
    the bad-request metric.
    """

    def __init__(self, reason: str, code: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


# --------------------------------------------------------------------------- parsing


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_review(body: bytes) -> AdmissionRequest:
    """Parse and check an ``admission.k8s.io/v1`` AdmissionReview request body.

    Raises :class:`BadReview` with a one-line reason.  Only the fields auditwarden reads are
    checked for type; everything else is passed through untouched.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadReview(f"body is not valid UTF-8 (byte {exc.start})", "not-utf8") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadReview("body is not valid JSON: nested too deeply", "not-json") from None
    except ValueError as exc:  # json.JSONDecodeError, NaN/Infinity, over-long integers
        raise BadReview(f"body is not valid JSON: {_one_line(str(exc), 200)}", "not-json") from None
    if not isinstance(doc, dict):
        raise BadReview(f"body must be a JSON object (an AdmissionReview), got {described(doc)}", "not-object")
    api_version = doc.get("apiVersion")
    if api_version != ADMISSION_API_VERSION:
        raise BadReview(
            f"apiVersion must be {ADMISSION_API_VERSION!r}, got {_short(api_version)}"
            " (register the webhook with admissionReviewVersions: [v1])",
            "wrong-api-version",
        )
    if doc.get("kind") != "AdmissionReview":
        raise BadReview(f"kind must be 'AdmissionReview', got {_short(doc.get('kind'))}", "wrong-kind")
    request = doc.get("request")
    if request is None:
        raise BadReview("request is missing (an AdmissionReview sent to a webhook carries a request)", "no-request")
    if not isinstance(request, dict):
        raise BadReview(f"request must be an object, got {described(request)}", "no-request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        what = "missing" if uid is None else f"not a non-empty string ({described(uid)})"
        raise BadReview(f"request.uid is {what}", "no-uid")
    kind = request.get("kind")
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str):
        raise BadReview("request.kind must be an object {group, version, kind}", "bad-request-field")
    for field_name in ("group", "version"):
        if not isinstance(kind.get(field_name, ""), str):
            raise BadReview(f"request.kind.{field_name} must be a string", "bad-request-field")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise BadReview(
            f"request.operation must be one of {', '.join(OPERATIONS)}, got {_short(operation)}", "bad-request-field"
        )
    for field_name in ("object", "oldObject", "options"):
        value = request.get(field_name)
        if value is not None and not isinstance(value, dict):
            raise BadReview(f"request.{field_name} must be an object or null, got {described(value)}",
                            "bad-request-field")  # fmt: skip
    for field_name in ("name", "namespace", "subResource"):
        if not isinstance(request.get(field_name, ""), str):
            raise BadReview(f"request.{field_name} must be a string", "bad-request-field")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool) and dry_run is not None:
        raise BadReview(f"request.dryRun must be a boolean, got {described(dry_run)}", "bad-request-field")
    user = request.get("userInfo")
    if user is None:
        request["userInfo"] = {}
    elif not isinstance(user, dict):
        raise BadReview(f"request.userInfo must be an object, got {described(user)}", "bad-request-field")
    else:
        if not isinstance(user.get("username", ""), str):
            raise BadReview("request.userInfo.username must be a string", "bad-request-field")
        groups = user.get("groups")
        if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)):
            raise BadReview("request.userInfo.groups must be a list of strings", "bad-request-field")
    return request  # type: ignore[return-value]  # checked field by field above


def _short(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return repr(clean_line(value, 60))
    return described(value)


# ------------------------------------------------------------------------ responses


def clean_line(text: str, limit: int) -> str:
    """One printable line of at most ``limit`` characters.

    Every character that is not printable — control and format characters (newlines, tabs,
    escapes, bidi overrides, zero-width characters), line/paragraph separators, unassigned
    code points, lone surrogates, non-ASCII spaces — becomes a space; runs of whitespace
    collapse.  An over-long line is cut at a word boundary when one is near, and ends in ``...``.
    """
    if not text.isprintable():  # the common case skips this character-by-character pass
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: max(limit - 3, 0)]
    space = cut.rfind(" ")
    if space >= limit * 2 // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "..."


def _one_line(text: str, limit: int) -> str:
    return clean_line(text, limit)


def _dedupe(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def warning_line(message: str, limit: int = MAX_WARNING_CHARS) -> str:
    """A finding as one warning line: as many whole leading sentences as fit, else a cut line."""
    text = clean_line(message, 100_000)
    if len(text) <= limit:
        return text
    sentences = re.split(r"(?<=[.;])\s+", text)
    line = ""
    for sentence in sentences:
        candidate = f"{line} {sentence}" if line else sentence
        if len(candidate) > limit:
            break
        line = candidate
    line = line.rstrip(";").strip()
    if not line:
        return clean_line(text, limit)
    if not line.endswith(".") and len(line) + 4 <= limit:
        line += " ..."
    return line


def _warning_lines(findings: Sequence[Finding]) -> list[str]:
    lines = _dedupe([warning_line(f.message) for f in findings])
    if len(lines) > MAX_WARNINGS:
        rest = len(lines) - (MAX_WARNINGS - 1)
        lines = [
            *lines[: MAX_WARNINGS - 1],
            clean_line(f"{rest} more findings: see the audit annotation {ANNOTATION_VIOLATIONS} / auditwarden logs",
                       MAX_WARNING_CHARS),
        ]  # fmt: skip
    return lines


def describe_object(kind: str, namespace: str, name: str) -> str:
    """``ConfigMap kube-system/audit-policy`` — the object as a person names it."""
    if namespace and name:
        return f"{kind} {namespace}/{name}"
    return f"{kind} {name or namespace or '(unnamed)'}"


def denial_message(verdict: Verdict, *, subject: str, mode: str, profile: str, notes: Sequence[str] = ()) -> str:
    """The ``status.message`` of a denial: the object, every violation with its fix, the summary."""
    parts = [f"{subject} is refused (mode {mode}, profile {profile}):"]
    total = len(parts[0])
    shown = 0
    reasons = verdict.violations
    for f in reasons:
        item = clean_line(f"[{f.code}] {f.message}", 1500)
        if total + len(item) > MAX_MESSAGE_CHARS and shown:
            break
        parts.append(f"{shown + 1}) {item}")
        total += len(item) + 4
        shown += 1
    if shown < len(reasons):
        parts.append(f"(+{len(reasons) - shown} more: see the auditwarden logs)")
    if verdict.summary:
        parts.append(clean_line(verdict.summary, 400))
    parts += [clean_line(n, 400) for n in notes]
    return " ".join(parts)


def build_response(
    uid: str,
    verdict: Verdict,
    *,
    kind: str,
    name: str = "",
    namespace: str = "",
    mode: str = "enforce",
    profile: str = "baseline",
    notes: Sequence[str] = (),
) -> AdmissionReview:
    """The AdmissionReview answering request ``uid`` with ``verdict``.  Pure: no I/O.

    Every reason is a finding of the verdict (the service's own, such as a failed
    policySources lookup or a missed deadline, included); ``notes`` end the denial message
    (e.g. where a policy was read from).  Never carries a patch.
    """
    subject = describe_object(kind, namespace, name or verdict.object_name)
    response: AdmissionResponse = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        response["status"] = {
            "code": 403,
            "reason": "Forbidden",
            "message": denial_message(verdict, subject=subject, mode=mode, profile=profile, notes=notes),
        }
    # Violations first (the most important lines), then the exemption note and other warnings.
    exemption = [w for w in verdict.warnings if w.code == "exempted"]
    others = [w for w in verdict.warnings if w.code != "exempted"]
    warnings = _warning_lines([*exemption, *verdict.violations, *others])
    if warnings:
        response["warnings"] = warnings
    response["auditAnnotations"] = audit_annotations(verdict)
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response}


def audit_annotations(verdict: Verdict) -> dict[str, str]:
    annotations: dict[str, str] = {ANNOTATION_VERDICT: verdict.decision}
    if any(r.kind == "audit-policy" for r in verdict.results):
        annotations[ANNOTATION_CATEGORIES] = ",".join(verdict.categories)
    if verdict.exempted_by:
        annotations[ANNOTATION_EXEMPTED_BY] = clean_line(verdict.exempted_by, 253)
    codes = _dedupe([f.code for f in verdict.violations])
    if codes:
        annotations[ANNOTATION_VIOLATIONS] = clean_line(",".join(codes), _MAX_ANNOTATION_CHARS)
    return annotations


def allowed_response(uid: str) -> AdmissionReview:
    """An allowance that judged nothing (unrelated objects, a mirror Pod's DELETE)."""
    response: AdmissionResponse = {"uid": uid, "allowed": True, "auditAnnotations": {ANNOTATION_VERDICT: "skip"}}
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response}


def dumps(review: Mapping[str, Any]) -> bytes:
    return json.dumps(review, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
