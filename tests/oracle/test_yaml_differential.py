"""Differential test: YAML scalars and documents are read exactly as kube-apiserver reads them.

Hypothesis writes audit policies by hand (not with a YAML dumper, which would quote the
interesting cases) and puts a plain scalar of every syntax — bool words in every case,
numbers with signs, exponents, base prefixes, underscores and dots, colons (sexagesimal),
dates and times, ``~``, ``=``, ``<<``, ``.inf``/``.nan``, explicit tags — into every string,
bool and list position of a policy and of its ObjectMeta.  Each text goes to the Go oracle
(tests/oracle/main.go: ``sigs.k8s.io/yaml.YAMLToJSON`` and k8s.io/apiserver's
``LoadPolicyFromBytes``) and to auditwarden (``yamlsafe.load_first``, ``policy.load_policy``);
they must agree on whether the YAML converts, on the JSON it converts to, on whether the
policy loads, and on every decoded field.  Cases go to the oracle in batches (one round trip
a batch); CI runs at least 5,000 cases (``AUDITWARDEN_YAML_DIFF_CASES``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from webhook.core.policy import Policy, PolicyError, load_policy
from webhook.core.yamlsafe import DocumentError, load_first

# Slow (a few minutes for 5,000 cases): kept out of the fast inner loop, run by the full suite.
pytestmark = pytest.mark.e2e

CASES = int(os.environ.get("AUDITWARDEN_YAML_DIFF_CASES", "5000"))
BATCH = 25

BOOL_WORDS = ["y", "yes", "true", "on", "n", "no", "false", "off", "t", "f", "ye", "nope"]
SPECIAL = ["~", "null", "Null", "NULL", "nULL", "=", "<<", "<", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", ".NAN",
           ".iNf", "", "-", "+", ".", "..", "0", "-0", "+0", "00", "0x", "0b", "0o", "_", "__"]  # fmt: skip
TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!timestamp", "!foo", "!"]


def _cased(word: str, mask: int) -> str:
    return "".join(c.upper() if mask >> i & 1 else c.lower() for i, c in enumerate(word))


CASED_WORD = st.tuples(st.sampled_from(BOOL_WORDS), st.integers(0, 255)).map(lambda t: _cased(*t))
SIGN = st.sampled_from(["", "", "+", "-"])
PREFIX = st.sampled_from(["", "", "", "0", "0x", "0X", "0o", "0O", "0b", "0B"])
HEX_DIGITS = st.text("0123456789abcdefABCDEF_", max_size=6)
DEC_DIGITS = st.text("0123456789_", max_size=5)
FRAC = st.sampled_from(["", "", "", ".", ".5", ".05_0", ".e1"])
EXP = st.sampled_from(["", "", "", "e3", "E5", "e+2", "e-3", "e", "e400", "E-400", "e1_0"])
COLON = st.sampled_from(["", "", "", "", ":20", ":20:30", ":5.5"])
BIG = st.sampled_from(["", "", "", "", "", "9223372036854775808", "18446744073709551616"])
NUMBER = st.tuples(SIGN, PREFIX, HEX_DIGITS, DEC_DIGITS, BIG, FRAC, EXP, COLON).map(
    lambda t: t[0] + t[1] + (t[2] if t[1] else t[3]) + "".join(t[4:])
)
DATE = st.tuples(
    st.sampled_from(["2001", "1999", "201", "20011"]),
    st.sampled_from(["1", "01", "12", "13", "0"]),
    st.sampled_from(["1", "14", "31", "30", "32"]),
    st.sampled_from(["", "", "T21:59:43Z", "t21:59:43.10-05:00", " 21:59:43.10", "T25:00:00Z", "T21:59:43+01:00",
                     " 1:2:3", "T1:2:3Z", "T21:59:43.10 -5"]),
).map(lambda t: f"{t[0]}-{t[1]}-{t[2]}{t[3]}")  # fmt: skip
PLAIN = st.one_of(
    CASED_WORD,
    st.sampled_from(SPECIAL),
    NUMBER,
    DATE,
    st.text("0123456789+-._:eExXoObB~=<yYnN", min_size=1, max_size=7),
    st.sampled_from(["get", "pods", "kube-system", "Metadata", "RequestReceived", "/api*", "system:nodes"]),
)
SCALAR = st.one_of(
    PLAIN,
    PLAIN,
    PLAIN,
    st.tuples(st.sampled_from(TAGS), PLAIN).map(lambda t: f"{t[0]} {t[1]}".rstrip()),
    st.sampled_from(["!!binary eQ==", "!!binary Z2V0", "!!binary a", "!!binary cG9k\\ncw=="]),
    PLAIN.map(json.dumps),
).filter(lambda text: _safe_in_flow(text))


def _safe_in_flow(text: str) -> bool:
    """Keep scalars that stay one scalar inside ``[...]`` (no ``,``/``]``, no ``: `` or ``#``)."""
    return not any(c in text for c in ",[]{}#&*|>%@`'") and ": " not in text and not text.endswith(":")


