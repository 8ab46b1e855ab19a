"""kube-apiserver's flag set and Go's value parsers, as pflag applies them.

``webhook/data/kube-apiserver-flags-v1.MINOR.json`` lists every flag of one kube-apiserver
minor release with its pflag type and default, and where it comes from (``kubernetes``: the
``k8s.io/kubernetes`` module version and its go.sum ``h1:`` checksum).  The tables are generated,
not written: ``tests/e2e/harness/cmd/flag-oracle`` builds the flag set exactly as
``cmd/kube-apiserver/app.NewAPIServerCommand`` does (``options.NewServerRunOptions().Flags()``,
verflag, globalflag), once per release (``tests/e2e/build.sh flag-oracle``), and
``scripts/gen_flag_tables.py`` writes each one's ``flag-oracle dump``.

A command line is judged with the table of the *target* release (:func:`table_version`): its
own when auditwarden has it; for an older target, the oldest table it has, and an unknown flag
is then only a warning (``apiserver.analyse_flags``), since that release may still have it.

The parsers below are ports of the Go functions pflag's values call (``strconv.ParseBool``,
``ParseInt``, ``ParseUint``, ``ParseFloat``, ``time.ParseDuration``, ``net.ParseIP``) and of the
``Set`` methods of the Kubernetes value types (component-base ``cli/flag``, apimachinery's
``PortRange`` and ``Quantity``, the logging ``vmodule``, verflag's ``--version``); each raises
:class:`ValueError` whose text is Go's error, so a refusal reads as kube-apiserver's:
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

from webhook.core.versions import NEWEST, KubeVersion

_TABLE_NAME = re.compile(r"kube-apiserver-flags-v1\.(\d+)\.json")

_GO_BOOL = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}  # fmt: skip


@cache
def known_versions() -> tuple[KubeVersion, ...]:
    """The releases auditwarden has a flag table of, oldest first."""
    found = [_TABLE_NAME.fullmatch(f.name) for f in resources.files("webhook.data").iterdir()]
    return tuple(sorted((1, int(m.group(1))) for m in found if m))


def table_version(target: KubeVersion = NEWEST) -> KubeVersion:
    """The release whose flag table judges a command line for ``target``: its own, else the
    nearest one auditwarden has (the oldest for an older target, the newest for a newer one)."""
    known = known_versions()
    if target in known:
        return target
    older = [v for v in known if v < target]
    return older[-1] if older else known[0]


@cache
def _load(version: KubeVersion) -> dict[str, Any]:
    name = f"kube-apiserver-flags-v{version[0]}.{version[1]}.json"
    data: dict[str, Any] = json.loads(resources.files("webhook.data").joinpath(name).read_text(encoding="utf-8"))
    return data


def provenance(version: KubeVersion = NEWEST) -> dict[str, str]:
    """Where the table of ``version`` comes from: ``{"module", "version", "sum"}`` (go.sum's h1:)."""
    return dict(_load(table_version(version))["kubernetes"])


@cache
def flag_table(version: KubeVersion = NEWEST) -> dict[str, dict[str, Any]]:
    """Every flag of kube-apiserver ``version`` (:func:`table_version`) by name:
    ``{"type", "default", "noOptDefault", "shorthand"}``."""
    return {f["name"]: f for f in _load(table_version(version))["flags"]}


def _syntax(fn: str, text: str) -> ValueError:
    return ValueError(f"strconv.{fn}: parsing {go_quote(text)}: invalid syntax")


def _range(fn: str, text: str) -> ValueError:
    return ValueError(f"strconv.{fn}: parsing {go_quote(text)}: value out of range")


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
        raise ValueError(str(exc).replace(go_quote(body), go_quote(text))) from None
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


def _time_quote(text: str) -> str:
    """The time package's own ``quote`` (time/format.go): ``\\xNN`` for each UTF-8 byte of a
    control or non-ASCII character, ``\\`` before ``"`` and ``\\``."""
    out = []
    for c in text:
        if c < " " or c >= "\x80":
            out.append("".join(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogatepass")))
        else:
            out.append("\\" + c if c in '"\\' else c)
    return '"' + "".join(out) + '"'


def parse_duration(text: str) -> int:
    """``time.ParseDuration``: nanoseconds; errors as Go's (``time: invalid duration "x"``)."""
    err = ValueError(f"time: invalid duration {_time_quote(text)}")
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
            raise ValueError(f"time: missing unit in duration {_time_quote(text)}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {_time_quote(unit)} in duration {_time_quote(text)}")
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
    """pflag ``ip.go`` ``(*ipValue).Set``: empty is no address; else ``net.ParseIP`` of the
    trimmed text — dotted IPv4 (no leading zeros) or IPv6, no zone."""
    if text == "":
        return
    address = _go_trim_space(text)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"failed to parse IP: {go_quote(text)}") from None
    if "%" in address:
        raise ValueError(f"failed to parse IP: {go_quote(text)}")


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
            if i < n and text[i] != ",":  # Go reports the column of the closing quote
                raise ValueError(f'parse error on line 1, column {i}: extraneous or missing " in quoted-field')
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


def parse_atoi(text: str) -> int:
    """``strconv.Atoi``: base 10, a sign, no prefix or ``_``; ``int`` is 64 bits."""
    try:
        return parse_int(text, 64, base=10)
    except ValueError as exc:
        raise ValueError(str(exc).replace("strconv.ParseInt", "strconv.Atoi")) from None


def _wrap64(n: int) -> int:
    return (n + (1 << 63)) % (1 << 64) - (1 << 63)


def check_port_range(text: str) -> None:
    """apimachinery ``util/net/port_range.go`` ``(*PortRange).Set``: ``N``, ``LOW-HIGH`` or
    ``BASE+OFFSET`` (Go ints, so the sum wraps), at most 65535, high not below low."""
    value = _go_trim_space(text)
    if value == "":
        return
    hyphen, plus = value.find("-"), value.find("+")
    if hyphen == -1 and plus == -1:
        low = high = parse_atoi(value)
    elif plus == -1:
        low, high = parse_atoi(value[:hyphen]), parse_atoi(value[hyphen + 1 :])
    elif hyphen == -1:
        low = parse_atoi(value[:plus])
        high = _wrap64(low + parse_atoi(value[plus + 1 :]))
    else:
        raise ValueError(f"unable to parse port range: {value}")
    if low > 65535 or high > 65535:
        raise ValueError(f"the port range cannot be greater than 65535: {value}")
    if high < low:
        raise ValueError(f"end port cannot be less than start port: {value}")


_QUANTITY_FORMAT = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


def check_quantity(text: str) -> None:
    """apimachinery ``api/resource/quantity.go`` ``ParseQuantity`` (``QuantityValue.Set``):
    ``parseQuantityString``, the suffix (``suffix.go`` ``interpret``: decimal SI, binary SI or
    an ``e``/``E`` exponent read with ``ParseInt`` and cut to int32), and the numeric part,
    which fails (``unable to parse numeric part``) only when it has no digit and does not fit
    the int64 fast path."""
    if text == "":
        raise ValueError(_QUANTITY_FORMAT)
    if text == "0":
        return
    end, pos = len(text), 0
    if text[0] in "+-":
        pos = 1
    while pos < end and text[pos] == "0":  # leading zeros
        pos += 1
    if pos >= end:
        return
    start = pos
    while pos < end and "0" <= text[pos] <= "9":
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and "0" <= text[pos] <= "9":
            pos += 1
        denom = text[start:pos]
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in "eEinumkKMGTP":
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and "0" <= text[pos] <= "9":
        pos += 1
    if pos < end:
        raise ValueError(_QUANTITY_FORMAT)
    suffix = text[suffix_start:]
    binary = False
    if suffix in _DECIMAL_SUFFIXES:
        exponent = _DECIMAL_SUFFIXES[suffix]
    elif suffix in _BINARY_SUFFIXES:
        exponent, binary = _BINARY_SUFFIXES[suffix], True
    elif len(suffix) > 1 and suffix[0] in "eE":
        try:
            exponent = parse_int(suffix[1:], 64, base=10)
        except ValueError:
            raise ValueError("unable to parse quantity's suffix") from None
        exponent = (exponent + (1 << 31)) % (1 << 32) - (1 << 31)  # int32(parsed)
    else:
        raise ValueError("unable to parse quantity's suffix")
    if any(c.isdigit() for c in value):
        return  # inf.Dec reads any run of digits; only a value with none fails
    # A value with no digit (a sign, a dot) is 0 on the int64 fast path, an error off it.
    if binary:
        # int32(float32(exponent)*3/10) is exact for the exponents 10..60
        fast = 15 - len(num) - exponent * 3 // 10 - 1 >= 0 and denom == ""
    else:
        fast = 18 - len(num) - len(denom) >= 0 and exponent - len(denom) >= -9
    if not fast:
        raise ValueError("unable to parse numeric part of quantity")


def check_vmodule(text: str) -> None:
    """component-base ``logs/api/v1/pflags.go`` ``vmoduleConfigurationPFlag.Set``: comma-separated
    ``pattern=N``, N read with ``ParseUint(N, 10, 31)``."""
    for pat in text.split(","):
        if not pat:
            continue
        parts = pat.split("=")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(f"{go_quote(pat)} does not have the pattern=N format")
        try:
            _parse_uint("ParseUint", parts[1], 10, 31)
        except ValueError as exc:
            raise ValueError(f"parsing verbosity in {go_quote(pat)}: {exc}") from None


def go_quote(text: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``), as pflag quotes a value in its errors."""
    out = []
    for c in text:
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif " " <= c <= "~" or (c > "\x7f" and c.isprintable()):
            out.append(c)
        elif c in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[c])
        elif ord(c) < 0x10000:
            out.append(f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def _go_trim_space(text: str) -> str:
    """``strings.TrimSpace``: Unicode White_Space at both ends."""
    return text.strip(_GO_SPACE)


_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def check_map_string_string(text: str, *, no_split: bool = False) -> None:
    """component-base ``cli/flag/map_string_string.go`` ``(*MapStringString).Set``: ``k=v`` pairs
    split at ``,`` (one pair when ``NoSplit``), each needing an ``=``."""
    for pair in [text] if no_split else [p for p in text.split(",") if p]:
        if "=" not in pair:
            raise ValueError("malformed pair, expect string=string")


def check_map_string_bool(text: str) -> None:
    """component-base ``cli/flag/map_string_bool.go`` ``(*MapStringBool).Set``: ``k=bool`` pairs."""
    for pair in (p for p in text.split(",") if p):
        key, eq, value = pair.partition("=")
        if not eq:
            raise ValueError("malformed pair, expect string=bool")
        key, value = _go_trim_space(key), _go_trim_space(value)
        try:
            parse_bool(value)
        except ValueError as exc:
            raise ValueError(f"invalid value of {key}: {value}, err: {exc}") from None


def check_colon_multimap(text: str, *, allow_default_empty_key: bool = False) -> None:
    """component-base ``cli/flag/colon_separated_multimap_string_string.go``: ``k:v`` pairs split
    at ``,``; with ``AllowDefaultEmptyKey`` (``--feature-gates`` of the component registry,
    ``compatibility/registry.go``) a pair without ``:`` is the default component's."""
    if allow_default_empty_key:
        return
    for pair in (p for p in text.split(",") if p):
        if ":" not in pair:
            raise ValueError("malformed pair, expect string:string")


def check_named_cert_key(text: str) -> None:
    """component-base ``cli/flag/namedcertkey_flag.go`` ``(*NamedCertKey).Set``:
    ``cert,key[:name,...]``."""
    keycert, colon, names = text.partition(":")
    if colon and _go_trim_space(names) == "":
        raise ValueError("empty names list is not allowed")
    if len(_go_trim_space(keycert).split(",")) != 2:
        raise ValueError("expected comma separated certificate and key file paths")


_VERSION_MATCH = re.compile(r"[\t\n\f\r ]*v?([0-9]+(?:\.[0-9]+)*)(.*)", re.ASCII)
_EXTRA_MATCH = re.compile(
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?[\t\n\f\r ]*", re.ASCII
)


def parse_semantic(text: str) -> tuple[int, int, int]:
    """apimachinery ``util/version/version.go`` ``ParseSemantic``: major, minor, patch."""
    m = _VERSION_MATCH.fullmatch(text)
    if m is None or "\n" in m.group(2):  # Go's "." does not match a newline
        raise ValueError(f"could not parse {go_quote(text)} as version")
    numbers, extra = m.group(1), m.group(2)
    components = numbers.split(".")
    if len(components) != 3:
        raise ValueError(f"illegal version string {go_quote(text)}")
    out = []
    for comp in components:
        if comp.startswith("0") and comp != "0":
            raise ValueError(f"illegal zero-prefixed version component {go_quote(comp)} in {go_quote(text)}")
        try:
            out.append(_parse_uint("ParseUint", comp, 10, 64))
        except ValueError as exc:
            raise ValueError(
                f"illegal non-numeric version component {go_quote(comp)} in {go_quote(text)}: {exc}"
            ) from None
    if extra:
        e = _EXTRA_MATCH.fullmatch(extra)
        if e is None:
            raise ValueError(f"could not parse pre-release/metadata ({extra}) in version {go_quote(text)}")
        for comp in (e.group(1) or "").split("."):
            if comp.isascii() and comp.isdigit() and comp.startswith("0") and comp != "0":
                try:
                    _parse_uint("ParseUint", comp, 10, 64)
                except ValueError:
                    continue
                raise ValueError(f"illegal zero-prefixed version component {go_quote(comp)} in {go_quote(text)}")
    return out[0], out[1], out[2]


def check_version_flag(text: str, binary: str) -> None:
    """component-base ``version/verflag/verflag.go`` ``(*versionValue).Set``: ``raw``, a Go bool,
    or ``vX.Y.Z...``, which ``version/dynamic.go`` ``SetDynamicVersion`` takes only when it is
    the binary's own version (``binary``, e.g. ``v1.37.2``) or a semantic version with its
    major, minor and patch."""
    if text == "raw":
        return
    if text.startswith("v"):
        if text == binary or not binary:  # no binary version known: not judged
            return
        runtime = parse_semantic(text)
        default = parse_semantic(binary)
        if runtime != default:
            raise ValueError(
                f"version {go_quote(text)} must match major/minor/patch of default version {go_quote(binary)}"
            )
        return
    parse_bool(text)


# Flags whose Value type shares a Type() name with another but sets differently.
_SET_BY_FLAG = {
    "runtime-config": "configurationMap",  # cli/flag/configuration_map.go: never fails
    "oidc-required-claim": "mapStringStringNoSplit",  # NewMapStringStringNoSplit
}


def check_value(kind: str, text: str, flag: str = "", binary: str = "") -> None:
    """Raise pflag's error text (after ``flag: ``) when ``Set(text)`` fails for a flag of ``kind``
    (``flag``: its name, for the types that set differently per flag; ``binary``: the
    kube-apiserver version, e.g. ``v1.37.2``, for ``--version``)."""
    kind = _SET_BY_FLAG.get(flag, kind)
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
    elif kind == "Level":  # logs/api/v1/pflags.go verbosityLevelPflag: strconv.ParseUint(value, 10, 31)
        _parse_uint("ParseUint", text, 10, 31)
    elif kind == "stringSlice" and text:  # pflag string_slice.go: one CSV record
        read_csv_record(text)
    elif kind == "int32Slice":  # pflag int32_slice.go: strings.Split at ",", ParseInt(d, 0, 32) each
        for item in text.split(","):
            parse_int(item, 32)
    elif kind == "stringToString":
        if "=" not in text:
            raise ValueError(f"{text} must be formatted as key=value")
        for pair in [text.strip('"')] if text.count("=") == 1 else read_csv_record(text):
            if "=" not in pair:
                raise ValueError(f"{pair} must be formatted as key=value")
    elif kind in ("mapStringString", "mapStringStringNoSplit"):
        check_map_string_string(text, no_split=kind == "mapStringStringNoSplit")
    elif kind == "mapStringBool":
        check_map_string_bool(text)
    elif kind == "colonSeparatedMultimapStringString":
        check_colon_multimap(text, allow_default_empty_key=flag == "feature-gates")
    elif kind == "namedCertKey":
        check_named_cert_key(text)
    elif kind == "portRange":
        check_port_range(text)
    elif kind == "quantity":
        check_quantity(text)
    elif kind == "pattern=N,...":
        check_vmodule(text)
    elif kind == "version":
        check_version_flag(text, binary)
