"""Applying a :class:`~webhook.core.repair.Repair` to the text of a file, keeping its layout.

``ruamel.yaml`` (round-trip mode) parses the file and tells where every node starts; the edits
are then spliced into the original text line by line, so comments, key order, quoting,
indentation and every untouched line stay byte for byte.  Inserted rules are written in the
indentation of the rule list they join, each after a ``# auditwarden fix:`` comment saying
why it is there; ``omitStages`` entries are removed in place (the key goes when its list
becomes empty).  Where a splice is not possible (flow-style rule lists, a key sharing its line
with the list's dash) the edit is made on ruamel's document model and the document dumped
again — comments stay, some indentation may change.  JSON files are rewritten as JSON.

Where a policy lives: a policy file (every YAML document), a ConfigMap data value (a literal
block scalar, edited inside), a kops ``Cluster``'s ``spec.fileAssets[].content``, a Talos
machine config's ``cluster.apiServer.auditPolicy``, and the items of a ``List``.

Every edited text is read back with the same reader ``auditwarden check`` uses and must hold
exactly the repaired policy, or the edit is refused.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

from webhook.core import yamlsafe
from webhook.core.documents import MARKERS, looks_like_policy
from webhook.core.policy import Policy
from webhook.core.repair import Insertion, Repair, StageChange, flow, rule_mapping

COMMENT = "# auditwarden fix:"


class EditError(ValueError):
    """The file could not be edited (``str()`` says why)."""


class _NoSplice(Exception):
    """This edit cannot be spliced into the text; edit the model and dump instead."""


@dataclass
class Located:
    """One policy in a file: its plain form (as kube-apiserver reads it) and where it sits."""

    source: str
    plain: Any
    node: CommentedMap | None = None  # a policy mapping inside the file's documents
    holder: Any = None  # (string policies) the mapping or list holding the text
    key: Any = None
    inner: list[Located] = field(default_factory=list)


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    return y


def _load_rt(text: str) -> list[Any]:
    try:
        return list(_yaml().load_all(text))
    except YAMLError as exc:
        raise EditError(f"ruamel.yaml cannot parse it: {str(exc).splitlines()[0]}") from None


def locate(text: str, source: str) -> list[Located]:
    """Every policy in ``text`` (a file's content)."""
    try:
        plain_docs = yamlsafe.load_file(text)
    except yamlsafe.DocumentError as exc:
        raise EditError(str(exc)) from None
    if text.lstrip().startswith("{"):
        docs: list[Any] = plain_docs
    else:
        docs = _load_rt(text)
        if len(docs) != len(plain_docs):
            raise EditError("the YAML readers disagree on the number of documents")
    return _walk_documents(plain_docs, docs, source)


def _walk_documents(plain_docs: list[Any], docs: list[Any], source: str) -> list[Located]:
    """The policies of every non-empty document (named ``source:N`` when there are several)."""
    present = [i for i, d in enumerate(plain_docs) if d is not None]
    out: list[Located] = []
    for i in present:
        name = source if len(present) == 1 else f"{source}:{i + 1}"
        out += _walk(plain_docs[i], docs[i], name, 0)
    return out


def _walk(plain: Any, node: Any, source: str, depth: int) -> Iterator[Located]:
    if not isinstance(plain, Mapping) or not isinstance(node, Mapping) or depth > 4:
        return
    if looks_like_policy(plain):
        yield Located(source, plain, node if isinstance(node, CommentedMap) else None)
        return
    kind = plain.get("kind")
    if kind == "ConfigMap" and isinstance(plain.get("data"), Mapping):
        data = node.get("data")
        for key, value in plain["data"].items():
            if isinstance(value, str) and any(m in value for m in MARKERS):
                yield from _string_policy(value, data, key, f"{source}#data[{key}]")
        return
    if isinstance(kind, str) and kind.endswith("List") and isinstance(plain.get("items"), list):
        for n, (p, r) in enumerate(zip(plain["items"], node.get("items") or [], strict=False)):
            yield from _walk(p, r, f"{source}.items[{n}]", depth + 1)
        return
    spec = plain.get("spec")
    if isinstance(spec, Mapping) and isinstance(spec.get("fileAssets"), list):  # kops Cluster
        assets = node["spec"]["fileAssets"]
        for n, asset in enumerate(spec["fileAssets"]):
            content = asset.get("content") if isinstance(asset, Mapping) else None
            if isinstance(content, str) and "audit.k8s.io" in content:
                yield from _string_policy(content, assets[n], "content", f"{source}#spec.fileAssets[{n}]")
        return
    cluster = plain.get("cluster")
    api = cluster.get("apiServer") if isinstance(cluster, Mapping) else None
    if isinstance(api, Mapping) and isinstance(api.get("auditPolicy"), Mapping):  # Talos
        yield Located(f"{source}#cluster.apiServer.auditPolicy", api["auditPolicy"],
                      node["cluster"]["apiServer"]["auditPolicy"])  # fmt: skip


def _string_policy(text: str, holder: Any, key: Any, source: str) -> Iterator[Located]:
    try:
        first = yamlsafe.decode_like_apiserver(text)
    except yamlsafe.DocumentError:
        return
    if isinstance(first, Mapping) and looks_like_policy(first):
        yield Located(source, first, None, holder, key, inner=locate(text, source)[:1])


# ------------------------------------------------------------------------ text edits

_Edit = tuple[int, int, list[str]]  # replace lines [start, end) with these


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dash_line(lines: list[str], line: int, col: int) -> tuple[int, int]:
    """The line and column of the ``-`` that starts the sequence item whose content is at (line, col)."""
    before = lines[line][:col].rstrip()
    if before.endswith("-") and not before[:-1].strip():
        return line, len(before) - 1
    raise _NoSplice


def _comment_block_start(lines: list[str], line: int, col: int) -> int:
    """Comment lines directly above an item (at its indentation or deeper) belong to it."""
    while line > 0 and lines[line - 1].strip().startswith("#") and _indent(lines[line - 1]) >= col:
        line -= 1
    return line


def _item_end(lines: list[str], line: int, dash_col: int) -> int:
    """The line after the last content line of the sequence item starting at ``line``."""
    end = line + 1
    last = line + 1
    while end < len(lines):
        stripped = lines[end].strip()
        if stripped and not stripped.startswith("#"):
            if _indent(lines[end]) <= dash_col or stripped.startswith(("---", "...")):
                break
            last = end + 1
        end += 1
    return last


def _rule_lines(ins: Insertion, dash_col: int, newline: str) -> list[str]:
    pad = " " * dash_col
    out = [f"{pad}{comment(ins)}{newline}"]
    for n, (key, value) in enumerate(rule_mapping(ins.rule).items()):
        out.append(f"{pad}{'- ' if n == 0 else '  '}{key}: {flow(value)}{newline}")
    return out


def comment(ins: Insertion) -> str:
    """The comment above an inserted rule: what it logs and why it sits there."""
    probes = ", ".join(ins.probes) if len(ins.probes) <= 3 else f"{len(ins.probes)} probe requests"
    return f"{COMMENT} logs {probes} ({', '.join(ins.categories)}); {ins.hider}"


def _newline(lines: list[str]) -> str:
    return "\r\n" if lines and lines[0].endswith("\r\n") else "\n"


def _stage_edit(lines: list[str], mapping: CommentedMap, removed: tuple[str, ...]) -> _Edit:
    seq = mapping.get("omitStages")
    if not isinstance(seq, CommentedSeq):
        raise _NoSplice
    kl, kc = mapping.lc.key("omitStages")
    if lines[kl][:kc].strip():
        raise _NoSplice  # the key shares its line with a dash or a flow mapping
    keep = [s for s in seq if s not in removed]
    vl, vc = mapping.lc.value("omitStages")
    if seq.fa.flow_style():
        close = lines[vl].find("]", vc)
        rest = lines[vl][close + 1 :].strip()
        if close < 0 or (rest and not rest.startswith("#")):
            raise _NoSplice
        if not keep:
            return kl, vl + 1, []
        quote = '"' if '"' in lines[vl][vc:close] else ("'" if "'" in lines[vl][vc:close] else "")
        items = ", ".join(f"{quote}{s}{quote}" for s in keep)
        return vl, vl + 1, [lines[vl][:vc] + f"[{items}]" + lines[vl][close + 1 :]]
    item_lines = [seq.lc.item(i)[0] for i in range(len(seq))]
    if len(set(item_lines)) != len(item_lines):
        raise _NoSplice
    if not keep:
        return kl, max(item_lines) + 1, []
    # Drop the removed items' lines only (each is "- Stage" on a line of its own).
    first, last = min(item_lines), max(item_lines) + 1
    kept = [lines[item_lines[i]] for i, s in enumerate(seq) if s not in removed]
    return first, last, kept


def _splice_policy(lines: list[str], node: CommentedMap, repair: Repair) -> list[_Edit]:
    rules = node.get("rules")
    if not isinstance(rules, CommentedSeq) or rules.fa.flow_style() or not len(rules):
        raise _NoSplice
    nl = _newline(lines)
    edits: list[_Edit] = []
    for change in repair.stage_changes:
        target = node if change.rule is None else rules[change.rule]
        if not isinstance(target, CommentedMap):
            raise _NoSplice
        edits.append(_stage_edit(lines, target, change.removed))
    for ins in repair.insertions:
        if ins.before is None:
            line, col = rules.lc.item(len(rules) - 1)
            dline, dcol = _dash_line(lines, line, col)
            at = _item_end(lines, dline, dcol)
        else:
            line, col = rules.lc.item(ins.before)
            dline, dcol = _dash_line(lines, line, col)
            at = _comment_block_start(lines, dline, dcol)
        if at > 0 and not lines[at - 1].endswith(("\n", "\r")):
            raise _NoSplice
        edits.append((at, at, _rule_lines(ins, dcol, nl)))
    return edits


def _apply(lines: list[str], edits: list[_Edit]) -> list[str]:
    # Later edits first, so earlier line numbers stay valid; insertions at one line keep their order.
    ordered = sorted(enumerate(edits), key=lambda e: (e[1][0], e[0]), reverse=True)
    spans = sorted((s, e) for _, (s, e, _r) in ordered if e > s)
    for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
        if s2 < e1:
            raise _NoSplice
    out = list(lines)
    for _, (start, end, new) in ordered:
        out[start:end] = new
    return out


# ----------------------------------------------------------------- model edits (fallback)


def _model_edit(node: CommentedMap, repair: Repair) -> None:
    rules = node["rules"]
    if isinstance(rules, CommentedSeq) and rules.fa.flow_style():
        rules.fa.set_block_style()  # one rule per line, so each inserted rule can carry its comment
        for item in rules:
            if isinstance(item, CommentedMap):
                item.fa.set_flow_style()
    for change in repair.stage_changes:
        target = node if change.rule is None else rules[change.rule]
        seq = target.get("omitStages")
        if seq is None:
            continue
        for s in change.removed:
            while s in seq:
                seq.remove(s)
        if not seq:
            del target["omitStages"]
    for ins in sorted(repair.insertions, key=lambda i: i.index):
        m = CommentedMap()
        for key, value in rule_mapping(ins.rule).items():
            if key == "resources":
                grs = CommentedSeq()
                for gr in value:
                    g = CommentedMap()
                    for k, v in gr.items():
                        g[k] = DoubleQuotedScalarString(v) if k == "group" and v == "" else _flow(v)
                    g.fa.set_flow_style()
                    grs.append(g)
                grs.fa.set_flow_style()
                m[key] = grs
            else:
                m[key] = _flow(value)
        rules.insert(ins.index, m)
        rules.yaml_set_comment_before_after_key(ins.index, before=comment(ins)[2:])


def _flow(value: Any) -> Any:
    if isinstance(value, list):
        seq = CommentedSeq(value)
        seq.fa.set_flow_style()
        return seq
    return value


def _dump(docs: list[Any], explicit_start: bool) -> str:
    y = _yaml()
    y.explicit_start = explicit_start
    out = io.StringIO()
    y.dump_all(docs, out)
    return out.getvalue()


# --------------------------------------------------------------------------- entry


def splice_edits(text: str, source: str, repairs: Callable[[Located], Repair | None]) -> list[_Edit] | None:
    """The line edits that apply the repairs to ``text`` (lines ``[start, end)`` replaced, 0-based),
    or None when some edit cannot be spliced (then :func:`edit_text` edits the model instead)."""
    found = locate(text, source)
    lines = text.splitlines(keepends=True)
    edits: list[_Edit] = []
    for loc in found:
        rep = repairs(loc)
        if rep is None or not rep.needed or rep.policy is None:
            continue
        try:
            if loc.node is not None:
                edits += _splice_policy(lines, loc.node, rep)
            else:
                new_inner = edit_text(str(loc.holder[loc.key]), loc.source, _constant(rep))
                edits.append(_block_scalar_edit(lines, loc.holder, loc.key, new_inner))
        except _NoSplice:
            return None
    try:
        _apply(lines, edits)
    except _NoSplice:
        return None
    return edits


def edit_text(text: str, source: str, repairs: Callable[[Located], Repair | None]) -> str:
    """``text`` with every needed repair applied; ``repairs`` gives the repair of each located
    policy (None: leave it)."""
    if text.lstrip().startswith("{"):
        return _edit_json(text, source, repairs)
    edits = splice_edits(text, source, repairs)
    if edits is not None:
        return "".join(_apply(text.splitlines(keepends=True), edits)) if edits else text
    # Fallback: edit ruamel's model of the documents and dump them again.
    fresh = _load_rt(text)
    for loc in _relocate(text, source, fresh):
        rep = repairs(loc)
        if rep is None or not rep.needed or rep.policy is None:
            continue
        if loc.node is not None:
            _model_edit(loc.node, rep)
        else:
            inner = edit_text(str(loc.holder[loc.key]), loc.source, _constant(rep))
            loc.holder[loc.key] = LiteralScalarString(inner)
    return _dump(fresh, text.lstrip().startswith("---"))


def _constant(rep: Repair) -> Callable[[Located], Repair | None]:
    return lambda _loc: rep


def _relocate(text: str, source: str, docs: list[Any]) -> list[Located]:
    return _walk_documents(yamlsafe.load_file(text), docs, source)


def _block_scalar_edit(lines: list[str], holder: Any, key: Any, new_inner: str) -> _Edit:
    value = holder[key]
    if not isinstance(value, LiteralScalarString):
        raise _NoSplice
    vl, vc = holder.lc.value(key) if isinstance(holder, CommentedMap) else holder.lc.item(key)
    header = lines[vl][vc:].strip()
    if not re.fullmatch(r"\|[-+]?(\s+#.*)?", header):
        raise _NoSplice  # an explicit indentation indicator, or something odd
    start = vl + 1
    body = [i for i in range(start, len(lines)) if lines[i].strip()]
    if not body:
        raise _NoSplice
    indent = _indent(lines[body[0]])
    end = start
    for i in range(start, len(lines)):
        if lines[i].strip() and _indent(lines[i]) < indent:
            break
        end = i + 1
    # Trailing blank lines stay outside (their chomping is the scalar's own).
    while end > start and not lines[end - 1].strip():
        end -= 1
    nl = _newline(lines)
    # The new content, indented like the old; blank lines stay empty.
    content = new_inner.rstrip("\r\n").splitlines()
    return start, end, [(" " * indent + ln if ln.strip() else "") + nl for ln in content]


def _edit_json(text: str, source: str, repairs: Callable[[Located], Repair | None]) -> str:
    found = locate(text, source)
    changed = False
    for loc in found:
        rep = repairs(loc)
        if rep is None or not rep.needed or rep.policy is None or loc.node is not None:
            continue
        if loc.holder is None and isinstance(loc.plain, dict):
            _json_apply(loc.plain, rep)
            changed = True
    if not changed:
        return text
    doc = found[0].plain if len(found) == 1 and found[0].holder is None else None
    if doc is None:
        raise EditError("only a JSON policy file itself can be edited")
    return json.dumps(doc, indent=2) + "\n"


def _json_apply(obj: dict[str, Any], rep: Repair) -> None:
    rules = obj["rules"]
    for change in rep.stage_changes:
        target = obj if change.rule is None else rules[change.rule]
        target["omitStages"] = [s for s in target.get("omitStages") or [] if s not in change.removed]
        if not target["omitStages"]:
            del target["omitStages"]
    for ins in sorted(rep.insertions, key=lambda i: i.index):
        rules.insert(ins.index, rule_mapping(ins.rule))


def same_policy(a: Policy, b: Policy) -> bool:
    return a.rules == b.rules and tuple(a.omit_stages) == tuple(b.omit_stages)


def stage_changes_text(changes: tuple[StageChange, ...]) -> list[str]:
    return [c.explain() for c in changes]
