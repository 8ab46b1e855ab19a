"""gunicorn settings of ``auditwarden serve`` (a gunicorn config module: its names are settings).

``auditwarden serve`` loads this module and then applies its own options (``--bind``,
``--workers``, the connection caps, the certificate files, the log level).  Choices:

* **The worker** is :class:`webhook.service.worker.WebhookWorker`: gunicorn's gevent worker
  (a greenlet per connection, so a client that is slow or silent costs memory, never a
  request slot) with a bounded TLS handshake, request head and body deadlines, connection
  caps with a clear refusal, and inline judging in native threads so that the CPU-bound core
  does not stall the event loop.  Why not gthread: see that module and docs/webhook.md.
  **1 worker** by default: the chart gives a pod one CPU and the core is CPU-bound Python
  under the GIL, so a second process per pod buys no throughput (scale with replicas
  instead); with one process the metrics are exact and in-process.  Pathological objects
  cannot take the worker down either: large ones are analysed in a bounded child process
  (:mod:`webhook.service.isolation`).  ``--workers N`` (N > 1) is supported: ``serve`` then
  sets ``PROMETHEUS_MULTIPROC_DIR`` to a private directory and ``/metrics`` aggregates all
  workers (prometheus-client's multiprocess mode); a worker that dies is replaced by the
  gunicorn master.
* **Timeouts**: ``timeout`` 30 s (the worker heartbeat: a worker whose loop is stuck that long
  is replaced), ``graceful_timeout`` 10 s on shutdown, ``keepalive`` 5 s (the apiserver
  reuses connections; its idle connections are closed after 90 s on its side, so 5 s costs at
  most a new handshake now and then).  The per-connection deadlines (handshake, head, body)
  are :class:`webhook.service.worker.ConnectionLimits`.
* **Request limits**: a short request line and few, small header fields — an AdmissionReview
  request needs neither; the body limit (``maxRequestBytes``) is enforced by the app.
* **Logs**: JSON lines on stderr for gunicorn and the app; the access log is off (every
  judged request already gets a decision line; set ``AUDITWARDEN_ACCESS_LOG=1`` to enable it).
* **TLS**: :func:`ssl_context` hands every new connection (in the worker's greenlet for it,
  not on the accept path) the current context of the
  process's :class:`webhook.service.tls.CertReloader`, so rotated certificate files are
  served without a restart.
"""

from __future__ import annotations

import gc
from typing import Any

from webhook.service.logs import access_log_enabled as _access_log_enabled
from webhook.service.logs import logconfig_dict as _logconfig_dict

proc_name = "auditwarden"
bind = ["127.0.0.1:8443"]
worker_class = "webhook.service.worker.WebhookWorker"
workers = 1
# The worker's own caps (ConnectionLimits.max_connections) refuse connections before this
# pool bound is reached; it is set for gunicorn's own checks only.
worker_connections = 1000
timeout = 30
graceful_timeout = 10
keepalive = 5
backlog = 512
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190
preload_app = False
accesslog = "-" if _access_log_enabled() else None
errorlog = "-"
loglevel = "info"
logconfig_dict = _logconfig_dict("info", access_log=accesslog is not None)
# Respect the real peer address only; there is no proxy between the apiserver and us.
forwarded_allow_ips = ""
# gunicorn >= 24's control socket ($HOME/.gunicorn/gunicorn.ctl) is not used: the home
# directory is read-only in the chart, and two servers on one host would share the path.
control_socket_disable = True


def ssl_context(config: Any, default_ssl_context_factory: Any) -> Any:
    """gunicorn hook, called for every accepted TLS connection: the process's current context."""
    from webhook.service.tls import reloader_for

    return reloader_for(config.certfile, config.keyfile).context()


def post_worker_init(worker: Any) -> None:
    """gunicorn hook (worker, app loaded): inline verdicts run off the event loop (see WebhookWorker).

    Last, everything loaded so far (the app, the core's tables, the schemas, the libraries: some
    fifty thousand objects that live as long as the worker) is moved out of the cyclic garbage
    collector's reach with :func:`gc.freeze`.  Otherwise every full collection walks all of them
    while the loop waits, a pause that lands on whichever request is in flight; connection churn
    (an attacker's half-open handshakes, a burst of new clients) makes those collections frequent.
    After the freeze a collection walks only what requests and connections allocate.
    """
    offload = getattr(worker, "judge_offloaded", None)
    service = getattr(worker.wsgi, "extensions", {}).get("auditwarden")
    if offload is not None and service is not None:
        service.analyzer.run_inline = offload
    if service is not None and service.config.policy_sources:
        # The kubernetes client imports its API classes lazily, seconds of CPU on first use; done
        # inside a request that would hold the event loop, so it is done before the worker serves.
        from kubernetes import config as _config  # noqa: F401
        from kubernetes.client import CoreV1Api, V1ConfigMap  # noqa: F401
    gc.collect()
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook (master): forget a dead worker's live gauges in multiprocess mode."""
    from webhook.service.multiproc import mark_process_dead  # not .metrics: see that module

    mark_process_dead(worker.pid)


def when_ready(server: Any) -> None:
    """gunicorn hook (master): the listening sockets are open."""
    server.log.info("auditwarden is serving on %s", ", ".join(str(a) for a in server.LISTENERS))
