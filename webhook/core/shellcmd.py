"""The kube-apiserver command inside a ``sh -c`` / ``bash -c`` script, read without running a shell.

A container may start kube-apiserver through a shell: ``command: [/bin/sh, -c, "exec
kube-apiserver --audit-log-path=$LOG \\\\\\n --audit-log-maxage=30 \"$@\" 2>&1"]``.  The script
is parsed with tree-sitter's bash grammar (``tree-sitter-bash``, a real shell parser, MIT
licensed), and the words of the kube-apiserver simple command are expanded statically as a
POSIX shell would:

* backslash-newline continuations, ``;``, ``&&``, ``||``, ``|``, redirections (dropped: they
  are not arguments), ``exec``, ``VAR=value`` prefixes;
* quoting: ``'...'``, ``"..."``, backslash escapes;
* ``$VAR`` and ``${VAR}`` from the container's ``env`` (literal ``value`` only), ``${VAR:-x}``
  and ``${VAR-x}``; ``"$@"``, ``$*``, ``$0``…``$9`` from the arguments after the script
  (``sh -c SCRIPT $0 $1 …``: the first one is ``$0``, as in any shell); unquoted expansions are
  split on blanks.

Anything that cannot be known without running something — command substitution, a variable
that is not a literal ``env`` value (``valueFrom``, or set by the script), arithmetic,
other ``${…}`` operators, globs, loops, conditionals, functions, ``eval`` — is reported by
name in ``unresolved``; the word is then kept as written.  No shell is ever run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# Statements whose commands run conditionally or repeatedly: a kube-apiserver inside one
# cannot be vouched for statically.
_COMPOUND = frozenset({"if_statement", "while_statement", "for_statement", "c_style_for_statement",
                       "case_statement", "function_definition", "subshell", "compound_statement"})  # fmt: skip
_GLOB = frozenset("*?[")


@dataclass
class ShellCommand:
    """The words after ``kube-apiserver`` (None: the script runs no kube-apiserver) and what
    could not be determined."""

    argv: list[str] | None
    unresolved: list[str] = field(default_factory=list)
    # argv indices of the words that hold an undetermined part (their text is as written).
    uncertain: list[int] = field(default_factory=list)


@cache
def _parser() -> Any:
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


def _text(node: Any) -> str:
    return str(node.text.decode("utf-8", "replace"))


class _Expander:
    def __init__(self, env: Mapping[str, str | None], positional: Sequence[str]) -> None:
        self.env = env
        self.positional = list(positional)
        self.unresolved: list[str] = []
        self.solid = False

    def unknown(self, node: Any, why: str) -> None:
        self.unresolved.append(f"{why}: {_text(node)}")

    def variable(self, name: str, node: Any) -> list[str] | None:
        """The value(s) of ``$name``; None when unknown."""
        if name.isdigit():
            n = int(name)
            return [self.positional[n]] if n < len(self.positional) else [""]
        if name in ("@", "*"):
            return self.positional[1:]
        if name == "#":
            return [str(max(0, len(self.positional) - 1))]
        value = self.env.get(name)
        if value is None:
            why = "a variable set from valueFrom" if name in self.env else "a variable not set in the container's env"
            self.unknown(node, why)
            return None
        return [value]

    def word(self, node: Any) -> list[str]:
        """The fields one argument word expands to (none for unquoted empty expansions)."""
        fields: list[str] = [""]
        self.solid = False  # a literal or quoted part makes a field even when empty
        self._into(node, fields, quoted=False)
        return fields if self.solid or fields != [""] else []

    def _append(self, fields: list[str], values: list[str], *, split: bool) -> None:
        if not values:
            return
        if not split:
            self.solid = True
        if split:
            parts = " ".join(values).split()
            if not parts:
                return
            fields[-1] += parts[0]
            fields.extend(parts[1:])
        else:
            fields[-1] += values[0]
            fields.extend(values[1:])

    def _into(self, node: Any, fields: list[str], *, quoted: bool) -> None:
        kind = node.type
        if kind in ("word", "number") and not quoted:
            text = _text(node).replace("\\\n", "")
            if any(c in _GLOB for c in text.replace("\\*", "").replace("\\?", "").replace("\\[", "")):
                self.unknown(node, "a glob pattern, expanded against the node's files")
            out, i = [], 0
            while i < len(text):
                if text[i] == "\\" and i + 1 < len(text):
                    out.append(text[i + 1])
                    i += 2
                else:
                    out.append(text[i])
                    i += 1
            fields[-1] += "".join(out)
            self.solid = True
        elif kind == "string_content" or (kind in ("word", "number") and quoted):
            text = _text(node).replace("\\\n", "")
            for a, b in (('\\"', '"'), ("\\$", "$"), ("\\`", "`"), ("\\\\", "\\")):
                text = text.replace(a, b)
            fields[-1] += text
            self.solid = True
        elif kind == "raw_string":
            fields[-1] += _text(node)[1:-1]
            self.solid = True
        elif kind == "string":
            inner = [c for c in node.children if c.type != '"']
            if not (len(inner) == 1 and inner[0].type == "simple_expansion" and _text(inner[0]) == "$@"):
                self.solid = True  # "$@" alone is the one quoted word that may vanish
            for child in inner:
                self._into(child, fields, quoted=True)
        elif kind == "concatenation":
            for child in node.children:
                self._into(child, fields, quoted=quoted)
        elif kind == "simple_expansion":
            name = _text(node)[1:]
            values = self.variable(name, node)
            if values is None:
                fields[-1] += _text(node)
            elif quoted and name == "*":
                self._append(fields, [" ".join(values)], split=False)
            elif quoted and name == "@":
                if values:
                    fields[-1] += values[0]
                    fields.extend(values[1:])
            else:
                self._append(fields, values, split=not quoted)
        elif kind == "expansion":
            self._expansion(node, fields, quoted=quoted)
        elif kind in ('"', "$"):
            fields[-1] += _text(node) if kind == "$" else ""
        else:  # command_substitution, arithmetic_expansion, process_substitution, ansi_c_string…
            self.unknown(node, kind.replace("_", " "))
            fields[-1] += _text(node)

    def _expansion(self, node: Any, fields: list[str], *, quoted: bool) -> None:
        inner = [c for c in node.children if c.type not in ("${", "}")]
        name_node = inner[0] if inner else None
        if name_node is None or name_node.type not in ("variable_name", "special_variable_name"):
            self.unknown(node, "a parameter expansion")
            fields[-1] += _text(node)
            return
        name = _text(name_node)
        rest = inner[1:]
        if not rest:
            values = self.variable(name, node)
            if values is None:
                fields[-1] += _text(node)
            else:
                self._append(fields, values, split=not quoted)
            return
        operator = _text(rest[0])
        if operator in (":-", "-") and not name.isdigit() and name not in ("@", "*", "#"):
            value = self.env.get(name)
            if name in self.env and value is None:
                self.unknown(node, "a variable set from valueFrom")
                fields[-1] += _text(node)
                return
            use_default = name not in self.env or (operator == ":-" and value == "")
            if not use_default:
                self._append(fields, [value or ""], split=not quoted)
                return
            default: list[str] = [""]
            for part in rest[1:]:
                self._into(part, default, quoted=quoted)
            self._append(fields, default, split=False)
            return
        self.unknown(node, f"the parameter expansion operator {operator}")
        fields[-1] += _text(node)


def _commands(node: Any, out: list[tuple[Any, bool]], inside: bool = False) -> None:
    """Every simple command in source order, with whether it sits in a compound statement."""
    if node.type == "command":
        out.append((node, inside))
    for child in node.children:
        _commands(child, out, inside or node.type in _COMPOUND)


def _is_apiserver(word: str) -> bool:
    return word.rsplit("/", 1)[-1] == "kube-apiserver"


def script_argv(script: str, env: Mapping[str, str | None], positional: Sequence[str]) -> ShellCommand:
    """The kube-apiserver arguments of ``sh -c SCRIPT POSITIONAL…`` and what stayed unknown."""
    tree = _parser().parse(script.encode("utf-8"))
    ex = _Expander(env, positional)
    if tree.root_node.has_error:
        ex.unresolved.append("the script has a syntax error a shell would refuse")
    commands: list[tuple[Any, bool]] = []
    _commands(tree.root_node, commands)
    for command, inside in commands:
        before = len(ex.unresolved)
        words: list[str] = []
        uncertain: list[int] = []
        for child in command.children:
            seen = len(ex.unresolved)
            if child.type == "command_name":
                expanded = ex.word(child.children[0]) if child.children else []
            elif child.type not in ("variable_assignment", "file_redirect", "herestring_redirect", "comment"):
                expanded = ex.word(child)
            else:
                continue
            if len(ex.unresolved) > seen:
                uncertain += range(len(words), len(words) + max(1, len(expanded)))
                expanded = expanded or [_text(child)]
            words += expanded
        start = 0
        if words[:1] == ["exec"]:
            start = 1
        while start < len(words) and words[start].startswith("-") and words[start] != "--":  # exec -a / -c / -l
            start += 2 if words[start] == "-a" else 1
        for j in range(start, len(words) - 1):
            if words[j].rsplit("/", 1)[-1] == "hyperkube" and words[j + 1].rsplit("/", 1)[-1] in (
                "kube-apiserver", "apiserver"
            ):
                start = j + 1
                break
        words_all, words = words, words[start:]
        if words and (_is_apiserver(words[0]) or words[0].rsplit("/", 1)[-1] == "apiserver"):
            if inside:
                ex.unresolved.append("kube-apiserver runs inside a loop, conditional, function or subshell")
            if "eval" in script:
                ex.unresolved.append("the script uses eval")
            shift = len(words_all) - len(words) + 1
            return ShellCommand(words[1:], ex.unresolved, [k - shift for k in uncertain if k >= shift])
        del ex.unresolved[before:]  # what another command does with its words does not matter
    return ShellCommand(None, ex.unresolved)
