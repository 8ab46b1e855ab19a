"""Where a finding sits in its file, for SARIF: the line of the offending rule or flag, a
fingerprint that survives edits elsewhere in the file, and the repair as SARIF ``fixes``.

Rules are found by the positions ``ruamel.yaml`` records (:func:`webhook.fixedit.locate`);
flags by their name on a line of the document; anything else points at the document's first line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from webhook.core.findings import Finding
from webhook.fixedit import EditError, Located, locate, splice_edits

_FLAG = re.compile(r"--([a-z][a-z0-9-]+)")
_COMMAND = re.compile(
    r"^\s*-\s*[\"']?(\S*/)?kube-apiserver[\"']?\s*$"  # a command's first word
    r"|^\s*(kube-apiserver-arg|extraArgs|kubeAPIServer):"  # k3s/RKE2, kubeadm, kops
)


@dataclass(frozen=True)
class Place:
    line: int  # 1-based
    subject: str  # what the finding is about, stable across unrelated edits (for the fingerprint)


class FileLocator:
    """Locations within one file's text (``path`` as ``check`` names it)."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.lines = text.splitlines()
        try:
            self.policies = {loc.source: loc for loc in locate(text, path)}
        except EditError:
            self.policies = {}

    def policy_at(self, source: str) -> Located | None:
        if source in self.policies:
            return self.policies[source]
        if " --audit-policy-file=" in source:  # kops: the policy of spec.fileAssets
            base = source.split(" --audit-policy-file=")[0]
            return next((p for s, p in self.policies.items() if s.startswith(f"{base}#spec.fileAssets")), None)
        return None

    def _policy_line(self, loc: Located, rule: int | None) -> tuple[int, str] | None:
        """0-based line of rule ``rule`` (or of the policy) and the rule's text, in the file."""
        if loc.node is not None:
            return _rule_line(loc.node, rule)
        if loc.inner and loc.inner[0].node is not None and isinstance(loc.holder, CommentedMap | CommentedSeq):
            found = _rule_line(loc.inner[0].node, rule)
            if found is None:
                return None
            vl = loc.holder.lc.value(loc.key)[0] if isinstance(loc.holder, CommentedMap) else loc.holder.lc.item(
                loc.key
            )[0]
            return vl + 1 + found[0], found[1]
        return None

    def place(self, source: str, finding: Finding) -> Place:
        loc = self.policy_at(source)
        if loc is not None:
            found = self._policy_line(loc, finding.rule)
            if found is not None:
                return Place(found[0] + 1, f"{source}|{found[1]}")
        flag = _FLAG.search(finding.message)
        if flag:
            name = flag.group(1)
            for i, line in enumerate(self.lines):
                if f"--{name}" in line:
                    return Place(i + 1, f"{source}|--{name}")
            for i, line in enumerate(self.lines):
                if not line.lstrip().startswith("#") and re.search(rf"(^|[\s\"'-]){re.escape(name)}\b", line):
                    return Place(i + 1, f"{source}|--{name}")
            # A flag that is missing: the apiserver's command (or the block of its arguments).
            for i, line in enumerate(self.lines):
                if _COMMAND.search(line):
                    return Place(i + 1, f"{source}|--{name}")
        return Place(self._document_line(source), source)

    def _document_line(self, source: str) -> int:
        m = re.match(re.escape(self.path) + r":(\d+)", source)
        if not m:
            return 1
        wanted, seen = int(m.group(1)), 1
        if wanted == 1:
            return 1
        for i, line in enumerate(self.lines):
            if line.startswith("---"):
                seen += 1
                if seen == wanted:
                    return i + 2 if i + 1 < len(self.lines) else i + 1
        return 1

    def fixes(self, repairs: Callable[[Located], Any]) -> list[dict[str, Any]]:
        """The repair as SARIF ``replacements`` (empty when it cannot be spliced)."""
        try:
            edits = splice_edits(self.text, self.path, repairs)
        except EditError:
            return []
        if not edits:
            return []
        # One replacement per place (insertions at one line, in their order), as SARIF wants
        # replacements that do not overlap.
        merged: list[tuple[int, int, list[str]]] = []
        for start, end, new in sorted(edits, key=lambda e: e[0]):
            if merged and merged[-1][0] == merged[-1][1] == start:
                merged[-1] = (start, end, merged[-1][2] + new)
            else:
                merged.append((start, end, list(new)))
        out = []
        for start, end, new in merged:
            out.append(
                {
                    "deletedRegion": {"startLine": start + 1, "startColumn": 1, "endLine": end + 1, "endColumn": 1},
                    "insertedContent": {"text": "".join(new)},
                }
            )
        return out


def _rule_line(node: CommentedMap, rule: int | None) -> tuple[int, str] | None:
    rules = node.get("rules")
    if rule is not None and isinstance(rules, CommentedSeq) and 0 <= rule < len(rules):
        return rules.lc.item(rule)[0], _canonical(rules[rule])
    if rule is None and "omitStages" in node:
        return node.lc.key("omitStages")[0], "omitStages"
    if "rules" in node:
        return node.lc.key("rules")[0], "rules"
    return None


def _canonical(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_canonical(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return str(value)


def fingerprint(rule_id: str, uri: str, subject: str, message: str) -> str:
    """Stable across line shifts: the finding's code, file, subject (the rule's content, the flag's
    name) and the start of its message with numbers masked (rule indexes and counts move)."""
    head = re.sub(r"\d+", "#", message)[:60]
    digest = hashlib.sha256(f"{rule_id}\0{uri}\0{subject.removeprefix(uri)}\0{head}".encode()).hexdigest()
    return f"{digest[:32]}:1"
