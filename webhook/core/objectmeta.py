"""The JSON types of ``metav1.ObjectMeta`` (k8s.io/apimachinery ``pkg/apis/meta/v1/types.go``).

kube-apiserver decodes a policy's ``metadata`` into ``ObjectMeta`` with Go's JSON rules, so a
value of the wrong type there is a fatal decoding error ("failed decoding"), not an ignored
field: ``creationTimestamp: notatime`` (``metav1.Time.UnmarshalJSON`` parses RFC 3339),
``ownerReferences: [{uid: 1}]``, ``generation: 1.5``.  Unknown fields inside are only strict
errors, which the loader's lenient fallback drops.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from webhook.core.jsontypes import json_type

MAX_INT64 = 2**63 - 1

# Field → kind ("string", "int64", "time", "bool", "map", "strings", "any") or a nested struct
# (decoded from a list of objects).
OWNER_REFERENCE: Mapping[str, Any] = {
    "apiVersion": "string", "kind": "string", "name": "string", "uid": "string",
    "controller": "bool", "blockOwnerDeletion": "bool",
}  # fmt: skip
MANAGED_FIELDS_ENTRY: Mapping[str, Any] = {
    "manager": "string", "operation": "string", "apiVersion": "string", "time": "time",
    "fieldsType": "string", "fieldsV1": "any", "subresource": "string",
}  # fmt: skip
OBJECT_META: Mapping[str, Any] = {
    "name": "string", "generateName": "string", "namespace": "string", "selfLink": "string",
    "uid": "string", "resourceVersion": "string", "generation": "int64",
    "creationTimestamp": "time", "deletionTimestamp": "time", "deletionGracePeriodSeconds": "int64",
    "labels": "map", "annotations": "map", "ownerReferences": OWNER_REFERENCE,
    "finalizers": "strings", "managedFields": MANAGED_FIELDS_ENTRY,
}  # fmt: skip

RFC3339 = "2006-01-02T15:04:05Z07:00"
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,]\d+)?(?:Z|[-+](\d{2}):(\d{2}))\Z", re.ASCII
)


class JSONFloat(float):
    """A number written with a fraction or exponent in JSON text (Go will not put it in an int)."""


def valid_date_time(year: str, month: str, day: str, hour: str | None, minute: str | None,
                    second: str | None) -> bool:
    """A real calendar date, and a clock time within Go's ranges (hour < 24, minute and second < 60)."""
    try:
        datetime.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return hour is None or (int(hour) <= 23 and int(minute or 0) <= 59 and int(second or 0) <= 59)


def parse_rfc3339(text: str) -> bool:
    """``time.Parse(time.RFC3339, text)`` succeeds (Go 1.20+'s strict RFC 3339 ranges)."""
    m = _RFC3339.match(text)
    if m is None:
        return False
    year, month, day, hour, minute, second, off_h, off_m = m.groups()
    if not valid_date_time(year, month, day, hour, minute, second):
        return False
    return off_h is None or (int(off_h) < 24 and int(off_m) < 60)


def _int64(value: Any) -> bool:
    """Go's encoding/json puts a number in an int64 only if its JSON text is an integer literal.

    A float from YAML is written by json.Marshal without fraction or exponent when integral
    and below 1e21; one from JSON text is kept as written (:class:`JSONFloat`).
    """
    if isinstance(value, JSONFloat):
        return False
    if isinstance(value, float):
        return value.is_integer() and abs(value) < 1e21 and -MAX_INT64 - 1 <= value <= MAX_INT64
    return bool(-MAX_INT64 - 1 <= value <= MAX_INT64)


def check(kind: str, value: Any) -> str | None:
    """Why ``value`` (not None) cannot be decoded as ``kind``; None when it can."""
    got = json_type(value)
    if kind == "any":
        return None
    if kind == "string" or kind == "bool":
        want = kind
        return None if got == want else f"cannot unmarshal {got} into Go value of type {want}"
    if kind == "int64":
        if got != "number":
            return f"cannot unmarshal {got} into Go value of type int64"
        return None if _int64(value) else f"cannot unmarshal number {value} into Go value of type int64"
    if kind == "time":
        if got != "string":
            return f"cannot unmarshal {got} into Go value of type string"
        return None if parse_rfc3339(value) else f'parsing time "{value}" as "{RFC3339}": cannot parse'
    if kind == "strings":
        if got != "array":
            return f"cannot unmarshal {got} into Go value of type []string"
        bad = next((v for v in value if v is not None and not isinstance(v, str)), None)
        return None if bad is None else f"cannot unmarshal {json_type(bad)} into Go value of type string"
    if kind == "map":
        if not isinstance(value, Mapping):
            return f"cannot unmarshal {got} into Go value of type map[string]string"
        bad = next((v for v in value.values() if v is not None and not isinstance(v, str)), None)
        return None if bad is None else f"cannot unmarshal {json_type(bad)} into Go value of type string"
    raise AssertionError(kind)
