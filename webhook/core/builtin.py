"""Kubernetes' built-in API groups, their resources and subresources, as a table.

The table is data, generated from upstream's discovery documents by ``scripts/gen_builtin_api.py``
and shipped as ``webhook/data/builtin-api-v1.37.json`` (provenance inside).  The core reads no
files: :func:`webhook.context.build_context` reads it and passes the parsed table in the
:class:`~webhook.core.verdict.Context`; without one (:data:`NO_BUILTIN_API`) no resource is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class BuiltinAPIError(ValueError):
    """The table is not in the generator's format."""


@dataclass(frozen=True)
class BuiltinAPI:
    """``groups[group][resource]`` is the set of the resource's subresources (``""`` is the core group)."""

    groups: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    version: str = ""  # the Kubernetes release the table describes, "1.37"

    def groups_of(self, resource: str) -> list[str]:
        """Every built-in group that serves ``resource``, in table order."""
        return [g for g, table in self.groups.items() if resource in table]


NO_BUILTIN_API = BuiltinAPI()


def parse_builtin_api(doc: Any) -> BuiltinAPI:
    """The table from the generator's JSON (already parsed)."""
    groups = doc.get("groups") if isinstance(doc, Mapping) else None
    if not isinstance(groups, Mapping):
        raise BuiltinAPIError("builtin API table: no 'groups' mapping")
    out: dict[str, dict[str, frozenset[str]]] = {}
    for group, table in groups.items():
        if not isinstance(group, str) or not isinstance(table, Mapping):
            raise BuiltinAPIError(f"builtin API table: group {group!r} is not a mapping")
        out[group] = {}
        for resource, subs in table.items():
            if not isinstance(resource, str) or not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
                raise BuiltinAPIError(f"builtin API table: {group}/{resource!r} needs a list of subresources")
            out[group][resource] = frozenset(subs)
    return BuiltinAPI(out, str(doc.get("kubernetesVersion", "")))
