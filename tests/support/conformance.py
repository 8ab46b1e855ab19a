"""Helpers to turn the shared conformance/probe data into core objects."""

from __future__ import annotations

from typing import Any

from webhook.core.categories import attributes_from_request
from webhook.core.checker import Attributes


def attributes(req: dict[str, Any]) -> Attributes:
    """The conformance/evaluate request shape -> checker Attributes (the core's own reader)."""
    return attributes_from_request(req)