LIST_FIELDS = ["users", "userGroups", "verbs", "namespaces", "nonResourceURLs", "omitStages"]


GOOD = {
    "level": ["Metadata", "None", "Request", "RequestResponse"],
    "users": ["alice", "system:kube-proxy", '"*"'], "userGroups": ["system:nodes", "devs"],
    "verbs": ["get", "list", "watch", "create"], "namespaces": ["kube-system", "default", "team-a"],
    "omitStages": ["RequestReceived", "ResponseStarted", "Panic"], "group": ["", "apps", "rbac.authorization.k8s.io"],
    "resources": ["secrets", "pods/log", "'*'"], "resourceNames": ["web-0", "db"], "bool": ["true", "false"],
    "meta": ["p", "2024-01-01T00:00:00Z", "1", "x"],
}  # fmt: skip
GOOD_OR_ANY = {
    field: st.tuples(st.sampled_from([True] * 6 + [False]), st.sampled_from(values), SCALAR).map(
        lambda t: t[1] if t[0] else t[2]
    )
    for field, values in GOOD.items()
}


@st.composite
def policy_text(draw: st.DrawFn) -> str:
    """A hand-written policy with generated plain scalars in string, bool and list positions.

    Most scalars are ordinary values for their field, so that enough policies load for their
    decoded values to be compared too; every policy still holds a few generated scalars.
    """
    s = SCALAR
    lines = []
    api = draw(st.sampled_from(["audit.k8s.io/v1"] * 6 + ["<s>"]))
    lines.append(f"apiVersion: {draw(s) if api == '<s>' else api}")
    lines.append(f"kind: {draw(s) if draw(st.integers(0, 8)) == 0 else 'Policy'}")
    if draw(st.integers(0, 3)) == 0:
        meta = draw(st.sampled_from(["name", "namespace", "generation", "creationTimestamp", "labels",
                                     "annotations", "finalizers", "ownerReferences", "uid"]))  # fmt: skip
        if meta in ("labels", "annotations"):
            lines.append(f"metadata:\n  {meta}:\n    {draw(s) or 'k'}: {draw(s)}")
        elif meta == "finalizers":
            lines.append(f"metadata:\n  {meta}: [{draw(s)}]")
        elif meta == "ownerReferences":
            lines.append(f"metadata:\n  {meta}: [{{uid: {draw(s)}, controller: {draw(s)}}}]")
        else:
            lines.append(f"metadata:\n  {meta}: {draw(GOOD_OR_ANY['meta'])}")
    if draw(st.integers(0, 4)) == 0:
        lines.append(f"omitManagedFields: {draw(GOOD_OR_ANY['bool'])}")
    if draw(st.integers(0, 5)) == 0:
        lines.append(f"omitStages: [{draw(GOOD_OR_ANY['omitStages'])}]")
    lines.append("rules:")
    for _ in range(draw(st.integers(1, 3))):
        level = draw(GOOD_OR_ANY["level"])
        lines.append(f"- level: {level}")
        for field in draw(st.lists(st.sampled_from(LIST_FIELDS), max_size=2, unique=True)):
            if field == "nonResourceURLs":
                continue  # kept apart from resources/namespaces below
            items = draw(st.lists(GOOD_OR_ANY[field], min_size=1, max_size=3))
            if draw(st.booleans()):
                lines.append(f"  {field}: [{', '.join(items)}]")
            else:
                lines.append(f"  {field}:\n" + "".join(f"  - {i}\n" for i in items).rstrip("\n"))
        if draw(st.integers(0, 2)) == 0:
            group, resource = draw(GOOD_OR_ANY["group"]), draw(GOOD_OR_ANY["resources"])
            lines.append(f"  resources:\n  - group: {group}\n    resources: [{resource}, pods]")
            if draw(st.booleans()):
                lines.append(f"    resourceNames: [{draw(GOOD_OR_ANY['resourceNames'])}]")
        if draw(st.integers(0, 3)) == 0:
            lines.append(f"  omitManagedFields: {draw(GOOD_OR_ANY['bool'])}")
        if draw(st.integers(0, 6)) == 0:
            lines.append(f"  {draw(s) or 'k'}: {draw(s)}")  # an unknown (or scalar-typed) key
    return "\n".join(lines) + "\n"


