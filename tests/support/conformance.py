"""Helpers to turn the shared conformance/probe data into core objects."""

from __future__ import annotations

from typing import Any

from webhook.core.checker import Attributes, User


def attributes(req: dict[str, Any]) -> Attributes:
    """The conformance/evaluate request shape -> checker Attributes."""
    user = req.get("user")
    return Attributes(
        user=None if user is None else User(str(user.get("name", "")), tuple(user.get("groups") or ())),
        verb=req.get("verb") or "",
        namespace=req.get("namespace") or "",
        api_group=req.get("apiGroup") or "",
        api_version=req.get("apiVersion") or "",
        resource=req.get("resource") or "",
        subresource=req.get("subresource") or "",
        name=req.get("name") or "",
        path=req.get("path") or "",
        is_resource_request=bool(req.get("isResourceRequest", True)),
    )
