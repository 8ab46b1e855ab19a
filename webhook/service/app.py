"""The Flask application: ``POST /validate``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

Per request to ``/validate``:

1. **Transport checks** — content type ``application/json`` (else 415); a body larger than
   ``maxRequestBytes`` is refused with 413 from its Content-Length before it is read, and
   a body without one is read only up to the limit.
2. **Strict parse** (:func:`webhook.service.admission.parse_review`) — a malformed review is
   a 400 with ``{"error": reason}``.
3. **Routing**, before any YAML is parsed: ConfigMaps (mode ``targets.configMaps.mode``)
   only when :func:`webhook.core.precheck.is_relevant` says the new or old version may carry
   audit configuration; Pods only when they are mirror Pods of kube-apiserver (mode
   ``targets.mirrorPods.mode``), and a Pod DELETE always passes; subresources, other groups
   and other kinds are allowed at once.
4. **Verdict** — the break-glass exemption from ``userInfo``; for a mirror Pod whose
   ``--audit-policy-file`` is mapped in ``policySources``, the policy text from the
   ConfigMap; then :func:`webhook.core.verdict.judge` (large bodies in a bounded child
   process, :mod:`webhook.service.isolation`).
5. **Answer** (:func:`webhook.service.admission.build_response`), one JSON log line, metrics.

An object-content problem is the core's business and comes back as a denial with a reason.
Nothing turns into an HTTP 500: an unexpected error while judging, a deadline or a memory
limit is answered with an AdmissionReview saying so — denied, unless the target's mode is
``warn`` (the same as the chart's failure policies would do with an outage).
Dry-run requests are judged identically and leave no trace: no gauge update, no cache write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from webhook.core.precheck import is_mirror_pod, is_relevant
from webhook.core.verdict import Context, Mode, Operation, Verdict
from webhook.service import metrics
from webhook.service.admission import (
    AdmissionRequest,
    AdmissionReview,
    BadReview,
    allowed_response,
    build_response,
    describe_object,
    dumps,
    error_response,
    parse_review,
)
from webhook.service.cache import VerdictCache
from webhook.service.config import ServiceConfig, build_context
from webhook.service.isolation import AnalysisFailed, Analyzer
from webhook.service.kube import PolicySourceError, PolicySources, audit_policy_file
from webhook.service.tls import CertReloader

__all__ = ["ENV_BENCH_NOOP", "Outcome", "Service", "create_app"]

ENV_BENCH_NOOP = "AUDITWARDEN_BENCH_NOOP"
#: Kept free of the apiserver's own timeout so the answer arrives before it gives up.
DEADLINE_MARGIN_SECONDS = 0.5
_READ_CHUNK = 64 * 1024
_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")

log = logging.getLogger("auditwarden.admission")

_NOOP_BODY = dumps(
    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
     "response": {"uid": "noop", "allowed": True}}
)  # fmt: skip


@dataclass
class Outcome:
    """What the service answered, for the route (HTTP status, JSON body) and for tests."""

    status: int
    body: Mapping[str, Any]
    verdict: Verdict | None = None
    kind: str = "invalid"  # ConfigMap | Pod | other | invalid (the duration histogram's label)


def parse_timeout(raw: str | None) -> float | None:
    """The apiserver's ``?timeout=10s`` (Go duration, rounded up to seconds) in seconds."""
    if not raw:
        return None
    m = _GO_DURATION.match(raw.strip())
    if not m:
        return None
    value = float(m.group(1))
    unit = m.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


