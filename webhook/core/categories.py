"""Event categories, their probe requests and the profiles (the category catalog).

The packaged catalog is ``webhook/data/categories.yaml`` (translated from the category spec
the tests hold, ``tests/data/spec/categories.yaml``); a user may pass their own file of the same shape.  This
module only parses text handed to it — reading files is the adapters' job
(:mod:`webhook.context`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.core import yamlsafe
from webhook.core.checker import Attributes, User
from webhook.core.policy import LEVEL_RANK, STAGES


class CatalogError(ValueError):
    """The categories file is not usable; ``str()`` says where."""


@dataclass(frozen=True, slots=True)
class Probe:
    id: str
    principal: str
    attributes: Attributes
    stages: frozenset[str]  # emitted at these stages; logged if any is not omitted
    warning: str = ""  # advisories only


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    description: str
    probes: tuple[Probe, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    min_categories: int
    required_categories: tuple[str, ...]
    min_level: str
    required_stages: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    categories: tuple[Category, ...]
    advisories: tuple[Probe, ...]
    profiles: Mapping[str, Profile]

    @property
    def category_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.categories)


def attributes_from_request(req: Mapping[str, Any], where: str = "request") -> Attributes:
    """The request shape shared by the catalog, the conformance data and ``auditwarden evaluate``."""
    if not isinstance(req, Mapping):
        raise CatalogError(f"{where}: must be an object")
    user = req.get("user")
    if user is not None:
        if not isinstance(user, Mapping) or not isinstance(user.get("name", ""), str):
            raise CatalogError(f"{where}.user: must be null or {{name, groups}}")
        groups = user.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise CatalogError(f"{where}.user.groups: must be a list of strings")
    text_fields = ("verb", "namespace", "apiGroup", "apiVersion", "resource", "subresource", "name", "path")
    for key in text_fields:
        if req.get(key) is not None and not isinstance(req.get(key), str):
            raise CatalogError(f"{where}.{key}: must be a string")
    is_resource = req.get("isResourceRequest", True)
    if not isinstance(is_resource, bool):
        raise CatalogError(f"{where}.isResourceRequest: must be true or false")
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
        is_resource_request=is_resource,
    )


def _probe(raw: Any, where: str, advisory: bool = False) -> Probe:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise CatalogError(f"{where}: a probe needs an id")
    stages = raw.get("stages")
    if not isinstance(stages, list) or not stages or any(s not in STAGES for s in stages):
        raise CatalogError(f"{where}.stages: a non-empty list of {', '.join(STAGES)}")
    warning = raw.get("warning", "")
    if advisory and (not isinstance(warning, str) or not warning):
        raise CatalogError(f"{where}.warning: an advisory needs its warning text")
    return Probe(
        id=raw["id"],
        principal=str(raw.get("principal", "")),
        attributes=attributes_from_request(raw.get("request") or {}, f"{where}.request"),
        stages=frozenset(stages),
        warning=str(warning),
    )


def parse_catalog(text: str) -> Catalog:
    """Parse a catalog file's text, with errors that name the offending entry."""
    try:
        doc = yamlsafe.load_one(text)
    except yamlsafe.DocumentError as exc:
        raise CatalogError(str(exc)) from None
    if not isinstance(doc, Mapping) or doc.get("kind") != "CategoryCatalog":
        raise CatalogError("not a category catalog (expected kind: CategoryCatalog)")
    categories = []
    for i, c in enumerate(doc.get("categories") or []):
        where = f"categories[{i}]"
        if not isinstance(c, Mapping) or not isinstance(c.get("id"), str):
            raise CatalogError(f"{where}: a category needs an id")
        probes = tuple(_probe(p, f"{where}.probes[{j}]") for j, p in enumerate(c.get("probes") or []))
        if not probes:
            raise CatalogError(f"{where}: a category needs at least one probe")
        categories.append(Category(c["id"], str(c.get("description", "")), probes))
    if not categories:
        raise CatalogError("the catalog defines no categories")
    ids = [c.id for c in categories]
    if len(set(ids)) != len(ids):
        raise CatalogError("category ids must be unique")
    advisories = tuple(
        _probe(a, f"advisories[{i}]", advisory=True) for i, a in enumerate(doc.get("advisories") or [])
    )
    profiles: dict[str, Profile] = {}
    raw_profiles = doc.get("profiles")
    if not isinstance(raw_profiles, Mapping) or not raw_profiles:
        raise CatalogError("the catalog defines no profiles")
    for name, p in raw_profiles.items():
        where = f"profiles.{name}"
        if not isinstance(p, Mapping):
            raise CatalogError(f"{where}: must be an object")
        min_categories = p.get("minCategories", 0)
        if not isinstance(min_categories, int) or not 0 <= min_categories <= len(categories):
            raise CatalogError(f"{where}.minCategories: an integer from 0 to {len(categories)}")
        required = p.get("requiredCategories") or []
        unknown = [r for r in required if r not in ids]
        if unknown:
            raise CatalogError(f"{where}.requiredCategories: unknown categories {unknown}")
        min_level = p.get("minLevel", "Metadata")
        if min_level not in LEVEL_RANK or min_level == "None":
            raise CatalogError(f"{where}.minLevel: one of Metadata, Request, RequestResponse")
        stages = p.get("requiredStages") or []
        if any(s not in STAGES for s in stages):
            raise CatalogError(f"{where}.requiredStages: stages are {', '.join(STAGES)}")
        profiles[str(name)] = Profile(str(name), min_categories, tuple(required), min_level, tuple(stages))
    return Catalog(tuple(categories), advisories, profiles)
