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
* every value is checked as its flag's type sets it (``webhook/core/goflags.py``): integers
  with Go's ``strconv.ParseInt(s, 0, bits)`` (``030`` is octal 24, ``0x1e`` is 30, ``1_0``
  is 10), float32 with ``ParseFloat(s, 32)`` (range, hex floats with a ``p`` exponent),
  durations with ``time.ParseDuration`` (overflow included), booleans with ``ParseBool``,
  slices as one CSV record, IPs with ``net.ParseIP``;
* the flag set itself is the target release's, generated from its options code
  (``webhook/data/kube-apiserver-flags-v1.MINOR.json``, ``goflags.table_version``): an unknown
  flag stops it.

Proven against kube-apiserver's real FlagSet by tests/e2e/test_flag_differential.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from webhook.core import goflags, shellcmd
from webhook.core.versions import NEWEST, KubeVersion

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

_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "busybox"})


@dataclass
class ParsedFlags:
    """Result of parsing one argv: effective values (last wins) and what went wrong."""

    values: dict[str, str] = field(default_factory=dict)
    occurrences: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # kube-apiserver would refuse to start
    notes: list[str] = field(default_factory=list)
    # Flags that are not in the flag set of release ``table`` (goflags.table_version of the
    # target): refused by that release, possibly fine for an older one.
    unknown: list[str] = field(default_factory=list)
    table: KubeVersion = NEWEST


def normalize(name: str) -> str:
    """component-base WordSepNormalizeFunc: ``_`` becomes ``-``."""
    return name.replace("_", "-")


def parse(args: Sequence[str], version: KubeVersion = NEWEST) -> ParsedFlags:
    """Parse kube-apiserver's arguments (without the program name) as its pflag FlagSet does.

    Every flag is looked up in the real flag set of kube-apiserver ``version`` (the target
    release; ``goflags.flag_table``, the nearest release's table when auditwarden has none of
    its own, recorded in ``table``): an
    unknown one is recorded in ``unknown`` (kube-apiserver refuses it: ``unknown flag:
    --x``), a value its type cannot ``Set`` is an error worded as pflag's (``invalid argument
    "yes" for "--profiling" flag: strconv.ParseBool: parsing "yes": invalid syntax``).
    Unlike pflag, parsing goes on after an error, so that every problem is reported.
    """
    table = goflags.flag_table(version)
    # --version=vX.Y.Z must match the binary's version: the table's release when it is the
    # target's own (its patch release assumed), else unknown.
    binary = goflags.provenance(version)["version"] if goflags.table_version(version) == version else ""
    out = ParsedFlags(table=goflags.table_version(version))
    pending: dict[str, str] = {}
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
            written, has_value, value = body.partition("=")
            name = normalize(written)
            info = table.get(name)
            if info is None:
                out.unknown.append(f"unknown flag: --{written}")
                # Its value cannot be known; a following word that is not a flag is taken as
                # one (nobody passes "--x" as the value of a string flag).
                if not has_value and i < len(args) and not args[i].startswith("-"):
                    i += 1
                continue
            if not has_value:
                if info["noOptDefault"]:
                    value = info["noOptDefault"]
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    out.errors.append(f"flag needs an argument: {arg}")
                    continue
            # The effective (last) value of an audit flag is judged by apiserver._value_errors
            # (finding audit-flag-invalid); every other bad value, earlier audit ones included
            # (pflag sets each occurrence), is an error here.
            if name in pending:
                out.errors.append(pending.pop(name))
            try:
                goflags.check_value(info["type"], value, name, binary)
            except ValueError as exc:
                shown = f"-{info['shorthand']}, --{name}" if info["shorthand"] else f"--{name}"
                message = f'invalid argument {goflags.go_quote(value)} for "{shown}" flag: {exc}'
                if name.startswith("audit-"):
                    pending[name] = message
                else:
                    out.errors.append(message)
            if name in ("help", "version") and _exits(name, value):
                out.errors.append(f"--{name}: kube-apiserver prints its {name} and exits instead of serving")
            out.values[name] = value
            out.occurrences[name] = out.occurrences.get(name, 0) + 1
        elif arg.startswith("-") and len(arg) > 1:
            # A shorthand cluster; kube-apiserver's shorthands are -v (klog verbosity, which
            # takes a value: "-v 2", "-v=2", "-v2") and -h (help).
            if arg.startswith("-v"):
                if arg == "-v":
                    if i >= len(args):
                        out.errors.append("flag needs an argument: 'v' in -v")
                        continue
                    value = args[i]
                    i += 1
                else:
                    value = arg[3:] if arg.startswith("-v=") else arg[2:]
                try:
                    goflags.check_value("Level", value)
                except ValueError as exc:
                    out.errors.append(f'invalid argument {goflags.go_quote(value)} for "-v, --v" flag: {exc}')
                continue
            if arg == "-h" or (arg.startswith("-h") and not arg.startswith("-h=")):
                out.errors.append("-h: kube-apiserver prints its help and exits instead of serving")
                continue
            out.errors.append(f"unknown shorthand flag: {arg[1]!r} in {arg} (long flags need two dashes)")
        else:
            positional.append(arg)
    stray = [p for p in positional if p]
    if stray:
        quoted = "[" + " ".join(f'"{p}"' for p in stray) + "]"
        out.errors.append(f'"kube-apiserver" does not take any arguments, got {quoted}')
    for name, count in out.occurrences.items():
        if count > 1 and table[name]["type"] not in _ACCUMULATING:
            out.notes.append(f"--{name} is given {count} times; the last one ({out.values[name]!r}) wins")
    return out


