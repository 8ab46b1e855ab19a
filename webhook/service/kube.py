"""The optional ``policySources`` cross-reference: read a mirror Pod's audit policy from a ConfigMap.

A kube-apiserver mirror Pod names its policy by a host path (``--audit-policy-file``); the
file itself is not in the API.  When the configuration maps that path to a ConfigMap
(``policySources: {"/etc/kubernetes/audit-policy.yaml": "kube-system/audit-policy"}``), the
webhook reads that ConfigMap and judges the policy together with the Pod.

* Only for mirror Pods whose policy path is mapped: nothing else ever waits on the API
  (a webhook that waits on the apiserver it guards can deadlock it).
* In-cluster configuration (the Pod's ServiceAccount), else ``$KUBECONFIG`` when set; one
  attempt (no retries) with a total timeout of 2 s; the kubernetes client is imported on
  first use.
* Results are cached for ``policySourceTTLSeconds``; failures for a few seconds, so an
  unreachable API is not asked for every request.
* Dry-run requests read through the cache but never write it: a dry run leaves no trace
  that could change a later verdict.
* A failure is a warning on the response; it denies only with ``denyOnPolicySourceError``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.service.config import PolicySource

__all__ = ["FETCH_TIMEOUT_SECONDS", "PolicySourceError", "PolicySources", "audit_policy_file", "pick_policy"]

FETCH_TIMEOUT_SECONDS = 2.0
ERROR_TTL_SECONDS = 5.0
MAX_POLICY_BYTES = 3 * 1024 * 1024

log = logging.getLogger("auditwarden.kube")

Fetcher = Callable[[str, str, float], Mapping[str, Any]]
"""(namespace, name, timeout) -> the ConfigMap's ``data`` mapping; raises PolicySourceError."""


class PolicySourceError(Exception):
    """The policy ConfigMap could not be read or holds no policy; ``str()`` says why."""


def audit_policy_file(pod: Mapping[str, Any]) -> str | None:
    """The ``--audit-policy-file`` of a Pod's kube-apiserver container (pflag rules, last wins)."""
    from webhook.core import apiserver

    cfg = apiserver.from_pod(pod)
    if cfg is None:
        return None
    return cfg.flags.get("audit-policy-file") or None


def pick_policy(data: Mapping[str, Any], source: PolicySource) -> str:
    """The policy text in a ConfigMap's data: ``#key`` when given, else the first policy value."""
    if source.key is not None:
        value = data.get(source.key)
        if not isinstance(value, str):
            raise PolicySourceError(f"ConfigMap {source.namespace}/{source.name} has no data key {source.key!r}")
        return value
    from webhook.core import yamlsafe
    from webhook.core.documents import looks_like_policy

    candidates = [v for v in data.values() if isinstance(v, str) and "audit.k8s.io" in v]
    for value in candidates:
        try:
            docs = yamlsafe.load_all(value)
        except yamlsafe.DocumentError:
            continue
        if any(isinstance(d, Mapping) and looks_like_policy(d) for d in docs):
            return value
    if candidates:  # an invalid one: let the core say what is wrong with it
        return candidates[0]
    raise PolicySourceError(f"ConfigMap {source.namespace}/{source.name} holds no audit policy in its data")


@dataclass
class _Entry:
    expires: float
    text: str | None
    error: str | None


