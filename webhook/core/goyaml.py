"""Plain scalars resolved as go-yaml v2 resolves them, and its YAML→JSON conversion.

Kubernetes reads every YAML file it is given (the audit policy, a static Pod manifest, a
kubeadm configuration, a ``kubectl apply``) with ``sigs.k8s.io/yaml``, whose YAML half is a
fork of go-yaml v2 (``go.yaml.in/yaml/v2``).  That library follows neither YAML 1.1 (which
PyYAML implements) nor YAML 1.2:

* booleans are ``y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|
  off|Off|OFF`` — ``y`` and ``n`` included, which PyYAML reads as strings;
* integers are whatever Go's ``strconv.ParseInt(s, 0, 64)`` (then ``ParseUint``) accepts
  once every ``_`` is removed: ``0x1F``, ``0o17``, ``0b101``, ``017`` (octal), ``+5``;
* floats are ``[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`` — so ``1e3``,
  ``08`` and ``+.5`` are numbers — and ``.inf``/``.nan`` in their three spellings;
* there are no sexagesimal numbers (``1:20`` is a string) and no ``=`` value tag;
* a timestamp stays the string it was written as (``decode.go``: "for backward
  compatibility reasons we set it as a string").

This module is a line-by-line port of ``resolve.go`` (``resolve``, ``parseTimestamp``) and of
the key conversion in ``sigs.k8s.io/yaml``'s ``convertToJSONableObject``.  The parser stays
libyaml (go-yaml v2 is a Go port of libyaml); only the resolution of scalars is replaced.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

from webhook.core.objectmeta import valid_date_time

STR_TAG = "tag:yaml.org,2002:str"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
NULL_TAG = "tag:yaml.org,2002:null"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
BINARY_TAG = "tag:yaml.org,2002:binary"
MERGE_TAG = "tag:yaml.org,2002:merge"

_LONG_TAG_PREFIX = "tag:yaml.org,2002:"

MAX_INT64 = 2**63 - 1
MAX_UINT64 = 2**64 - 1


class GoYAMLError(ValueError):
    """go-yaml (or sigs.k8s.io/yaml) refuses the document; ``str()`` is its message."""


# resolve.go init(): the first byte's hint and the table of words.
_HINT = {"+": "S", "-": "S", ".": "."}
_HINT.update(dict.fromkeys("0123456789", "D"))
_HINT.update(dict.fromkeys("yYnNtTfFoO~", "M"))

HINT_CHARS = frozenset(_HINT)

_RESOLVE_MAP: dict[str, tuple[str, Any]] = {}
for _value, _tag, _words in (
    (True, BOOL_TAG, ("y", "Y", "yes", "Yes", "YES")),
    (True, BOOL_TAG, ("true", "True", "TRUE")),
    (True, BOOL_TAG, ("on", "On", "ON")),
    (False, BOOL_TAG, ("n", "N", "no", "No", "NO")),
    (False, BOOL_TAG, ("false", "False", "FALSE")),
    (False, BOOL_TAG, ("off", "Off", "OFF")),
    (None, NULL_TAG, ("", "~", "null", "Null", "NULL")),
    (math.nan, FLOAT_TAG, (".nan", ".NaN", ".NAN")),
    (math.inf, FLOAT_TAG, (".inf", ".Inf", ".INF")),
    (math.inf, FLOAT_TAG, ("+.inf", "+.Inf", "+.INF")),
    (-math.inf, FLOAT_TAG, ("-.inf", "-.Inf", "-.INF")),
    ("<<", MERGE_TAG, ("<<",)),
):
    for _word in _words:
        _RESOLVE_MAP[_word] = (_tag, _value)

_RESOLVABLE = frozenset({"", STR_TAG, BOOL_TAG, INT_TAG, FLOAT_TAG, NULL_TAG, TIMESTAMP_TAG})

# resolve.go yamlStyleFloat (ASCII digits only, as Go's regexp [0-9]).
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
# strconv.ParseFloat's decimal syntax for an input that starts with "." (no sign, no prefix);
# underscores may stand between digits, as in Go literals (strconv's underscoreOK).
_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?\Z")
_DIGITS = {2: re.compile(r"[01]+\Z"), 8: re.compile(r"[0-7]+\Z"), 10: re.compile(r"[0-9]+\Z"),
           16: re.compile(r"[0-9a-fA-F]+\Z")}  # fmt: skip


def short_tag(tag: str) -> str:
    return "!!" + tag[len(_LONG_TAG_PREFIX):] if tag.startswith(_LONG_TAG_PREFIX) else tag


def parse_uint(s: str) -> int | None:
    """``strconv.ParseUint(s, 0, 64)`` (underscores already removed); None on any error."""
    if not s:
        return None
    base = 10
    if s[0] == "0":
        prefix = s[1:2].lower()
        if len(s) >= 3 and prefix == "b":
            base, s = 2, s[2:]
        elif len(s) >= 3 and prefix == "o":
            base, s = 8, s[2:]
        elif len(s) >= 3 and prefix == "x":
            base, s = 16, s[2:]
        else:
            base, s = 8, s[1:]
            if not s:
                return 0
    if not _DIGITS[base].match(s):
        return None
    n = int(s, base)
    return n if n <= MAX_UINT64 else None


def parse_int(s: str, base: int = 0) -> int | None:
    """``strconv.ParseInt(s, base, 64)`` for base 0 or 2; None on any error."""
    if not s:
        return None
    neg = s[0] == "-"
    body = s[1:] if s[0] in "+-" else s
    if base == 0:
        n = parse_uint(body)
    else:
        n = int(body, base) if body and _DIGITS[base].match(body) else None
    if n is None:
        return None
    n = -n if neg else n
    return n if -MAX_INT64 - 1 <= n <= MAX_INT64 else None


def parse_float(s: str) -> float | None:
    """``strconv.ParseFloat(s, 64)`` for the decimal syntax callers pre-check; None on range error."""
    f = float(s)
    return None if math.isinf(f) else f


# resolve.go allowedTimestampFormats, as regular expressions over Go's time.Parse layouts:
# "2006-1-2T15:4:5.999999999Z07:00", the same with "t", "2006-1-2 15:4:5.999999999", "2006-1-2".
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt])(?P<H>[0-9]{1,2}):(?P<M>[0-9]{1,2}):(?P<S>[0-9]{1,2})(?:\.[0-9]{1,9})?"
    r"(?:Z|[-+][0-9]{2}:[0-9]{2})"
    r"| (?P<H2>[0-9]{1,2}):(?P<M2>[0-9]{1,2}):(?P<S2>[0-9]{1,2})(?:\.[0-9]{1,9})?)?\Z"
)


def parse_timestamp(s: str) -> bool:
    """resolve.go parseTimestamp: does ``s`` parse in one of go-yaml's timestamp layouts?"""
    m = _TIMESTAMP.match(s)
    if m is None:
        return False
    hour, minute, second = m.group("H") or m.group("H2"), m.group("M") or m.group("M2"), m.group("S") or m.group("S2")
    return valid_date_time(m.group("y"), m.group("m"), m.group("d"), hour, minute, second)


