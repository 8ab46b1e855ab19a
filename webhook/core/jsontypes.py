"""The name of a decoded JSON/YAML value's type, as error messages give it.

:func:`json_type` gives Go's ``encoding/json`` names (``cannot unmarshal bool into …``), so
that messages of ports of upstream decoding read as upstream's; :func:`described` gives the
same type with an article for a sentence (``got an array``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["described", "json_type"]

_ARTICLES = {"null": "null", "bool": "a boolean", "number": "a number", "string": "a string", "array": "an array",
             "object": "an object"}  # fmt: skip
# The same in YAML's words, for YAML files people write (the service's configuration).
_YAML_ARTICLES = {**_ARTICLES, "array": "a list", "object": "a mapping"}


def json_type(value: Any) -> str:
    """``null``, ``bool``, ``number``, ``string``, ``array`` or ``object``; else the Python type's name
    (YAML can decode timestamps and binary values, which JSON has no name for)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def described(value: Any, *, yaml: bool = False) -> str:
    """The type for a sentence: ``null``, ``a boolean``, ``a number``, ``a string``, ``an array``, ``an object``
    — with ``yaml``: ``an integer`` or ``a number``, ``a list``, ``a mapping``."""
    name = json_type(value)
    if yaml and name == "number" and isinstance(value, int):
        return "an integer"
    return (_YAML_ARTICLES if yaml else _ARTICLES).get(name, name)