def kubernetes_fetcher() -> Fetcher:
    """Read ConfigMaps with the kubernetes client (imported here, on first use)."""
    lock = threading.Lock()
    api: list[Any] = []

    def core_api() -> Any:
        with lock:
            if not api:
                from kubernetes import client, config  # heavy import: only when policySources is used

                configuration = client.Configuration()
                try:
                    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                except config.ConfigException:
                    if not os.environ.get("KUBECONFIG"):
                        raise PolicySourceError(
                            "not running in a cluster (no ServiceAccount token) and $KUBECONFIG is not set"
                        ) from None
                    config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                configuration.retries = False  # one attempt within the timeout, never urllib3's 3 retries
                api.append(client.CoreV1Api(client.ApiClient(configuration)))
            return api[0]

    def fetch(namespace: str, name: str, timeout: float) -> Mapping[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            # A single number is urllib3's *total* timeout: connecting and reading together.
            cm = core_api().read_namespaced_config_map(name, namespace, _request_timeout=timeout)
        except ApiException as exc:
            raise PolicySourceError(f"reading ConfigMap {namespace}/{name}: HTTP {exc.status} {exc.reason}") from None
        except PolicySourceError:
            raise
        except Exception as exc:  # urllib3 timeouts, connection refused, bad kubeconfig ...
            what = type(exc).__name__
            if "Timeout" in what or "timed out" in str(exc):
                raise PolicySourceError(
                    f"reading ConfigMap {namespace}/{name}: no answer within {timeout:g} s"
                ) from None
            if "NewConnectionError" in what or "Connection refused" in str(exc) or "MaxRetryError" in what:
                raise PolicySourceError(
                    f"reading ConfigMap {namespace}/{name}: cannot connect to the API server"
                ) from None
            raise PolicySourceError(f"reading ConfigMap {namespace}/{name}: {what}: "
                                    f"{' '.join(str(exc).split())[:200]}") from None  # fmt: skip
        return dict(cm.data or {})

    return fetch


class PolicySources:
    """TTL-cached policy texts of the configured ``policySources``."""

    def __init__(
        self,
        sources: Mapping[str, PolicySource],
        *,
        ttl_seconds: float,
        fetcher: Fetcher | None = None,
        timeout_seconds: float = FETCH_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = sources
        self.ttl = ttl_seconds
        self.timeout = min(timeout_seconds, FETCH_TIMEOUT_SECONDS)
        self._fetcher = fetcher
        self._clock = clock
        self._cache: dict[PolicySource, _Entry] = {}
        self._lock = threading.Lock()
        self._fetch_locks: dict[PolicySource, threading.Lock] = {}

    def source_for(self, path: str | None) -> PolicySource | None:
        return self.sources.get(path) if path else None

    def policy_text(self, source: PolicySource, *, dry_run: bool) -> tuple[str, str]:
        """(policy text, "cache-hit" | "fetched"); raises PolicySourceError."""
        entry = self._fresh(source)
        if entry is not None:
            return self._result(entry, "cache-hit")
        with self._lock:
            fetch_lock = self._fetch_locks.setdefault(source, threading.Lock())
        with fetch_lock:  # one fetch per source at a time; others wait and read the cache
            entry = self._fresh(source)
            if entry is not None:
                return self._result(entry, "cache-hit")
            entry = self._fetch(source)
            if not dry_run:
                with self._lock:
                    self._cache[source] = entry
        return self._result(entry, "fetched")

    def _fresh(self, source: PolicySource) -> _Entry | None:
        with self._lock:
            entry = self._cache.get(source)
        if entry is not None and entry.expires > self._clock():
            return entry
        return None

    @staticmethod
    def _result(entry: _Entry, how: str) -> tuple[str, str]:
        if entry.text is None:
            raise PolicySourceError(entry.error or "unknown error")
        return entry.text, how

    def _fetch(self, source: PolicySource) -> _Entry:
        if self._fetcher is None:
            self._fetcher = kubernetes_fetcher()
        now = self._clock()
        try:
            data = self._fetcher(source.namespace, source.name, self.timeout)
            text = pick_policy(data, source)
            if len(text) > MAX_POLICY_BYTES:
                raise PolicySourceError(f"ConfigMap {source}: the policy is larger than {MAX_POLICY_BYTES} bytes")
        except PolicySourceError as exc:
            log.warning("policySources lookup failed", extra={"fields": {"source": str(source), "reason": str(exc)}})
            return _Entry(now + min(ERROR_TTL_SECONDS, self.ttl), None, str(exc))
        return _Entry(now + self.ttl, text, None)
