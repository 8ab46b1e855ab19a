"""The ConfigMap matchCondition cannot be dodged by spelling (docs/chart.md "What the condition sends").

A value that decodes to ``audit.k8s.io`` (or ``kube-apiserver``) without those bytes in its raw
text must still reach the webhook; ordinary ConfigMaps must not, and the condition must stay
within kube-apiserver's CEL cost limit on the largest ConfigMap (1 MiB), or the apiserver refuses
the write (failurePolicy Fail).  The condition is evaluated by ``tests/chart/test_chart.py``'s
translator, with cel-go's runtime cost of the string functions.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.chart.test_chart import CelCost, evaluate, helm, render, webhooks  # noqa: F401 (helm: a fixture)
from tests.support.tools import REPO
from webhook.core.documents import discover, worth_decoding
from webhook.core.yamlsafe import load_all

DATA = REPO / "tests" / "data"
TYPICAL = [d for d in yaml.safe_load_all((DATA / "configmaps" / "typical.yaml").read_text(encoding="utf-8")) if d]
CORPUS = sorted((DATA / "corpus").glob("*/*.yaml"))
PER_CALL_LIMIT = 1_000_000  # k8s.io/apiserver/pkg/apis/cel/config.go PerCallLimit
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def condition(helm: Path) -> str:  # noqa: F811
    [cond] = webhooks(render(helm))["configmaps.auditwarden.io"]["matchConditions"]
    expression: str = cond["expression"]
    return expression


def cm(data: dict[str, str], name: str = "x") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "team-a"}, "data": data}


def sent(condition: str, obj: dict[str, Any]) -> bool:
    """CREATE, DELETE and both directions of an UPDATE agree."""
    other = cm({"color": "blue"})
    answers = {evaluate(condition, obj, None), evaluate(condition, None, obj),
               evaluate(condition, obj, other), evaluate(condition, other, obj)}  # fmt: skip
    assert len(answers) == 1, answers
    return answers.pop()


POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n"


def spellings(text: str, marker: str = "audit.k8s.io") -> dict[str, str]:
    """``text`` with ``marker`` written in every way YAML or JSON can hide it from a substring test.

    The documents are first written with every scalar double-quoted (keys too), so that an escape
    may stand wherever the marker does; each spelling decodes to exactly those documents.
    """
    docs = list(yaml.safe_load_all(text))
    quoted = yaml.safe_dump_all(docs, default_style='"', width=10**9, allow_unicode=True, sort_keys=False)
    first = f"{ord(marker[0]):04x}"

    def binary(tag: str) -> str:
        def encode(m: re.Match[str]) -> str:
            decoded = yaml.safe_load('"' + m.group(1) + '"')
            return tag + " " + base64.b64encode(decoded.encode()).decode()

        return re.sub(r'"((?:[^"\\]|\\.)*' + re.escape(marker) + r'(?:[^"\\]|\\.)*)"', encode, quoted)

    hexed = marker.replace(".", "\\x2e").replace("-", "\\x2d")
    # An implicit key is one line: a key keeps the hex escape in the line-break spellings.
    keys_hexed = re.sub(r'"((?:[^"\\]|\\.)*)":', lambda m: '"' + m.group(1).replace(marker, hexed) + '":', quoted)
    out = {
        "hex": quoted.replace(marker, hexed),
        "unicode": quoted.replace(marker, "\\u" + first + marker[1:]),
        "long unicode": quoted.replace(marker, "\\U0000" + first + marker[1:]),
        "continuation": keys_hexed.replace(marker, marker[:5] + "\\\n " + marker[5:]),
        "crlf": keys_hexed.replace(marker, marker[:5] + "\\\r\n " + marker[5:]),
        "binary tag": binary("!!binary"),
        "verbatim tag": binary("!<tag:yaml.org,2002:binary>"),
        "%TAG": "%TAG !t! tag:yaml.org,2002:\n---\n" + binary("!t!binary"),
    }
    if len(docs) == 1:
        out["json"] = json.dumps(docs[0], default=str).replace(marker, "\\u" + first + marker[1:])
    expected = load_all(quoted)
    for how, value in out.items():
        assert marker not in value, how
        assert load_all(value) == expected if how != "json" else load_all(value) == expected[:1], how
    return out


@pytest.mark.parametrize("how", sorted(spellings(POLICY)))
def test_every_spelling_of_a_policy_reaches_the_webhook(condition: str, how: str) -> None:
    value = spellings(POLICY)[how]
    assert [d.kind for d in discover(cm({"policy.yaml": value})).documents] == ["audit-policy"]
    assert sent(condition, cm({"policy.yaml": value}))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_file_that_reaches_the_webhook_does_so_in_every_spelling(condition: str, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if not sent(condition, cm({"f.yaml": text})):
        pytest.skip("not sent in plain form either (judged when labelled)")
    for marker in ("audit.k8s.io", "kube-apiserver"):
        if marker not in text:
            continue
        for how, value in spellings(text, marker).items():
            if "audit.k8s.io" in value or "kube-apiserver" in value:
                continue  # the other marker is still there in plain text
            assert sent(condition, cm({"f.yaml": value})), how


ORDINARY = {
    "script with escapes": '#!/bin/sh\nprintf "%s\\n\\t" "$1" | sed -e "s/\\./-/g"\n',
    "shell continuations": "exec /bin/server \\\n  --port=8080 \\\n  --verbose\n",
    "nginx regex": "location ~ \\.php$ {\n  fastcgi_pass 127.0.0.1:9000;\n}\n",
    "haproxy escaped spaces": "tcp-check send SENTINEL\\ get-master-addr-by-name\\ mymaster\\r\\n\n",
    "shebang and negation": "#!/usr/bin/env bash\nif ! test -f x; then exit 1; fi\n",
    "json with quotes": '{"expr": "sum(rate(x{job=\\"kubelet\\"}[5m]))"}',
}


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_ordinary_values_with_backslashes_stay_away_from_the_webhook(condition: str, name: str) -> None:
    assert not sent(condition, cm({"v": ORDINARY[name]}))


def test_typical_configmaps_sent_to_the_webhook(condition: str) -> None:
    """The measured figure of docs/chart.md: 2 of the 60, both fluentd configurations that name
    kube-apiserver in plain text, as before the escape tests were added."""
    names = [d["metadata"]["name"] for d in TYPICAL if sent(condition, d)]
    assert len(TYPICAL) == 60
    assert names == ["fluentd-gcp-config-old-v1.2.5", "fluentd-gcp-config-v1.2.5"]
    assert all("kube-apiserver" in "".join(d["data"].values()) for d in TYPICAL if d["metadata"]["name"] in names)


def test_a_large_configmap_with_backslashes_is_sent_whole(condition: str) -> None:
    """Beyond 192 KiB (size times number of values) the precise tests would exceed the cost limit."""
    script = ORDINARY["shell continuations"] * (200 * 1024 // len(ORDINARY["shell continuations"]))
    assert sent(condition, cm({"run.sh": script}))
    assert not sent(condition, cm({"run.sh": "x = 1\n" * (200 * 1024 // 6)}))
    # CEL also charges every step of the loop over the values: more than 2048, and a backslash is enough.
    assert sent(condition, cm({f"k{i}": "a\\b" if i == 2048 else "x" for i in range(2049)}))
    assert not sent(condition, cm({f"k{i}": "a\\b" for i in range(2048)}))


def cost(condition: str, new: dict[str, Any] | None, old: dict[str, Any] | None) -> int:
    tracker = CelCost()
    evaluate(condition, new, old, tracker)
    return tracker.total


def worst_cases() -> dict[str, dict[str, Any]]:
    """ConfigMaps that make every string test of the condition run (nothing is sent early)."""
    ordinary = "if ! a; then b; fi # x\\y\n"  # a backslash and a '!', no escape that hides anything
    filler = ordinary * (MIB // len(ordinary))
    return {
        "1 MiB in one value": cm({"v": filler[: MIB - 64]}),
        "1 MiB in 4 values": cm({f"v{i}": filler[: MIB // 4 - 64] for i in range(4)}),
        "192 KiB in one value": cm({"v": filler[: 192 * 1024 - 1]}),
        "192 KiB in 48 values": cm({f"v{i}": filler[: 4096 - 64] for i in range(48)}),
        "190 KiB in 2048 values": cm({f"v{i}": filler[:95] for i in range(2048)}),
        "1 MiB without backslashes": cm({"v": "x = 1\n" * (MIB // 6 - 20)}),
    }


@pytest.mark.parametrize("case", sorted(worst_cases()))
def test_an_update_of_the_largest_configmaps_stays_within_the_cel_cost_limit(condition: str, case: str) -> None:
    obj = worst_cases()[case]
    assert sum(len(v) for v in obj["data"].values()) <= MIB
    spent = cost(condition, obj, obj)  # an UPDATE evaluates both objects when neither is sent
    assert spent < 0.75 * PER_CALL_LIMIT, spent


# Every way a double-quoted YAML scalar can write one character of a marker.
_CHAR_FORMS = (
    lambda c: c,
    lambda c: f"\\x{ord(c):02x}",
    lambda c: f"\\u{ord(c):04X}",
    lambda c: f"\\U{ord(c):08x}",
)
_BREAKS = ("\\\n", "\\\r\n", "\\\n   \\\n  ", "\\\u2028", "\\\x85")


@settings(max_examples=200, deadline=None)
@given(data=st.data(), marker=st.sampled_from(["audit.k8s.io", "kube-apiserver"]))
def test_a_marker_written_with_any_mix_of_escapes_and_breaks_is_seen(condition: str, data: Any, marker: str) -> None:
    body = ""
    for i, ch in enumerate(marker):
        body += data.draw(st.sampled_from(_CHAR_FORMS))(ch)
        if i < len(marker) - 1 and data.draw(st.booleans()):
            body += data.draw(st.sampled_from(_BREAKS))
    value = f'apiVersion: "{body}/v1"\nkind: Policy\nrules:\n- level: None\n'
    assert load_all(value)[0]["apiVersion"] == f"{marker}/v1"  # the marker, to a YAML reader
    assert worth_decoding(value)
    assert sent(condition, cm({"policy.yaml": value}))
