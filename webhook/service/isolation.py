"""Bounded analysis: large objects are judged in a child process with a deadline and a memory cap.

Anyone who may create a ConfigMap somewhere can make kube-apiserver send auditwarden an
object of up to 3 MiB that mentions ``audit.k8s.io``.  The core bounds YAML loading (aliases,
depth, size), but the analysis of a loaded policy still grows with its size — a policy of
tens of thousands of one-line rules, well under the request limit, takes seconds (figures:
bench/README.md, "Analysis time by policy size") — and a thread cannot be interrupted in
Python.  A webhook that can be kept busy for seconds or minutes by one request is a denial
of service against every audit-configuration change in the cluster.

So: a request body up to ``isolateAboveBytes`` (default 16 KiB: a CREATE of any real audit
policy, kubeadm-config or kube-apiserver manifest we know of; the worst case inline is a
policy of ~600 one-line rules) is judged inline, in the request thread.
A larger one is judged in a child process started from a
``forkserver`` (cheap to fork, and safe from a multi-threaded worker), under
``RLIMIT_AS`` (memory) and ``RLIMIT_CPU``; the request thread waits at most the deadline —
the smaller of ``analysisTimeoutSeconds`` and the apiserver's own ``?timeout=`` minus a
margin — then kills the child.  The caller turns a :class:`AnalysisFailed` into an
AdmissionReview with the reason (denied unless the target's mode is ``warn``).  At most
:data:`MAX_CONCURRENT` isolated analyses run per worker process at a time.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from webhook.core.verdict import NO_FACTS, Context, Facts, Mode, Operation, Verdict, judge

__all__ = ["AnalysisFailed", "Analyzer", "Case"]

MAX_CONCURRENT = 2
DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024  # address space of the child (RLIMIT_AS)
# "__main__" first: the fork server imports the main script once, so the children it forks
# for each job do not run it again (multiprocessing re-imports the main module in a child
# whose own __main__ differs).  ``python -m webhook`` is never re-run (a package __main__).
_PRELOAD = ["__main__", "webhook.cli", "webhook.service.isolation", "webhook.core.verdict", "webhook.context"]


class AnalysisFailed(Exception):
    """The analysis did not produce a verdict; ``reason`` says why, ``code`` is a metric label."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, kw_only=True)
class Case:
    """The arguments of one :func:`webhook.core.verdict.judge` call, to run here or in a child."""

    new: Mapping[str, Any] | None
    old: Mapping[str, Any] | None
    operation: Operation
    mode: Mode
    context: Context
    exempted_by: str | None = None
    source: str = ""
    facts: Facts = NO_FACTS

    def judge(self) -> Verdict:
        return judge(self.new, self.old, operation=self.operation, mode=self.mode, context=self.context,
                     exempted_by=self.exempted_by, source=self.source, facts=self.facts)  # fmt: skip


def _child(conn: Connection, case: Case, memory_limit: int, cpu_seconds: int) -> None:  # pragma: no cover - child
    """Runs in the child process: limit resources, judge, send the verdict (or why not) back."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    except (ImportError, ValueError, OSError):
        pass
    try:
        conn.send(("ok", case.judge()))
    except MemoryError:
        conn.send(("memory", "the analysis needed more than the memory limit"))
    except RecursionError:
        conn.send(("error", "the object is nested too deeply to analyse"))
    except BaseException as exc:  # report, never hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        conn.close()


def _call(fn: Callable[[], Verdict]) -> Verdict:
    return fn()


class Analyzer:
    """Calls :func:`judge` inline for small requests and in a bounded child process for large ones."""

    def __init__(
        self,
        *,
        isolate_above_bytes: int,
        timeout_seconds: float,
        memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT,
        max_concurrent: int = MAX_CONCURRENT,
    ) -> None:
        self.isolate_above_bytes = isolate_above_bytes
        self.timeout_seconds = timeout_seconds
        self.memory_limit_bytes = memory_limit_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._mp: Any = None
        self._mp_lock = threading.Lock()
        #: How an inline verdict is run: called here by default; the serving worker
        #: (:meth:`webhook.service.worker.WebhookWorker.judge_offloaded`) runs it in a native
        #: thread so that its event loop keeps serving other connections meanwhile.
        self.run_inline: Callable[[Callable[[], Verdict]], Verdict] = _call

    def _context(self) -> Any:
        with self._mp_lock:
            if self._mp is None:
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(_PRELOAD)
                self._mp = ctx
            return self._mp

    def judge(self, case: Case, *, size: int = 0, deadline: float | None = None) -> Verdict:
        """The verdict, or :class:`AnalysisFailed`.  ``deadline`` is a ``time.monotonic()`` value."""
        if size <= self.isolate_above_bytes:
            return self.run_inline(case.judge)
        return self.isolated(case, deadline)

    def isolated(self, case: Case, deadline: float | None = None) -> Verdict:
        now = time.monotonic()
        budget = self.timeout_seconds if deadline is None else min(self.timeout_seconds, deadline - now)
        if budget <= 0:
            raise AnalysisFailed("no time was left to analyse the object", "deadline")
        if not self._slots.acquire(timeout=budget):
            raise AnalysisFailed(
                f"too many large objects are being analysed at once; none finished within {budget:.1f} s", "busy"
            )
        try:
            return self._run(case, budget - (time.monotonic() - now))
        finally:
            self._slots.release()

    def _run(self, case: Case, budget: float) -> Verdict:
        mp = self._context()
        parent, child = mp.Pipe(duplex=False)
        cpu = max(1, int(budget) + 1)
        proc = mp.Process(target=_child, args=(child, case, self.memory_limit_bytes, cpu), daemon=True)
        started = time.monotonic()
        try:
            proc.start()
        except OSError as exc:
            parent.close()
            child.close()
            raise AnalysisFailed(f"could not start the analysis process: {exc}", "spawn") from None
        child.close()
        try:
            remaining = budget - (time.monotonic() - started)
            if not parent.poll(max(remaining, 0.0)):
                raise AnalysisFailed(
                    f"the analysis did not finish within {budget:.1f} s: the content is too large or complex to "
                    "vouch for. Fix: simplify it (fewer, broader rules) or split it",
                    "deadline",
                )
            try:
                status, payload = parent.recv()
            except (EOFError, OSError):
                proc.join(1.0)
                code = proc.exitcode
                raise AnalysisFailed(
                    f"the analysis process ended without a verdict (exit code {code}); the content could not be "
                    "analysed within the memory/CPU limits",
                    "crash",
                ) from None
        finally:
            parent.close()
            if proc.is_alive():
                proc.kill()
            proc.join(2.0)
        if status == "ok" and isinstance(payload, Verdict):
            return payload
        if status == "memory":
            raise AnalysisFailed(
                f"the analysis needed more than {self.memory_limit_bytes // (1024 * 1024)} MiB of memory; the "
                "content is too large to vouch for",
                "memory",
            )
        raise AnalysisFailed(f"the analysis failed: {payload}", "error")

    def warm_up(self) -> None:
        """Start the fork server ahead of the first large request (optional)."""
        try:
            mp = self._context()
            proc = mp.Process(target=os.getpid, daemon=True)
            proc.start()
            proc.join(30)
        except OSError:
            pass