class Service:
    """Everything ``/validate`` does, without Flask (so tests can call it directly)."""

    def __init__(
        self,
        config: ServiceConfig,
        context: Context,
        *,
        analyzer: Analyzer | None = None,
        sources: PolicySources | None = None,
        cache: VerdictCache | None = None,
    ) -> None:
        self.config = config
        self.context = context
        self.cache = VerdictCache() if cache is None else cache
        self.analyzer = analyzer or Analyzer(
            isolate_above_bytes=config.isolate_above_bytes, timeout_seconds=config.analysis_timeout_seconds
        )
        self.sources = sources or PolicySources(config.policy_sources, ttl_seconds=config.policy_source_ttl_seconds)

    # ------------------------------------------------------------------ entry point

    def review(self, body: bytes, *, timeout: float | None = None, started: float | None = None) -> Outcome:
        started = time.monotonic() if started is None else started
        budget = self.config.analysis_timeout_seconds
        if timeout is not None:
            budget = min(budget, max(timeout - DEADLINE_MARGIN_SECONDS, 0.2))
        deadline = started + budget
        try:
            req = parse_review(body)
        except BadReview as exc:
            metrics.BAD_REQUESTS.labels(exc.code).inc()
            log.info("bad AdmissionReview", extra={"fields": {"status": 400, "reason": exc.reason, "code": exc.code}})
            return Outcome(400, {"error": exc.reason})
        kind = req["kind"]["kind"]
        kind_label = kind if kind in ("ConfigMap", "Pod") else "other"
        operation = req["operation"]
        mode_label = "none"
        try:
            routed = self._route(req)
            if routed is None:
                metrics.REQUESTS.labels(kind_label, operation, "skip", mode_label).inc()
                return Outcome(200, allowed_response(req["uid"]), kind=kind_label)
            mode, new, old = routed
            mode_label = mode
            outcome = self._judge(req, mode, new, old, size=len(body), deadline=deadline)
            verdict_label = outcome.verdict.decision if outcome.verdict is not None else _answer_label(outcome)
        except Exception:  # never an HTTP 500: answer by the mode, say so, log the traceback
            log.exception("internal error while judging", extra={"fields": self._who(req)})
            metrics.ANALYSIS_FAILURES.labels("internal").inc()
            allowed = mode_label == "warn"
            outcome = Outcome(200, error_response(
                req["uid"], allowed=allowed, subject=self._subject(req),
                reason="auditwarden could not analyse this object (internal error; see the auditwarden log)"
                + ("" if allowed else ". It is refused to be safe"),
            ))  # fmt: skip
            verdict_label = "error"
        metrics.REQUESTS.labels(kind_label, operation, verdict_label, mode_label).inc()
        outcome.kind = kind_label
        return outcome

    # --------------------------------------------------------------------- routing

    def _route(self, req: AdmissionRequest) -> tuple[Mode, dict[str, Any] | None, dict[str, Any] | None] | None:
        """(mode, new, old) when the core must judge, else None (allowed at once)."""
        gvk = req["kind"]
        if gvk.get("group", "") != "" or req.get("subResource"):
            return None
        operation = req["operation"]
        if operation == "CONNECT":
            return None
        new = req.get("object")
        old = req.get("oldObject")
        if operation == "CREATE":
            old = None
        elif operation == "DELETE":
            new = None
        kind = gvk["kind"]
        if kind == "ConfigMap":
            if is_relevant("ConfigMap", new) or is_relevant("ConfigMap", old):
                return self.config.config_maps_mode, new, old
            return None
        if kind == "Pod":
            # A mirror Pod's DELETE is the kubelet's own clean-up: always allowed.
            if operation == "DELETE" or not is_mirror_pod(new) or not is_relevant("Pod", new):
                return None
            return self.config.mirror_pods_mode, new, old
        return None

    # --------------------------------------------------------------------- judging

    def _judge(
        self,
        req: AdmissionRequest,
        mode: Mode,
        new: dict[str, Any] | None,
        old: dict[str, Any] | None,
        *,
        size: int,
        deadline: float,
    ) -> Outcome:
        user = req.get("userInfo") or {}
        exempted_by = self.config.exemptions.match(user.get("username"), user.get("groups") or [])
        dry_run = bool(req.get("dryRun"))
        operation: Operation = req["operation"]  # type: ignore[assignment]  # CONNECT was routed away
        kind = req["kind"]["kind"]

        context = self.context
        source_problem: str | None = None
        notes: list[str] = []
        if kind == "Pod" and self.config.policy_sources and new is not None:
            context, source_problem, note = self._with_policy_source(new, dry_run)
            notes += [note] if note else []

        key = self.cache.key(new, old, operation=operation, mode=mode, exempted_by=exempted_by,
                             policy_files=context.policy_files)  # fmt: skip
        cached = self.cache.get(key)
        try:
            if cached is not None:
                verdict = cached
            else:
                verdict = self.analyzer.judge(
                    new, old, operation=operation, mode=mode, context=context, exempted_by=exempted_by,
                    size=size, deadline=deadline,
                )  # fmt: skip
                if not dry_run:  # a dry run leaves no trace, not even a memo
                    self.cache.put(key, verdict)
        except AnalysisFailed as exc:
            metrics.ANALYSIS_FAILURES.labels(exc.code).inc()
            allowed = mode == "warn"
            self._log(req, mode, "warn" if allowed else "deny", allowed, violations=["analysis-failed"],
                      reason=exc.reason)  # fmt: skip
            return Outcome(200, error_response(req["uid"], allowed=allowed, subject=self._subject(req),
                                               reason=exc.reason))  # fmt: skip

        extra_warnings: list[str] = []
        extra_violations: list[str] = []
        if source_problem is not None:
            text = f"policySources: {source_problem}; the audit policy file's content was not judged"
            if self.config.deny_on_policy_source_error and mode != "warn":
                extra_violations.append(text + " (denyOnPolicySourceError is set)")
                verdict = _deny_for(verdict, exempted_by)
            else:
                extra_warnings.append(text)

        review = build_response(
            req["uid"], verdict, kind=kind, name=req.get("name") or "", namespace=req.get("namespace") or "",
            mode=mode, profile=self.config.profile, extra_warnings=extra_warnings, extra_violations=extra_violations,
            notes=notes,
        )  # fmt: skip
        self._log(req, mode, verdict.decision, verdict.allowed,
                  violations=[f.code for f in verdict.violations] + (["policy-source-error"] if extra_violations
                                                                     else []),
                  warnings=[f.code for f in verdict.warnings], exempted_by=verdict.exempted_by)  # fmt: skip
        if not dry_run and verdict.allowed:
            self._record_categories(req, verdict)
        return Outcome(200, review, verdict)

    def _with_policy_source(self, pod: dict[str, Any], dry_run: bool) -> tuple[Context, str | None, str | None]:
        """(context with the policy text, lookup problem, note for the message)."""
        path = audit_policy_file(pod)
        source = self.sources.source_for(path)
        if path is None or source is None:
            return self.context, None, None
        try:
            text, how = self.sources.policy_text(source, dry_run=dry_run)
        except PolicySourceError as exc:
            metrics.POLICY_SOURCE_LOOKUPS.labels("error").inc()
            return self.context, str(exc), None
        metrics.POLICY_SOURCE_LOOKUPS.labels(how).inc()
        note = f"(The policy of --audit-policy-file={path} was read from ConfigMap {source}, per policySources.)"
        return replace(self.context, policy_files={**self.context.policy_files, path: text}), None, note

    # ---------------------------------------------------------------- side effects

    def _record_categories(self, req: AdmissionRequest, verdict: Verdict) -> None:
        namespace, name = _identity(req)
        if req["operation"] != "DELETE" and any(r.kind == "audit-policy" for r in verdict.results):
            metrics.set_categories(namespace, name, len(verdict.categories))
        else:  # deleted, or it no longer carries a policy
            metrics.forget_categories(namespace, name)

    def _who(self, req: AdmissionRequest) -> dict[str, Any]:
        namespace, name = _identity(req)
        user = req.get("userInfo") or {}
        return {
            "uid": req["uid"],
            "kind": req["kind"]["kind"],
            "operation": req["operation"],
            "namespace": namespace,
            "name": name,
            "user": user.get("username", ""),
            "dryRun": bool(req.get("dryRun")),
        }

    def _subject(self, req: AdmissionRequest) -> str:
        namespace, name = _identity(req)
        return describe_object(req["kind"]["kind"], namespace, name)

    def _log(self, req: AdmissionRequest, mode: str, verdict: str, allowed: bool, *,
             violations: list[str], warnings: list[str] | None = None, exempted_by: str | None = None,
             reason: str | None = None) -> None:  # fmt: skip
        fields = self._who(req)
        fields.update(mode=mode, verdict=verdict, allowed=allowed, violations=violations, warnings=warnings or [])
        if exempted_by:
            fields["exemptedBy"] = exempted_by
        if reason:
            fields["reason"] = reason
        log.info("admission decision", extra={"fields": fields})


