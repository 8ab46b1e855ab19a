"""Build the core's :class:`~webhook.core.verdict.Context` — the adapters' one entry point.

This is where files are read (the packaged category catalog, a user's categories file), so
that the core itself stays free of I/O.  The CLI and the webhook both call
:func:`build_context`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from webhook.core.categories import Catalog, parse_catalog
from webhook.core.verdict import Context, Profile
from webhook.core.versions import NEWEST, KubeVersion


@lru_cache(maxsize=1)
def packaged_catalog() -> Catalog:
    """The catalog shipped as package data (``webhook/data/categories.yaml``)."""
    return parse_catalog((Path(__file__).parent / "data" / "categories.yaml").read_text("utf-8"))


def build_context(
    *,
    profile: str = "baseline",
    kubernetes_version: KubeVersion = NEWEST,
    categories_file: str | Path | None = None,
    policy_files: Mapping[str, str] | None = None,
) -> Context:
    """Raises ValueError (CatalogError) for an unusable categories file or unknown profile."""
    if categories_file:
        catalog = parse_catalog(Path(categories_file).read_text("utf-8"))
    else:
        catalog = packaged_catalog()
    if profile not in catalog.profiles:
        raise ValueError(f"unknown profile {profile!r}; the catalog defines {', '.join(catalog.profiles)}")
    prof: Profile = profile  # type: ignore[assignment]
    return Context(
        catalog=catalog,
        profile=prof,
        kubernetes_version=kubernetes_version,
        policy_files=dict(policy_files or {}),
    )
