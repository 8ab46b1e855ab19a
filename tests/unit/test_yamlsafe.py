"""Bounded YAML loading (webhook/core/yamlsafe.py): hostile input is refused quickly and
in-process, never by crashing or hanging; ordinary input loads the way Kubernetes reads it."""

from __future__ import annotations

import time

import pytest

from webhook.core import yamlsafe
from webhook.core.yamlsafe import MAX_DEPTH, DocumentError, load_all, load_one

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


# ----------------------------------------------------------------- alias expansion


def test_a_billion_laughs_alias_bomb_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(DocumentError, match="aliasing"):
        load_all(BILLION_LAUGHS)
    assert time.perf_counter() - started < 2.0


def test_a_billion_laughs_bomb_given_as_bytes_is_refused_too() -> None:
    with pytest.raises(DocumentError):
        load_all(BILLION_LAUGHS.encode())


def test_a_recursive_alias_is_refused_not_walked_forever() -> None:
    with pytest.raises(DocumentError):
        load_all("a: &a [*a]\n")


def test_a_recursive_mapping_alias_is_refused() -> None:
    with pytest.raises(DocumentError):
        load_all("&a {x: *a}\n")


def test_modest_alias_use_still_loads() -> None:
    docs = load_all("base: &b {level: Metadata}\nrules: [*b, *b]\n")
    assert docs == [{"base": {"level": "Metadata"}, "rules": [{"level": "Metadata"}, {"level": "Metadata"}]}]


# -------------------------------------------------------------------------- depth


def test_100k_deep_flow_sequence_nesting_is_refused_in_process_without_crashing() -> None:
    depth = 100_000
    with pytest.raises(DocumentError, match="nested deeper"):
        load_all("[" * depth + "]" * depth)


@pytest.mark.parametrize("depth", [101, 1_000, 3_000])
def test_flow_nesting_past_the_limit_is_refused_as_too_deep_whatever_libyaml_says(depth: int) -> None:
    # 101 is caught by the walk after loading; 1,000 and 3,000 by the event scan, or, with the
    # libyaml of PyYAML 6.0.4 on, by libyaml's own "exceeded maximum nesting depth": same reason.
    with pytest.raises(DocumentError, match="nested deeper than 100 levels"):
        load_all("[" * depth + "]" * depth)


def test_100k_deep_flow_mapping_nesting_is_refused() -> None:
    depth = 100_000
    with pytest.raises(DocumentError, match="nested deeper"):
        load_all("{a: " * depth + "}" * depth)


def test_100k_deep_unclosed_nesting_is_refused() -> None:
    with pytest.raises(DocumentError):
        load_all("[" * 100_000)


def test_100k_deep_block_sequence_nesting_on_one_line_is_refused() -> None:
    with pytest.raises(DocumentError, match="nested deeper"):
        load_all("- " * 100_000 + "x\n")


def test_nesting_up_to_the_limit_loads() -> None:
    docs = load_all("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert isinstance(docs[0], list)


def test_nesting_just_beyond_the_limit_is_refused_whether_or_not_the_text_has_anchors() -> None:
    deep = "[" * (MAX_DEPTH + 50) + "]" * (MAX_DEPTH + 50)
    with pytest.raises(DocumentError):
        load_all("a: &x 1\nb: " + deep)  # refused today (the anchor triggers the walk)
    with pytest.raises(DocumentError):
        load_all("b: " + deep)  # accepted today


# ------------------------------------------------------------------------ scalars


def test_timestamps_stay_strings_as_after_kubernetes_yaml_to_json() -> None:
    assert load_one("created: 2024-01-01\nat: 2001-12-14t21:59:43.10-05:00\n") == {
        "created": "2024-01-01",
        "at": "2001-12-14t21:59:43.10-05:00",
    }


def test_yaml_1_1_booleans_and_integers_resolve_as_in_kubernetes() -> None:
    assert load_one("a: true\nb: yes\nc: 30\nd: '30'\n") == {"a": True, "b": True, "c": 30, "d": "30"}


# ------------------------------------------------------------------------ encoding


def test_non_utf8_bytes_are_refused() -> None:
    with pytest.raises(DocumentError, match="UTF-8"):
        load_all(b"rules:\n- level: \xff\xfe\n")


def test_utf8_bytes_load() -> None:
    assert load_one("name: caf\u00e9\n".encode()) == {"name": "caf\u00e9"}


def test_text_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(DocumentError, match="larger"):
        load_all(b" " * (yamlsafe.MAX_TEXT_BYTES + 1))


# ----------------------------------------------------------------------- documents


def test_invalid_yaml_is_a_document_error_with_one_line() -> None:
    with pytest.raises(DocumentError, match="invalid YAML") as info:
        load_all("a: [1, 2\n")
    assert "\n" not in str(info.value)


def test_unhashable_keys_are_a_document_error_not_a_crash() -> None:
    with pytest.raises(DocumentError):
        load_all("? [a, b]\n: c\n")


def test_multi_document_streams_keep_empty_documents_as_none() -> None:
    assert load_all("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, None, {"b": 2}]


def test_load_one_refuses_two_documents() -> None:
    with pytest.raises(DocumentError, match="expected one"):
        load_one("a: 1\n---\nb: 2\n")


def test_load_one_of_an_empty_text_is_none() -> None:
    assert load_one("") is None
    assert load_one("# only a comment\n") is None
