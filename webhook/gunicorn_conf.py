"""gunicorn settings of ``auditwarden serve`` (a gunicorn config module: its names are settings).

``auditwarden serve`` loads this module and then applies its own options (``--bind``,
``--workers``, ``--threads``, the certificate files, the log level).  Choices:

* **gthread workers** (a thread pool per process): kube-apiserver keeps connections open and
  sends requests concurrently; threads serve several connections per process without an
  event-loop dependency, and the core is CPU-bound Python, so more threads than a few
  would only queue on the GIL.  **1 worker × 8 threads** by default: the chart gives a pod
  one CPU and the core is CPU-bound Python under the GIL, so a second process per pod buys
  no throughput (scale with replicas instead); with one process the metrics are exact and
  in-process, and keep-alive connections are never stuck on the busier of two workers.
  Pathological objects cannot take the worker down either: large ones are analysed in a
  bounded child process (:mod:`webhook.service.isolation`).  ``--workers N`` (N > 1) is
  supported: ``serve`` then sets ``PROMETHEUS_MULTIPROC_DIR`` to a private directory and
  ``/metrics`` aggregates all workers (prometheus-client's multiprocess mode).
* **Timeouts**: ``timeout`` 30 s (the apiserver never waits longer than 30 s for a webhook),
  ``graceful_timeout`` 10 s on shutdown, ``keepalive`` 5 s (the apiserver reuses
  connections; its idle connections are closed after 90 s on its side, so 5 s costs at most
  a new handshake now and then).
* **Request limits**: a short request line and few, small header fields — an AdmissionReview
  request needs neither; the body limit (``maxRequestBytes``) is enforced by the app.
* **Logs**: JSON lines on stderr for gunicorn and the app; the access log is off (every
  judged request already gets a decision line; set ``AUDITWARDEN_ACCESS_LOG=1`` to enable it).
* **TLS**: :func:`ssl_context` hands every new connection the current context of the
  process's :class:`webhook.service.tls.CertReloader`, so rotated certificate files are
  served without a restart.
"""

from __future__ import annotations

from typing import Any

from webhook.service.logs import access_log_enabled as _access_log_enabled
from webhook.service.logs import logconfig_dict as _logconfig_dict

proc_name = "auditwarden"
bind = ["127.0.0.1:8443"]
worker_class = "gthread"
workers = 1
threads = 8
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


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook (master): forget a dead worker's live gauges in multiprocess mode."""
    from webhook.service.multiproc import mark_process_dead  # not .metrics: see that module

    mark_process_dead(worker.pid)


def when_ready(server: Any) -> None:
    """gunicorn hook (master): the listening sockets are open."""
    server.log.info("auditwarden is serving on %s", ", ".join(str(a) for a in server.LISTENERS))
