"""Prometheus metrics of the webhook.

* ``auditwarden_admission_requests_total{kind,operation,verdict,mode}`` — every answered
  AdmissionReview; ``verdict`` is allow|deny|warn|exempted|skip|error.
* ``auditwarden_admission_duration_seconds{kind}`` — time from the request to the answer.
* ``auditwarden_policy_categories_covered{namespace,name}`` — covered categories of the
  last judged audit policy per object, updated only when the write was allowed and is not
  a dry run (a dry run has no side effects; a denied write did not change the object).
* ``auditwarden_admission_bad_requests_total{reason}`` — HTTP 4xx answers by reason.
* ``auditwarden_analysis_failures_total{reason}`` — no verdict reached (deadline, memory,
  internal error), answered by the target's mode.
* ``auditwarden_policy_source_lookups_total{result}`` — policySources lookups
  (cache-hit, fetched, error).
* ``auditwarden_connections_dropped_total{reason}`` — connections the serving worker closed
  before a request was answered: over-capacity, peer-over-capacity, peer-over-rate (refused at once),
  handshake-timeout, body-timeout (:mod:`webhook.service.worker`).
* ``auditwarden_tls_reloads_total{result}`` and
  ``auditwarden_tls_certificate_not_after_timestamp_seconds`` — certificate hot reload.

With more than one gunicorn worker, ``auditwarden serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
to a private directory before any worker starts, and ``/metrics`` aggregates every worker's
values with prometheus-client's multiprocess collector (gauges: most recent value;
certificate expiry: the smallest of the live workers).
"""

from __future__ import annotations

import contextlib
import threading

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest

from webhook.service.multiproc import MULTIPROC_ENV, multiprocess_enabled

__all__ = [
    "ANALYSIS_FAILURES",
    "BAD_REQUESTS",
    "CATEGORIES",
    "CERT_NOT_AFTER",
    "CONNECTIONS_DROPPED",
    "DURATION",
    "MULTIPROC_ENV",
    "POLICY_SOURCE_LOOKUPS",
    "REQUESTS",
    "TLS_RELOADS",
    "multiprocess_enabled",
    "render",
    "set_categories",
]

#: At most this many objects get a categories gauge series (a guard against label explosion).
MAX_CATEGORY_SERIES = 2000

REQUESTS = Counter(
    "auditwarden_admission_requests_total",
    "AdmissionReviews answered, by kind, operation, verdict and mode.",
    ["kind", "operation", "verdict", "mode"],
)
DURATION = Histogram(
    "auditwarden_admission_duration_seconds",
    "Time to answer an AdmissionReview.",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CATEGORIES = Gauge(
    "auditwarden_policy_categories_covered",
    "Event categories covered by the last judged audit policy of an object.",
    ["namespace", "name"],
    multiprocess_mode="mostrecent",
)
BAD_REQUESTS = Counter(
    "auditwarden_admission_bad_requests_total",
    "Requests refused with an HTTP 4xx status (not an AdmissionReview answer), by reason.",
    ["reason"],
)
ANALYSIS_FAILURES = Counter(
    "auditwarden_analysis_failures_total",
    "Objects for which no verdict could be reached (answered according to the mode), by reason.",
    ["reason"],
)
POLICY_SOURCE_LOOKUPS = Counter(
    "auditwarden_policy_source_lookups_total",
    "policySources ConfigMap lookups, by result (cache-hit, fetched, error).",
    ["result"],
)
TLS_RELOADS = Counter(
    "auditwarden_tls_reloads_total",
    "Serving certificate (re)loads from disk, by result (loaded, failed).",
    ["result"],
)
CERT_NOT_AFTER = Gauge(
    "auditwarden_tls_certificate_not_after_timestamp_seconds",
    "Expiry (Unix time) of the serving certificate in use.",
    multiprocess_mode="livemin",
)

CONNECTIONS_DROPPED = Counter(
    "auditwarden_connections_dropped_total",
    "Connections closed by the server before a request was answered, by reason (over-capacity, "
    "peer-over-capacity, peer-over-rate, handshake-timeout, body-timeout).",
    ["reason"],
)

_series_lock = threading.Lock()
_series: set[tuple[str, str]] = set()


def set_categories(namespace: str, name: str, covered: int) -> None:
    """Record the covered-category count of an object's policy (bounded number of series)."""
    key = (namespace, name)
    with _series_lock:
        if key not in _series:
            if len(_series) >= MAX_CATEGORY_SERIES:
                return
            _series.add(key)
    CATEGORIES.labels(namespace, name).set(covered)


def forget_categories(namespace: str, name: str) -> None:
    """The object is gone (an allowed DELETE): drop its series (single-process mode only)."""
    with _series_lock:
        if (namespace, name) not in _series:
            return
        _series.discard((namespace, name))
    if not multiprocess_enabled():
        with contextlib.suppress(KeyError):
            CATEGORIES.remove(namespace, name)
    else:  # multiprocess files cannot forget a series; 0 says "no policy there now"
        CATEGORIES.labels(namespace, name).set(0)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return _generate_latest(registry), CONTENT_TYPE_LATEST
    return _generate_latest(REGISTRY), CONTENT_TYPE_LATEST