def _identity(req: AdmissionRequest) -> tuple[str, str]:
    namespace = req.get("namespace") or ""
    name = req.get("name") or ""
    if not name:
        subject = req.get("object") or req.get("oldObject") or {}
        meta = subject.get("metadata") if isinstance(subject, dict) else None
        if isinstance(meta, dict):
            raw = meta.get("name") or meta.get("generateName") or ""
            name = raw if isinstance(raw, str) else ""
            if not namespace and isinstance(meta.get("namespace"), str):
                namespace = meta["namespace"]
    return namespace, name


def _answer_label(outcome: Outcome) -> str:
    response = outcome.body.get("response") or {}
    return "warn" if response.get("allowed") else "deny"


def _deny_for(verdict: Verdict, exempted_by: str | None) -> Verdict:
    """``denyOnPolicySourceError``: the verdict becomes a denial (or an exempted allowance)."""
    if exempted_by:
        return replace(verdict, allowed=True, decision="exempted", exempted_by=exempted_by)
    return replace(verdict, allowed=False, decision="deny")


# ------------------------------------------------------------------------------ Flask


def create_app(
    config: ServiceConfig,
    *,
    context: Context | None = None,
    tls: CertReloader | None = None,
    sources: PolicySources | None = None,
    analyzer: Analyzer | None = None,
    cache: VerdictCache | None = None,
) -> Flask:
    """The WSGI application.  ``tls`` is the process's certificate reloader (for /readyz)."""
    service = Service(config, context or build_context(config), analyzer=analyzer, sources=sources, cache=cache)
    app = Flask("auditwarden")
    app.extensions["auditwarden"] = service
    noop_enabled = os.environ.get(ENV_BENCH_NOOP) == "1"
    if tls is not None:
        with contextlib.suppress(Exception):  # a failure is reported by /readyz
            tls.context()  # load now: /readyz and the expiry gauge are right from the start

    def _json(body: Mapping[str, Any] | AdmissionReview, status: int = 200) -> Response:
        return app.response_class(dumps(body), status=status, mimetype="application/json")

    def _bad(status: int, code: str, reason: str) -> Response:
        metrics.BAD_REQUESTS.labels(code).inc()
        log.info("refused request", extra={"fields": {"status": status, "reason": reason, "code": code,
                                                      "path": request.path}})  # fmt: skip
        return _json({"error": reason}, status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _json({"error": exc.description or exc.name}, exc.code or 400)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:  # pragma: no cover - a bug outside /validate's own guard
        log.exception("unexpected error", extra={"fields": {"path": request.path}})
        return _json({"error": "internal error"}, 500)

    @app.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        problems: list[str] = []
        body: dict[str, Any] = {"config": config.describe()}
        if tls is not None:
            status = tls.status()
            body["certificate"] = status.as_dict()
            problem = status.problem()
            if problem:
                problems.append(problem)
        if problems:
            return _json({"status": "not ready", "problems": problems, **body}, 503)
        return _json({"status": "ready", **body})

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        text, content_type = metrics.render()
        return Response(text, status=200, content_type=content_type)

    def read_body() -> bytes | Response:
        limit = config.max_request_bytes
        length = request.content_length
        if length is not None and length > limit:
            return _bad(413, "too-large", f"request body of {length} bytes is larger than the limit of {limit} bytes"
                                          " (maxRequestBytes)")  # fmt: skip
        stream = request.stream
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                chunk = stream.read(min(_READ_CHUNK, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    return _bad(413, "too-large", f"request body is larger than the limit of {limit} bytes"
                                                  " (maxRequestBytes)")  # fmt: skip
        except Exception as exc:  # a client that stops sending, a malformed chunk: gunicorn/werkzeug errors
            return _bad(400, "unreadable-body", f"the request body could not be read: {type(exc).__name__}")
        return b"".join(chunks)

    @app.post("/validate")
    def validate() -> Response:
        started = time.monotonic()
        mimetype = request.mimetype
        if mimetype != "application/json":
            return _bad(415, "content-type",
                        f"content type must be application/json, got {mimetype or 'none'!r}")  # fmt: skip
        body = read_body()
        if isinstance(body, Response):
            return body
        outcome = service.review(body, timeout=parse_timeout(request.args.get("timeout")), started=started)
        metrics.DURATION.labels(outcome.kind).observe(time.monotonic() - started)
        return _json(outcome.body, outcome.status)

    if noop_enabled:

        @app.post("/noop")
        def noop() -> Response:
            """Benchmark baseline (AUDITWARDEN_BENCH_NOOP=1): read the body, answer a constant allowance."""
            request.get_data(cache=False)
            return app.response_class(_NOOP_BODY, status=200, mimetype="application/json")

    return app