def canonical(value: Any) -> Any:
    """Compare JSON values by JSON type (Python's True == 1 must not hide a bool/number split)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return ("number", float(value) if math.isfinite(float(value)) else repr(value))
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return {k: canonical(v) for k, v in value.items()}


LIST_KEYS = ("Users", "UserGroups", "Verbs", "Namespaces", "NonResourceURLs", "OmitStages")


def decoded_view(policy: Policy) -> dict[str, Any]:
    """Our policy in the shape of the oracle's marshalled internal Policy (nil and [] alike)."""
    rules = []
    for r in policy.rules:
        lists = (r.users, r.user_groups, r.verbs, r.namespaces, r.non_resource_urls, r.omit_stages)
        rule: dict[str, Any] = {key: list(values) for key, values in zip(LIST_KEYS, lists, strict=True)}
        rule["Level"], rule["OmitManagedFields"] = r.level, r.omit_managed_fields
        rule["Resources"] = [
            {"Group": g.group, "Resources": list(g.resources), "ResourceNames": list(g.resource_names)}
            for g in r.resources
        ]
        rules.append(rule)
    return {"OmitStages": list(policy.omit_stages), "OmitManagedFields": policy.omit_managed_fields, "Rules": rules}


def upstream_view(decoded: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for r in decoded["Rules"]:
        rule: dict[str, Any] = {key: list(r[key] or []) for key in LIST_KEYS}
        rule["Level"], rule["OmitManagedFields"] = r["Level"], r["OmitManagedFields"]
        rule["Resources"] = [
            {"Group": g["Group"], "Resources": list(g["Resources"] or []),
             "ResourceNames": list(g["ResourceNames"] or [])}
            for g in r["Resources"] or []
        ]
        rules.append(rule)
    return {"OmitStages": list(decoded["OmitStages"] or []), "OmitManagedFields": decoded["OmitManagedFields"],
            "Rules": rules}  # fmt: skip


@pytest.fixture(scope="module")
def oracle() -> Iterator[Any]:
    from tests.support.oracle import Oracle

    with Oracle() as o:
        yield o


COUNTER = {"cases": 0, "yaml_ok": 0, "policy_valid": 0}


# No shrinking: a batch of 25 shrinks for minutes; the assertion prints the one text that differs.
@settings(max_examples=max(1, CASES // BATCH), deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # fmt: skip
@given(texts=st.lists(policy_text(), min_size=BATCH, max_size=BATCH))
def test_auditwarden_reads_yaml_as_kube_apiserver_does(oracle: Any, texts: list[str]) -> None:
    questions: list[dict[str, Any]] = []
    for text in texts:
        questions += [{"yaml": text}, {"policy": text, "requests": [], "validateOnly": False}]
    answers = oracle.ask_many(questions)
    for i, text in enumerate(texts):
        to_json, loaded = answers[2 * i], answers[2 * i + 1]
        COUNTER["cases"] += 1
        try:
            ours_doc, ours_err = load_first(text), None
        except DocumentError as err:
            ours_doc, ours_err = None, str(err)
        assert (ours_err is None) == (to_json["json"] is not None), (
            f"YAML→JSON validity differs: upstream {to_json['error']!r}, ours {ours_err!r}\n{text}"
        )
        if ours_err is None:
            COUNTER["yaml_ok"] += 1
            assert canonical(ours_doc) == canonical(json.loads(to_json["json"])), f"decoded values differ\n{text}"
        try:
            policy, policy_err = load_policy(text), None
        except PolicyError as err:
            policy, policy_err = None, str(err)
        assert (policy is not None) == loaded["valid"], (
            f"policy validity differs: upstream {loaded['error']!r}, ours {policy_err!r}\n{text}"
        )
        if policy is not None:
            COUNTER["policy_valid"] += 1
            assert decoded_view(policy) == upstream_view(loaded["decoded"]), f"decoded policy differs\n{text}"


def test_enough_yaml_cases_ran() -> None:
    """Runs after the property test in file order: proves the differential run was not vacuous."""
    assert COUNTER["cases"] >= min(CASES, 5000)
    assert COUNTER["yaml_ok"] >= COUNTER["cases"] // 2
    assert COUNTER["policy_valid"] >= COUNTER["cases"] // 5
    print(f"yaml differential: {COUNTER}")
