"""The Flask application: ``POST /validate``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

A small factory around a Blueprint.  The routes do HTTP only — for ``/validate``: the content
type must be ``application/json`` (else 415); a body larger than ``maxRequestBytes`` is
refused with 413 from its Content-Length before it is read, and a body without one is read
only up to the limit.  Then the body goes to :class:`webhook.service.decide.Service`, which
parses, routes and judges it without Flask (its module is kept free of Flask by an
import-linter contract).  Everything is injected: the Service (or its parts), and the
certificate reloader for ``/readyz``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from webhook.core.verdict import Context
from webhook.service import metrics
from webhook.service.admission import AdmissionReview, dumps
from webhook.service.cache import VerdictCache
from webhook.service.config import ServiceConfig, build_context
from webhook.service.decide import Outcome, Service, parse_timeout
from webhook.service.isolation import Analyzer
from webhook.service.kube import PolicySources
from webhook.service.tls import CertReloader

__all__ = ["ENV_BENCH_NOOP", "EXTENSION", "Outcome", "Service", "create_app", "parse_timeout"]

ENV_BENCH_NOOP = "AUDITWARDEN_BENCH_NOOP"
#: The key of the app's :class:`Service` in ``app.extensions``.
EXTENSION = "auditwarden"
_TLS = "auditwarden.tls"
_READ_CHUNK = 64 * 1024

log = logging.getLogger("auditwarden.admission")

_NOOP_BODY = dumps(
    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
     "response": {"uid": "noop", "allowed": True}}
)  # fmt: skip

routes = Blueprint("auditwarden", __name__)


def _service() -> Service:
    service: Service = current_app.extensions[EXTENSION]
    return service


def _json(body: Mapping[str, Any] | AdmissionReview, status: int = 200) -> Response:
    return Response(dumps(body), status=status, mimetype="application/json")


def _bad(status: int, code: str, reason: str) -> Response:
    metrics.BAD_REQUESTS.labels(code).inc()
    log.info("refused request", extra={"fields": {"status": status, "reason": reason, "code": code,
                                                  "path": request.path}})  # fmt: skip
    return _json({"error": reason}, status)


@routes.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    return _json({"error": exc.description or exc.name}, exc.code or 400)


@routes.app_errorhandler(Exception)
def unexpected(exc: Exception) -> Response:  # pragma: no cover - a bug outside /validate's own guard
    log.exception("unexpected error", extra={"fields": {"path": request.path}})
    return _json({"error": "internal error"}, 500)


@routes.get("/healthz")
def healthz() -> Response:
    return _json({"status": "ok"})


@routes.get("/readyz")
def readyz() -> Response:
    problems: list[str] = []
    body: dict[str, Any] = {"config": _service().config.describe()}
    tls: CertReloader | None = current_app.extensions.get(_TLS)
    if tls is not None:
        status = tls.status()
        body["certificate"] = status.as_dict()
        problem = status.problem()
        if problem:
            problems.append(problem)
    if problems:
        return _json({"status": "not ready", "problems": problems, **body}, 503)
    return _json({"status": "ready", **body})


@routes.get("/metrics")
def metrics_endpoint() -> Response:
    text, content_type = metrics.render()
    return Response(text, status=200, content_type=content_type)


def _read_body(limit: int) -> bytes | Response:
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


@routes.post("/validate")
def validate() -> Response:
    started = time.monotonic()
    mimetype = request.mimetype
    if mimetype != "application/json":
        return _bad(415, "content-type", f"content type must be application/json, got {mimetype or 'none'!r}")
    service = _service()
    body = _read_body(service.config.max_request_bytes)
    if isinstance(body, Response):
        return body
    outcome = service.review(body, timeout=parse_timeout(request.args.get("timeout")), started=started)
    metrics.DURATION.labels(outcome.kind).observe(time.monotonic() - started)
    return _json(outcome.body, outcome.status)


noop_routes = Blueprint("auditwarden-bench", __name__)


@noop_routes.post("/noop")
def noop() -> Response:
    """Benchmark baseline (AUDITWARDEN_BENCH_NOOP=1): read the body, answer a constant allowance."""
    request.get_data(cache=False)
    return Response(_NOOP_BODY, status=200, mimetype="application/json")


def create_app(
    config: ServiceConfig,
    *,
    context: Context | None = None,
    tls: CertReloader | None = None,
    sources: PolicySources | None = None,
    analyzer: Analyzer | None = None,
    cache: VerdictCache | None = None,
    service: Service | None = None,
) -> Flask:
    """The WSGI application.  ``tls`` is the process's certificate reloader (for /readyz);
    ``service`` (else one built from ``config`` and the parts given) does the judging."""
    if service is None:
        service = Service(config, context or build_context(config), analyzer=analyzer, sources=sources, cache=cache)
    app = Flask("auditwarden")
    app.extensions[EXTENSION] = service
    if tls is not None:
        app.extensions[_TLS] = tls
        with contextlib.suppress(Exception):  # a failure is reported by /readyz
            tls.context()  # load now: /readyz and the expiry gauge are right from the start
    app.register_blueprint(routes)
    if os.environ.get(ENV_BENCH_NOOP) == "1":
        app.register_blueprint(noop_routes)
    return app
