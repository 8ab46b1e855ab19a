"""kube-apiserver's flag set and Go's value parsers, as pflag applies them.

``webhook/data/kube-apiserver-flags-v1.37.json`` lists every flag of kube-apiserver v1.37 with
its pflag type and default.  It is generated, not written: ``tests/e2e/harness/cmd/flag-oracle``
builds the flag set exactly as ``cmd/kube-apiserver/app.NewAPIServerCommand`` does
(``options.NewServerRunOptions().Flags()``, verflag, globalflag) and dumps it
(``flag-oracle dump``).

The parsers below are ports of the Go functions pflag's values call (``strconv.ParseBool``,
``ParseInt``, ``ParseUint``, ``ParseFloat``, ``time.ParseDuration``, ``net.ParseIP``); each
raises :class:`ValueError` whose text is Go's error, so a refusal reads as kube-apiserver's:
``invalid argument "1e39" for "--audit-log-batch-throttle-qps" flag: strconv.ParseFloat:
parsing "1e39": value out of range``.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import struct
from functools import cache
from importlib import resources
from typing import Any

FLAGS_VERSION = (1, 37)
_DATA = "kube-apiserver-flags-v1.37.json"

_GO_BOOL = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}  # fmt: skip


@cache
def flag_table() -> dict[str, dict[str, Any]]:
    """Every kube-apiserver flag by name: ``{"type", "default", "noOptDefault", "shorthand"}``."""
    text = resources.files("webhook.data").joinpath(_DATA).read_text(encoding="utf-8")
    return {f["name"]: f for f in json.loads(text)}


def _syntax(fn: str, text: str) -> ValueError:
    return ValueError(f'strconv.{fn}: parsing "{text}": invalid syntax')


def _range(fn: str, text: str) -> ValueError:
    return ValueError(f'strconv.{fn}: parsing "{text}": value out of range')


def parse_bool(text: str) -> bool:
    """``strconv.ParseBool``."""
    if text not in _GO_BOOL:
        raise _syntax("ParseBool", text)
    return _GO_BOOL[text]


def _underscore_ok(s: str) -> bool:
    """strconv's ``underscoreOK``: ``_`` only between digits, or after a base prefix."""
    saw = "^"
    i = 0
    if s[:1] in ("-", "+"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def _parse_uint(fn: str, text: str, base: int, bits: int) -> int:
    """``strconv.ParseUint(text, base, bits)`` for base 0 or 10."""
    s = text
    if not s:
        raise _syntax(fn, text)
    base0 = base == 0
    if base0:
        base = 10
        if s[0] == "0":
            if len(s) >= 3 and s[1].lower() == "b":
                base, s = 2, s[2:]
            elif len(s) >= 3 and s[1].lower() == "o":
                base, s = 8, s[2:]
            elif len(s) >= 3 and s[1].lower() == "x":
                base, s = 16, s[2:]
            else:
                base, s = 8, s[1:]
    digits = "0123456789abcdef"[:base]
    n = 0
    underscores = False
    for c in s:
        if c == "_" and base0:
            underscores = True
            continue
        d = digits.find(c.lower()) if c.isascii() else -1
        if d < 0:
            raise _syntax(fn, text)
        n = n * base + d
    if underscores and not _underscore_ok(text):
        raise _syntax(fn, text)
    if n >= 1 << bits:
        raise _range(fn, text)
    return n


def parse_int(text: str, bits: int = 64, base: int = 0) -> int:
    """``strconv.ParseInt(text, base, bits)`` (pflag's int types use base 0)."""
    if not text:
        raise _syntax("ParseInt", text)
    neg = text[0] == "-"
    body = text[1:] if text[0] in "+-" else text
    try:
        n = _parse_uint("ParseInt", body, base, 64)
    except ValueError as exc:
        raise ValueError(str(exc).replace(f'"{body}"', f'"{text}"')) from None
    n = -n if neg else n
    if not -(1 << (bits - 1)) <= n < 1 << (bits - 1):
        raise _range("ParseInt", text)
    return n


def parse_uint(text: str, bits: int = 64) -> int:
    return _parse_uint("ParseUint", text, 0, bits)


_DEC_FLOAT = re.compile(r"[-+]?([0-9_]+\.?[0-9_]*|\.[0-9_]+)([eE][-+]?[0-9_]+)?", re.ASCII)
_HEX_FLOAT = re.compile(r"[-+]?0[xX]([0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+)[pP][-+]?[0-9_]+", re.ASCII)
_SPECIAL_FLOAT = re.compile(r"[-+]?(inf|infinity|nan)", re.ASCII | re.IGNORECASE)


def parse_float(text: str, bits: int = 64) -> float:
    """``strconv.ParseFloat(text, bits)``: decimal and hex (``p`` exponent required) floats,
    ``inf``/``infinity``/``nan``, ``_`` between digits; out of range is an error."""
    if _SPECIAL_FLOAT.fullmatch(text):
        return float(text)
    if _DEC_FLOAT.fullmatch(text):
        if not any(c.isdigit() for c in text.split("e")[0].split("E")[0]):
            raise _syntax("ParseFloat", text)
        plain = text.replace("_", "")
        if "_" in text and not _underscore_ok(text):
            raise _syntax("ParseFloat", text)
        value = float(plain)
    elif _HEX_FLOAT.fullmatch(text):
        if "_" in text and not _underscore_ok(text):
            raise _syntax("ParseFloat", text)
        plain = text.replace("_", "")
        mantissa, _, exp = plain.partition("p") if "p" in plain else plain.partition("P")
        if not any(c in "0123456789abcdefABCDEF" for c in mantissa.lstrip("+-")[2:]):
            raise _syntax("ParseFloat", text)
        try:
            value = float.fromhex(f"{mantissa}p{int(exp)}")
        except OverflowError:
            raise _range("ParseFloat", text) from None
    else:
        raise _syntax("ParseFloat", text)
    if math.isinf(value) or (bits == 32 and _float32_overflows(value)):
        raise _range("ParseFloat", text)
    return value


def _float32_overflows(value: float) -> bool:
    try:
        struct.pack("f", value)
    except OverflowError:
        return True
    return math.isinf(struct.unpack("f", struct.pack("f", value))[0])


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}  # fmt: skip
_DURATION_PART = re.compile(r"([0-9]*)(\.[0-9]*)?([^0-9.]*)")


