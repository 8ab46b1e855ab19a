"""prometheus-client's multiprocess mode, for code that runs in the gunicorn master.

With more than one worker, every process that *defines* a metric writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` (a metric without labels at once, at import), and
``/metrics`` aggregates them.  The master must therefore never import
:mod:`webhook.service.metrics`: its own file would hold the expiry gauge at 0 for as long as
the server runs, and ``livemin`` would report that.  What the master needs — forgetting a
dead worker — lives here, without a metric in sight.
"""

from __future__ import annotations

import os

__all__ = ["MULTIPROC_ENV", "mark_process_dead", "multiprocess_enabled"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def mark_process_dead(pid: int) -> None:
    """gunicorn ``child_exit`` hook: drop a dead worker's live gauges (multiprocess mode only)."""
    if multiprocess_enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
