"""kube-apiserver's command line, parsed the way it parses it.

kube-apiserver uses cobra/pflag (``spf13/pflag`` ``flag.go``) with component-base's
``WordSepNormalizeFunc`` (``cli/flag/flags.go``).  The rules that matter for audit flags:

* long flags need two dashes; ``--name=value`` or ``--name value`` — for a non-boolean flag
  the next argument is taken as the value **even if it starts with ``-``**
  (``--audit-log-path -`` means standard output);
* booleans: ``--flag`` is true, ``--flag=false``; ``--flag false`` leaves ``false`` as a
  positional argument, which kube-apiserver refuses ("does not take any arguments");
* ``_`` in a flag name is normalised to ``-``;
* the last occurrence of a repeated scalar flag wins;
* ``--`` ends flag parsing; ``-x`` is a shorthand cluster (kube-apiserver has none that
  matter here, so ``-audit-log-path`` is an error);
* integers are parsed with Go's ``strconv.ParseInt(s, 0, 64)``: ``030`` is octal 24,
  ``0x1e`` is 30, ``1_0`` is 10.

Only the semantics are reproduced; unknown non-audit flags are tolerated (auditwarden does
not know every kube-apiserver flag), unknown ``--audit-*`` flags are reported because they
are almost always typos that stop the apiserver.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

# Audit flags of pkg/server/options/audit.go and their types.
AUDIT_FLAG_TYPES: dict[str, str] = {
    "audit-policy-file": "string",
    "audit-log-path": "string",
    "audit-log-maxage": "int",
    "audit-log-maxbackup": "int",
    "audit-log-maxsize": "int",
    "audit-log-compress": "bool",
    "audit-log-format": "string",
    "audit-log-mode": "string",
    "audit-log-batch-buffer-size": "int",
    "audit-log-batch-max-size": "int",
    "audit-log-batch-max-wait": "duration",
    "audit-log-batch-throttle-enable": "bool",
    "audit-log-batch-throttle-qps": "float",
    "audit-log-batch-throttle-burst": "int",
    "audit-log-truncate-enabled": "bool",
    "audit-log-truncate-max-batch-size": "int",
    "audit-log-truncate-max-event-size": "int",
    "audit-log-version": "string",
    "audit-webhook-config-file": "string",
    "audit-webhook-initial-backoff": "duration",
    "audit-webhook-batch-initial-backoff": "duration",
    "audit-webhook-mode": "string",
    "audit-webhook-batch-buffer-size": "int",
    "audit-webhook-batch-max-size": "int",
    "audit-webhook-batch-max-wait": "duration",
    "audit-webhook-batch-throttle-enable": "bool",
    "audit-webhook-batch-throttle-qps": "float",
    "audit-webhook-batch-throttle-burst": "int",
    "audit-webhook-truncate-enabled": "bool",
    "audit-webhook-truncate-max-batch-size": "int",
    "audit-webhook-truncate-max-event-size": "int",
    "audit-webhook-version": "string",
}

# Boolean kube-apiserver flags (they never consume the next argument).  Any flag not listed
# here and not an audit flag is assumed to take a value, as almost all of them do.
_BOOL_FLAGS = frozenset(
    {
        "allow-privileged",
        "anonymous-auth",
        "enable-aggregator-routing",
        "aggregator-reject-forwarding-redirect",
        "enable-bootstrap-token-auth",
        "enable-garbage-collector",
        "enable-logs-handler",
        "enable-priority-and-fairness",
        "profiling",
        "contention-profiling",
        "debug-socket-path-enabled",
        "service-account-lookup",
        "shutdown-send-retry-after",
        "service-account-extend-token-expiration",
        "encryption-provider-config-automatic-reload",
        "watch-cache",
        "disable-http2-serving",
        "permit-port-sharing",
        "permit-address-sharing",
        "emulation-forward-compatible",
        "runtime-config-emulation-forward-compatible",
        "logtostderr",
        "alsologtostderr",
        "add-dir-header",
        "skip-headers",
        "skip-log-headers",
        "one-output",
        "log-json-split-stream",
        "log-text-split-stream",
        "strict-transport-security-directives-enabled",
        "help",
        "version",
    }
) | frozenset(name for name, kind in AUDIT_FLAG_TYPES.items() if kind == "bool")

_GO_BOOL = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}  # fmt: skip

_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "busybox"})


@dataclass
class ParsedFlags:
    """Result of parsing one argv: effective values (last wins) and what went wrong."""

    values: dict[str, str] = field(default_factory=dict)
    occurrences: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # kube-apiserver would refuse to start
    notes: list[str] = field(default_factory=list)


def normalize(name: str) -> str:
    """component-base WordSepNormalizeFunc: ``_`` becomes ``-``."""
    return name.replace("_", "-")


def parse(args: Sequence[str]) -> ParsedFlags:
    """Parse kube-apiserver's arguments (without the program name)."""
    out = ParsedFlags()
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if arg.startswith("--"):
            body = arg[2:]
            if not body or body.startswith("-") or body.startswith("="):
                out.errors.append(f"bad flag syntax: {arg}")
                continue
            name, has_value, value = body.partition("=")
            name = normalize(name)
            # Flag names are case-sensitive: --Audit-Log-Path is no flag of kube-apiserver.
            unknown_audit = name.lower().startswith("audit-") and name not in AUDIT_FLAG_TYPES
            if not has_value:
                known = name in AUDIT_FLAG_TYPES or name in _BOOL_FLAGS
                if name in _BOOL_FLAGS:
                    value = "true"
                elif not known and (i >= len(args) or args[i].startswith("--")):
                    # A flag auditwarden does not know, followed by another flag: a boolean
                    # (nobody passes "--x" as the value of a string flag).
                    value = "true"
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    out.errors.append(f"flag needs an argument: --{name}")
                    continue
            if unknown_audit:
                out.errors.append(f"unknown flag: --{name}")
                continue
            out.values[name] = value
            out.occurrences[name] = out.occurrences.get(name, 0) + 1
        elif arg.startswith("-") and len(arg) > 1:
            # A shorthand cluster; kube-apiserver's only shorthand is -v (klog verbosity,
            # component-base logs/api/v1/options.go), which takes a value: "-v 2", "-v=2", "-v2".
            if arg == "-v":
                if i >= len(args):
                    out.errors.append("flag needs an argument: 'v' in -v")
                else:
                    i += 1
                continue
            if re.fullmatch(r"-v=?[0-9]+", arg, re.ASCII):
                continue
            out.errors.append(f"unknown shorthand flag: {arg[1]!r} in {arg} (long flags need two dashes)")
        else:
            positional.append(arg)
    stray = [p for p in positional if p]
    if stray:
        out.errors.append(f'"kube-apiserver" does not take any arguments, got {stray[:3]}')
    for name, count in out.occurrences.items():
        if count > 1:
            out.notes.append(f"--{name} is given {count} times; the last one ({out.values[name]!r}) wins")
    return out


