"""Serving certificate hot reload.

gunicorn asks its ``ssl_context(config, default_ssl_context_factory)`` hook for an
``SSLContext`` each time a connection is wrapped (``gunicorn/sock.py: ssl_context``, called
per connection by :class:`webhook.service.worker.WebhookWorker`).  The hook in
:mod:`webhook.gunicorn_conf` returns :meth:`CertReloader.context`, which keeps one loaded
context and, at most every ``interval`` seconds, reads the certificate and key files again;
when their content changed it builds a new context and hands that to new connections.

* Connections already open keep the context they were wrapped with, so in-flight requests
  and kept-alive connections never fail because of a rotation.
* New connections see the new certificate within ``interval`` seconds of the files
  changing (default 10 s, ``AUDITWARDEN_TLS_RELOAD_SECONDS``), well within the 60 s promise.
* A half-written rotation (a certificate whose key is not there yet) fails to load: the old
  context stays in use, the failure is logged and counted, and the next check tries again.
  Kubernetes updates a mounted Secret by swapping a symlink, so both files change together.
* The comparison is by content (SHA-256 of both files), not by modification time, so a
  rotation that preserves timestamps is still noticed.

``/readyz`` asks :meth:`CertReloader.status`: not ready when no certificate is loaded or
the one in use has expired (or is not yet valid).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_INTERVAL", "ENV_INTERVAL", "CertReloader", "CertStatus", "TLSError", "reloader_for"]

ENV_INTERVAL = "AUDITWARDEN_TLS_RELOAD_SECONDS"
DEFAULT_INTERVAL = 10.0

log = logging.getLogger("auditwarden.tls")


class TLSError(Exception):
    """The certificate or key cannot be loaded; ``str()`` says which and why."""


@dataclass(frozen=True)
class CertStatus:
    loaded: bool
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    subject: str
    fingerprint: str  # SHA-256 of the DER certificate, hex
    loaded_at: float  # time.time() of the last successful load
    last_error: str

    def problem(self, now: dt.datetime | None = None) -> str | None:
        """Why the server is not ready, or None."""
        now = now or dt.datetime.now(dt.UTC)
        if not self.loaded:
            return f"no serving certificate loaded: {self.last_error or 'not loaded yet'}"
        if self.not_after is not None and now >= self.not_after:
            return f"the serving certificate expired at {self.not_after.isoformat()}"
        if self.not_before is not None and now < self.not_before:
            return f"the serving certificate is not valid before {self.not_before.isoformat()}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "loaded": self.loaded,
            "subject": self.subject,
            "notBefore": self.not_before.isoformat() if self.not_before else None,
            "notAfter": self.not_after.isoformat() if self.not_after else None,
            "sha256": self.fingerprint,
            "lastError": self.last_error or None,
        }


def interval_from_env(default: float = DEFAULT_INTERVAL) -> float:
    raw = os.environ.get(ENV_INTERVAL, "")
    try:
        value = float(raw) if raw.strip() else default
    except ValueError:
        return default
    return min(max(value, 0.05), 60.0)


def build_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server SSLContext (TLS 1.2+) with the certificate chain and key; raises TLSError."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(certfile=certfile, keyfile=keyfile)
    except FileNotFoundError as exc:
        raise TLSError(f"{exc.filename}: no such file") from None
    except ssl.SSLError as exc:
        raise TLSError(f"{certfile} / {keyfile}: {exc.reason or exc}") from None
    except OSError as exc:
        raise TLSError(f"{exc.filename or certfile}: {exc.strerror or exc}") from None
    return ctx


def _describe(cert_pem: bytes) -> tuple[dt.datetime | None, dt.datetime | None, str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return None, None, "", ""
    return (
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
        cert.subject.rfc4514_string(),
        cert.fingerprint(hashes.SHA256()).hex(),
    )


class CertReloader:
    """One process's serving context, reloaded when the files change (thread-safe)."""

    def __init__(
        self,
        certfile: str,
        keyfile: str,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_load: Callable[[CertStatus | None, str | None], None] | None = None,
    ) -> None:
        self.certfile = certfile
        self.keyfile = keyfile
        self.interval = interval_from_env() if interval is None else interval
        self._clock = clock
        self._on_load = on_load
        self._lock = threading.Lock()
        self._ctx: ssl.SSLContext | None = None
        self._digest = b""
        self._next_check = 0.0
        self._status = CertStatus(False, None, None, "", "", 0.0, "")

    def context(self) -> ssl.SSLContext:
        """The context for a new connection (checks the files at most every ``interval`` s)."""
        if self._clock() >= self._next_check or self._ctx is None:
            self.refresh()
        ctx = self._ctx
        if ctx is None:
            raise TLSError(self._status.last_error or "no serving certificate loaded")
        return ctx

    def status(self) -> CertStatus:
        if self._clock() >= self._next_check:
            self.refresh()
        return self._status

    def refresh(self, force: bool = False) -> bool:
        """Reload when the files changed; True when a new context was installed."""
        if not self._lock.acquire(blocking=self._ctx is None or force):
            return False  # another thread is checking right now; use the current context
        try:
            now = self._clock()
            if not force and self._ctx is not None and now < self._next_check:
                return False
            self._next_check = now + self.interval
            try:
                with open(self.certfile, "rb") as fh:
                    cert_pem = fh.read()
                with open(self.keyfile, "rb") as fh:
                    key_pem = fh.read()
            except OSError as exc:
                return self._failed(f"{exc.filename}: {exc.strerror or exc}")
            digest = hashlib.sha256(cert_pem + b"\0" + key_pem).digest()
            if digest == self._digest and self._ctx is not None and not force:
                return False
            try:
                ctx = build_context(self.certfile, self.keyfile)
            except TLSError as exc:
                return self._failed(str(exc))
            not_before, not_after, subject, fingerprint = _describe(cert_pem)
            first = self._ctx is None
            self._ctx, self._digest = ctx, digest
            self._status = CertStatus(True, not_before, not_after, subject, fingerprint, time.time(), "")
            if not first:
                log.info(
                    "serving certificate reloaded",
                    extra={"fields": {"certificate": self.certfile, "subject": subject, "sha256": fingerprint,
                                      "notAfter": not_after.isoformat() if not_after else None}},
                )  # fmt: skip
            if self._on_load:
                self._on_load(self._status, None)
            return True
        finally:
            self._lock.release()

    def _failed(self, reason: str) -> bool:
        old = self._status
        self._status = CertStatus(old.loaded, old.not_before, old.not_after, old.subject, old.fingerprint,
                                  old.loaded_at, reason)  # fmt: skip
        log.warning(
            "cannot load the serving certificate; still using the previous one" if old.loaded
            else "cannot load the serving certificate",
            extra={"fields": {"certificate": self.certfile, "key": self.keyfile, "reason": reason}},
        )  # fmt: skip
        if self._on_load:
            self._on_load(None, reason)
        return False


_registry: dict[tuple[str, str], CertReloader] = {}
_registry_lock = threading.Lock()


def reloader_for(certfile: str, keyfile: str) -> CertReloader:
    """The process-wide reloader of these files (shared by the gunicorn hook and /readyz)."""
    key = (os.path.abspath(certfile), os.path.abspath(keyfile))
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = _registry[key] = CertReloader(certfile, keyfile, on_load=_record_metrics)
        return found


def _record_metrics(status: CertStatus | None, error: str | None) -> None:
    from webhook.service import metrics

    if status is None:
        metrics.TLS_RELOADS.labels("failed").inc()
        return
    metrics.TLS_RELOADS.labels("loaded").inc()
    if status.not_after is not None:
        metrics.CERT_NOT_AFTER.set(status.not_after.timestamp())


def check_files(certfile: str, keyfile: str) -> CertStatus:
    """Load once (no metrics, no registry) — for start-up validation in the master process."""
    reloader = CertReloader(certfile, keyfile, interval=3600)
    reloader.refresh(force=True)
    status = reloader.status()
    if not status.loaded:
        raise TLSError(status.last_error)
    return status
