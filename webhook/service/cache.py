"""A small content-addressed memo of verdicts.

:func:`webhook.core.verdict.judge` is a pure function of the objects, the operation, the
mode, the exemption, the caller's facts and the (per-process) Context, so a verdict can be reused whenever the
same content is judged again: GitOps controllers re-apply unchanged manifests on every
reconcile (a no-op apply still passes admission), clients retry after conflicts and
timeouts, several replicas of a tool apply the same object.  The key is a SHA-256 over a
JSON projection of the inputs that leaves out what the server changes on every write and
the analysis never reads (``metadata.managedFields``, ``resourceVersion``,
``uid``, ``creationTimestamp``, ``generation``, ``selfLink``).  Because the key covers every
input the verdict depends on, a cached entry can never change a later verdict; dry-run
requests read the cache but never write it anyway.

Bounded: at most :data:`MAX_ENTRIES` verdicts (LRU), and verdicts of objects that carry many
documents (e.g. a 10,000-key ConfigMap) are not kept.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from webhook.core.verdict import NO_FACTS, Facts, Verdict

__all__ = ["MAX_ENTRIES", "VerdictCache"]

MAX_ENTRIES = 256
MAX_RESULTS_PER_ENTRY = 32
_VOLATILE_METADATA = frozenset(
    {"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"}
)


def _project(obj: Mapping[str, Any] | None) -> Any:
    if not isinstance(obj, Mapping):
        return obj
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return obj
    out = dict(obj)
    out["metadata"] = {k: v for k, v in meta.items() if k not in _VOLATILE_METADATA}
    return out


class VerdictCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, Verdict] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(
        new: Mapping[str, Any] | None,
        old: Mapping[str, Any] | None,
        *,
        operation: str,
        mode: str,
        exempted_by: str | None,
        policy_files: Mapping[str, str],
        facts: Facts = NO_FACTS,
    ) -> bytes:
        judged_facts = [[(f.code, f.message) for f in facts.violations], [(f.code, f.message) for f in facts.warnings],
                        facts.unanalysed]  # fmt: skip
        material = [operation, mode, exempted_by, _project(new), _project(old), sorted(policy_files.items()),
                    judged_facts]  # fmt: skip
        # No sort_keys: the apiserver serialises an object's fields in a fixed order, and a
        # different order of the same content only costs a miss, never a wrong hit.
        text = json.dumps(material, separators=(",", ":"), ensure_ascii=False, default=repr)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()

    def get(self, key: bytes) -> Verdict | None:
        with self._lock:
            verdict = self._entries.get(key)
            if verdict is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return verdict

    def put(self, key: bytes, verdict: Verdict) -> None:
        if self.max_entries <= 0 or len(verdict.results) > MAX_RESULTS_PER_ENTRY:
            return
        with self._lock:
            self._entries[key] = verdict
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
