"""Cheap relevance test run before any YAML parsing on the webhook's hot path.

INTERFACE STUB — implementation in progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_relevant(kind: str, obj: Mapping[str, Any] | None) -> bool:
    """True when a ConfigMap/Pod may carry something auditwarden judges (no YAML parsing)."""
    raise NotImplementedError