def parse_go_int(text: str) -> int:
    """``strconv.ParseInt(text, 0, 64)``; ValueError like Go's ``invalid syntax``/``out of range``."""
    s = text
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    base = 10
    digits = s
    prefixed = False
    if len(s) >= 2 and s[0] == "0" and s[1] in "xXbBoO":
        base = {"x": 16, "b": 2, "o": 8}[s[1].lower()]
        digits = s[2:]
        prefixed = True
    elif len(s) >= 2 and s[0] == "0":
        base = 8
        digits = s[1:]
        prefixed = True
    if not re.fullmatch(r"[0-9a-zA-Z_]*", digits, re.ASCII):
        raise ValueError(f'parsing "{text}": invalid syntax')  # Go accepts ASCII digits only
    if prefixed and digits.startswith("_"):
        digits = digits[1:]  # an underscore may separate the prefix and the first digit
        if not digits:
            raise ValueError(f'parsing "{text}": invalid syntax')
    if not digits or digits.startswith("_") or digits.endswith("_") or "__" in digits:
        raise ValueError(f'parsing "{text}": invalid syntax')
    try:
        value = sign * int(digits.replace("_", ""), base)
    except ValueError:
        raise ValueError(f'parsing "{text}": invalid syntax') from None
    if not -(2**63) <= value < 2**63:
        raise ValueError(f'parsing "{text}": value out of range')
    return value


def parse_go_bool(text: str) -> bool:
    if text not in _GO_BOOL:
        raise ValueError(f'parsing "{text}": invalid syntax')
    return _GO_BOOL[text]


_DURATION = re.compile(r"[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+|[-+]?0", re.ASCII)
# strconv.ParseFloat: decimal or hex floats, inf/nan, underscores between digits
_FLOAT = re.compile(
    r"[-+]?(([0-9](_?[0-9])*)?\.?[0-9]*([eE][-+]?[0-9]+)?|0[xX][0-9a-fA-F_.]+([pP][-+]?[0-9]+)?"
    r"|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])",
    re.ASCII,
)


def check_go_duration(text: str) -> None:
    """time.ParseDuration's grammar."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f'time: invalid duration "{text}"')


def check_go_float(text: str) -> None:
    if not text or not _FLOAT.fullmatch(text) or not any(c.isdigit() or c in "iInN" for c in text):
        raise ValueError(f'parsing "{text}": invalid syntax')


def apiserver_argv(command: Sequence[str], args: Sequence[str]) -> list[str] | None:
    """The kube-apiserver arguments from a container's ``command`` + ``args``.

    Handles ``kube-apiserver ...``, a path to it, ``hyperkube kube-apiserver ...``, and a shell
    wrapper (``sh -c "exec kube-apiserver ..."``, split with shlex as the shell would).  With
    no command (image entrypoint) the ``args`` are taken as the flags.  None when the
    container does not run kube-apiserver.
    """
    argv = [*command, *args]
    if not command:
        return list(args) if any(a.startswith("--") for a in args) else None
    found = _after_apiserver(argv)
    if found is not None:
        return found
    base = command[0].rsplit("/", 1)[-1]
    if base in _SHELLS:
        for j, token in enumerate(argv):
            if token in ("-c", "-ec", "-ce", "-xc", "-cx", "-lc") and j + 1 < len(argv):
                try:
                    words = shlex.split(argv[j + 1], comments=True)
                except ValueError:
                    return None
                return _after_apiserver(words)
    return None


def _is_apiserver(word: str) -> bool:
    return word.rsplit("/", 1)[-1] in ("kube-apiserver", "apiserver")


def _after_apiserver(words: Sequence[str]) -> list[str] | None:
    for j, word in enumerate(words):
        base = word.rsplit("/", 1)[-1]
        if base == "kube-apiserver" or (base == "hyperkube" and j + 1 < len(words) and _is_apiserver(words[j + 1])):
            start = j + 1 if base == "kube-apiserver" else j + 2
            rest = list(words[start:])
            # Stop at shell control operators: what follows is another command.
            for k, w in enumerate(rest):
                if w in ("&&", "||", ";", "|", "&"):
                    return rest[:k]
            return rest
    return None