def parse_duration(text: str) -> int:
    """``time.ParseDuration``: nanoseconds; errors as Go's (``time: invalid duration "x"``)."""
    err = ValueError(f'time: invalid duration "{text}"')
    s, neg = text, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise err
    total = 0
    while s:
        m = _DURATION_PART.match(s)
        assert m is not None
        whole, frac, unit = m.group(1), m.group(2) or "", m.group(3)
        if not whole and len(frac) <= 1:
            raise err
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        scale = _UNITS[unit]
        v = int(whole or "0")
        if v > (1 << 63) // scale:
            raise err
        part = v * scale
        if len(frac) > 1:
            part += int(frac[1:]) * scale // 10 ** (len(frac) - 1)
        total += part
        if total > 1 << 63:
            raise err
        s = s[m.end():]
    if total > (1 << 63) - 1 and not neg:
        raise err
    return -total if neg else total


def parse_ip(text: str) -> None:
    """``net.ParseIP``: dotted IPv4 (no leading zeros) or IPv6, no zone."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"failed to parse IP: {text!r}") from None
    if "%" in text:
        raise ValueError(f"failed to parse IP: {text!r}")


def read_csv_record(text: str) -> list[str]:
    """``encoding/csv`` ``Reader.Read`` of one line (pflag's slice flags split their value so)."""
    fields: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            j, buf = i + 1, []
            while True:
                k = text.find('"', j)
                if k < 0:
                    raise ValueError(f'parse error on line 1, column {n + 1}: extraneous or missing " in quoted-field')
                buf.append(text[j:k])
                if text[k + 1 : k + 2] == '"':
                    buf.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            if i < n and text[i] != ",":
                raise ValueError(f'parse error on line 1, column {i + 1}: extraneous or missing " in quoted-field')
            fields.append("".join(buf))
        else:
            k = text.find(",", i)
            field = text[i:] if k < 0 else text[i:k]
            if '"' in field:
                col = i + field.index('"') + 1
                raise ValueError(f'parse error on line 1, column {col}: bare " in non-quoted-field')
            fields.append(field)
            i = n if k < 0 else k
        if i >= n:
            return fields
        i += 1  # the comma


def check_value(kind: str, text: str) -> None:
    """Raise pflag's error text (after ``flag: ``) when ``Set(text)`` fails for a flag of ``kind``."""
    if kind == "bool":
        parse_bool(text)
    elif kind in ("int", "int64"):
        parse_int(text, 64)
    elif kind == "int32":
        parse_int(text, 32)
    elif kind in ("uint", "uint64"):
        parse_uint(text, 64)
    elif kind == "uint32":
        parse_uint(text, 32)
    elif kind == "float32":
        parse_float(text, 32)
    elif kind == "float64":
        parse_float(text, 64)
    elif kind == "duration":
        parse_duration(text)
    elif kind == "ip":
        parse_ip(text)
    elif kind == "Level":  # klog's -v: strconv.ParseUint(value, 10, 32)
        _parse_uint("ParseUint", text, 10, 32)
    elif kind in ("stringSlice", "int32Slice") and text:
        items = read_csv_record(text)
        if kind == "int32Slice":
            for item in items:
                parse_int(item, 32)
    elif kind == "stringToString":
        if "=" not in text:
            raise ValueError(f"{text} must be formatted as key=value")
        for pair in [text.strip('"')] if text.count("=") == 1 else read_csv_record(text):
            if "=" not in pair:
                raise ValueError(f"{pair} must be formatted as key=value")