def resolve(tag: str, value: str) -> tuple[str, Any]:
    """resolve.go ``resolve``: the tag and Go value of a scalar; raises :class:`GoYAMLError`.

    ``tag`` is ``""`` for a plain scalar without a tag, else its explicit (long) tag.
    """
    if tag not in _RESOLVABLE:
        return tag, value
    rtag, out = _resolve(tag, value)
    if tag in ("", rtag, STR_TAG, BINARY_TAG):
        return rtag, out
    if tag == FLOAT_TAG and rtag == INT_TAG:
        return FLOAT_TAG, float(out)
    raise GoYAMLError(f"yaml: cannot decode {short_tag(rtag)} `{value}` as a {short_tag(tag)}")


def _resolve(tag: str, value: str) -> tuple[str, Any]:
    hint = _HINT.get(value[0]) if value else "N"
    if hint is None or tag == STR_TAG:
        return STR_TAG, value
    item = _RESOLVE_MAP.get(value)
    if item is not None:
        return item
    if hint == ".":
        if _DOT_FLOAT.match(value):
            f = parse_float(value.replace("_", ""))
            if f is not None:
                return FLOAT_TAG, f
    elif hint in "DS":
        if tag in ("", TIMESTAMP_TAG) and value[:4].isascii() and parse_timestamp(value):
            return TIMESTAMP_TAG, value  # a string after decoding into interface{}
        plain = value.replace("_", "")
        n = parse_int(plain)
        if n is not None:
            return INT_TAG, n
        n = parse_uint(plain)
        if n is not None:
            return INT_TAG, n
        if _YAML_STYLE_FLOAT.match(plain):
            f = parse_float(plain)
            if f is not None:
                return FLOAT_TAG, f
        if plain.startswith("0b"):
            n = parse_int(plain[2:], 2)
            if n is None:
                u = plain[2:]
                n = int(u, 2) if u and _DIGITS[2].match(u) and int(u, 2) <= MAX_UINT64 else None
            if n is not None:
                return INT_TAG, n
        elif plain.startswith("-0b"):
            n = parse_int("-" + plain[3:], 2)
            if n is not None:
                return INT_TAG, n
    return STR_TAG, value


def _format_float32_g(f: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'g', -1, 32)``: shortest digits that round-trip as float32."""
    try:
        f32 = struct.unpack("f", struct.pack("f", f))[0]
    except OverflowError:  # beyond float32: Go's conversion gives ±Inf
        f32 = math.copysign(math.inf, f)
    if math.isinf(f32):
        return ".inf" if f32 > 0 else "-.inf"  # "+Inf"/"-Inf", renamed by convertToJSONableObject
    if f32 == 0:
        return "-0" if math.copysign(1, f32) < 0 else "0"
    for precision in range(0, 17):
        text = f"{abs(f32):.{precision}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == abs(f32):
            break
    mantissa, exp_text = text.split("e")
    digits, exp = mantissa.replace(".", "").rstrip("0") or "0", int(exp_text)
    sign = "-" if f32 < 0 else ""
    if exp < -4 or exp >= 6:  # ftoa.go: shortest %g switches to %e from exponent 6
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{head}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    whole, frac = digits[: exp + 1].ljust(exp + 1, "0"), digits[exp + 1 :]
    return f"{sign}{whole}" + (f".{frac}" if frac else "")


def json_key(key: Any) -> str:
    """sigs.k8s.io/yaml convertToJSONableObject: a mapping key as the JSON object key it becomes."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        if key > MAX_INT64:
            raise GoYAMLError(f"unsupported map key of type: uint64, key: 0x{key:x}")
        return str(key)
    if isinstance(key, float):
        if math.isnan(key):
            return ".nan"
        if math.isinf(key):
            return ".inf" if key > 0 else "-.inf"
        return _format_float32_g(key)
    raise GoYAMLError(f"unsupported map key of type: {_go_type(key)}")


_GO_TYPES = ((list, "[]interface {}"), (dict, "map[interface {}]interface {}"))


def _go_type(value: Any) -> str:
    """fmt's %T of a decoded value, as go-yaml's key error names it."""
    if value is None:
        return "<nil>"
    return next((name for t, name in _GO_TYPES if isinstance(value, t)), type(value).__name__)