def _exits(name: str, value: str) -> bool:
    """``--help``/``--version`` set to this prints and exits (pflag's ErrHelp for a true --help;
    verflag.PrintAndExitIfRequested for ``--version`` true or ``raw``; ``--version=vX.Y.Z`` only
    sets the reported version)."""
    if name == "version" and value == "raw":
        return True
    try:
        return goflags.parse_bool(value)
    except ValueError:
        return False


# pflag types whose repeated occurrences add up instead of replacing each other.
_ACCUMULATING = frozenset({"stringSlice", "stringArray", "int32Slice", "stringToString", "mapStringString",
                           "colonSeparatedMultimapStringString", "namedCertKey"})  # fmt: skip


def parse_go_int(text: str) -> int:
    """``strconv.ParseInt(text, 0, 64)``; ValueError like Go's ``invalid syntax``/``out of range``."""
    return goflags.parse_int(text, 64)


def parse_go_bool(text: str) -> bool:
    return goflags.parse_bool(text)


def check_go_duration(text: str) -> None:
    """time.ParseDuration, overflow included."""
    goflags.parse_duration(text)


def check_go_float(text: str) -> None:
    """strconv.ParseFloat(text, 32): the audit QPS flags are float32."""
    goflags.parse_float(text, 32)


def apiserver_argv(
    command: Sequence[str],
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    notes: list[str] | None = None,
    uncertain: list[str] | None = None,
) -> list[str] | None:
    """The kube-apiserver arguments from a container's ``command`` + ``args``.

    Handles ``kube-apiserver ...``, a path to it, ``hyperkube kube-apiserver ...``, and a shell
    wrapper (``sh -c "exec kube-apiserver ..."``), whose script is parsed as a shell parses it
    (``webhook/core/shellcmd.py``) with ``env`` (literal values; None for ``valueFrom``) and the
    words after the script as ``$0 $1 …``; what it cannot determine is added to ``notes``, and
    the words holding it are left out of the result, the flag each names (or ``*``: any flag)
    added to ``uncertain``.
    With no command (image entrypoint) the ``args`` are taken as the flags.  None when the
    container does not run kube-apiserver.
    """
    argv = [*command, *args]
    if not command:
        return list(args) if any(a.startswith("--") for a in args) else None
    base = command[0].rsplit("/", 1)[-1]
    first = 2 if base == "busybox" and argv[1:2] in (["sh"], ["ash"]) else 1
    if base in _SHELLS:
        for j, token in enumerate(argv[first:], start=first):
            if not token.startswith("-") or token == "--":
                break
            if "c" in token[1:] and j + 1 < len(argv):
                found = shellcmd.script_argv(argv[j + 1], env or {}, argv[j + 2 :])
                if found.argv is None:
                    return None
                if notes is not None:
                    notes += [
                        f"the shell command line could not be determined without running it ({part}); "
                        "auditwarden does not judge the flags that part may set" for part in found.unresolved
                    ]
                if uncertain is not None:
                    uncertain += [_flag_named(found.argv[k]) for k in found.uncertain]
                    if found.unresolved and not found.uncertain:  # a loop, eval, a syntax error
                        uncertain.append("*")
                return [w for k, w in enumerate(found.argv) if k not in set(found.uncertain)]
    return _after_apiserver(argv)


def _flag_named(word: str) -> str:
    """The flag an undetermined word sets, when its name is written literally; else ``*``."""
    name = word[2:].partition("=")[0] if word.startswith("--") else ""
    return normalize(name) if name and "$" not in name and "`" not in name else "*"


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
