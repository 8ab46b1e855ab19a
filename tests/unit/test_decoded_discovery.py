"""ConfigMap discovery by decoded content (README "What auditwarden looks at").

A ConfigMap value is audit configuration when its *decoded* YAML or JSON is: ``apiVersion:
"audit\\x2ek8s.io/v1"`` is ``audit.k8s.io/v1`` to anything that reads the value as YAML (a node-side
sync of the policy file, kube-apiserver itself), so it is a policy to auditwarden too, and the same
policy as its plain spelling.  Unlabelled ConfigMaps that carry audit configuration are told to
carry the ``auditwarden.io/kind`` label; ``requireKindLabel`` makes that a violation.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from webhook.context import build_context
from webhook.core.documents import discover, worth_decoding
from webhook.core.precheck import is_relevant
from webhook.core.verdict import Context, Verdict, judge
from webhook.core.yamlsafe import load_first

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "policies"
LABEL = {"auditwarden.io/kind": "audit-policy"}

GOOD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
WEAK = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n"

# The same documents, with the group spelt so that the raw text does not contain "audit.k8s.io".
PLAIN = "apiVersion: audit.k8s.io/v1"
BASE64_GROUP = base64.b64encode(b"audit.k8s.io/v1").decode()
SPELLINGS = {
    "hex escape": lambda text: text.replace(PLAIN, 'apiVersion: "audit\\x2ek8s.io/v1"'),
    "unicode escape": lambda text: text.replace(PLAIN, 'apiVersion: "audit\\u002ek8s.io/v1"'),
    "line continuation": lambda text: text.replace(PLAIN, 'apiVersion: "audit.k8s\\\n  .io/v1"'),
    "binary tag": lambda text: text.replace(PLAIN, "apiVersion: !!binary " + BASE64_GROUP),
    "JSON escape": lambda text: json.dumps(load_first(text)).replace("audit.k8s.io", "audit\\u002ek8s.io"),
}


def escaped(text: str, how: str = "hex escape") -> str:
    out = SPELLINGS[how](text)
    assert "audit.k8s.io" not in out, "the spelling must hide the literal group"
    assert load_first(out) == load_first(text), "and decode to the same document"
    return out


def ctx(**kw: Any) -> Context:
    return build_context(**kw)


def configmap(text: str, *, labels: dict[str, str] | None = None, key: str = "policy.yaml") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "audit-policy", "namespace": "kube-system"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {key: text}}


def update(new: str, old: str, mode: str = "enforce", context: Context | None = None, **kw: Any) -> Verdict:
    return judge(configmap(new, **kw), configmap(old, **kw), operation="UPDATE", mode=mode,  # type: ignore[arg-type]
                 context=context or ctx())  # fmt: skip


def create(text: str, mode: str = "enforce", context: Context | None = None, **kw: Any) -> Verdict:
    return judge(configmap(text, **kw), None, operation="CREATE", mode=mode, context=context or ctx())  # type: ignore[arg-type]


def codes(findings: tuple[Any, ...] | list[Any]) -> list[str]:
    return [f.code for f in findings]


# ------------------------------------------------------------------ the two measured cases


def test_an_update_to_the_escaped_form_of_the_same_policy_is_allowed_as_the_same_policy() -> None:
    v = update(escaped(GOOD), GOOD)
    plain = create(GOOD)
    assert v.allowed and v.decision == "allow"
    assert v.changes == ()  # nothing dropped, no category lost: the same policy
    assert v.categories == plain.categories and len(v.categories) == 6
    assert [r.key for r in v.results] == ["data[policy.yaml]"]


def test_an_update_from_the_escaped_good_policy_to_an_escaped_weak_one_is_denied_naming_the_categories() -> None:
    v = update(escaped(WEAK), escaped(GOOD))
    assert not v.allowed and v.decision == "deny"
    assert "categories-below-minimum" in codes(v.violations)
    below = next(f.message for f in v.violations if f.code == "categories-below-minimum")
    lost = next(f.message for f in v.changes if f.code == "category-lost")
    for category in ("authentication", "api-calls", "rbac-denials", "pod-creation", "secret-access", "rbac-changes"):
        assert category in below and category in lost


def test_a_create_of_an_escaped_weak_policy_is_denied() -> None:
    v = create(escaped(WEAK))
    assert not v.allowed and codes(v.violations) == ["categories-below-minimum"]


@pytest.mark.parametrize("how", sorted(SPELLINGS))
def test_every_spelling_of_a_policy_is_discovered_as_one(how: str) -> None:
    found = discover(configmap(escaped(WEAK, how)))
    assert [d.kind for d in found.documents] == ["audit-policy"]
    assert not create(escaped(WEAK, how)).allowed


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.name)
def test_each_corpus_policy_gets_the_same_verdict_in_escaped_form(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    hidden = re.sub(r"([\"']?)audit\.k8s\.io/(v\w+)\1", r'"audit\\x2ek8s.io/\2"', text)
    plain, disguised = create(text), create(hidden)
    assert "audit.k8s.io" not in hidden and plain.results, "a judged policy, now without the literal group"
    assert (disguised.decision, codes(disguised.violations), disguised.categories) == (
        plain.decision, codes(plain.violations), plain.categories,
    )  # fmt: skip
    assert codes(update(hidden, text).changes) == []


# ------------------------------------------------------------------ the label


def test_an_unlabelled_policy_configmap_is_told_to_carry_the_label() -> None:
    v = create(GOOD)
    assert v.allowed and codes(v.warnings) == ["label-missing"]
    assert "auditwarden.io/kind=audit-policy" in v.warnings[0].message


def test_a_labelled_policy_configmap_gets_no_label_warning() -> None:
    assert "label-missing" not in codes(create(GOOD, labels=LABEL).warnings)


def test_the_kubeadm_config_configmap_needs_no_label() -> None:
    cm = configmap("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n", key="ClusterConfiguration")
    cm["metadata"]["name"] = "kubeadm-config"
    found = discover(cm, require_label=True)
    assert [d.kind for d in found.documents] == ["kubeadm-config"]
    assert codes(found.warnings + found.violations) == []


def test_an_unlabelled_apiserver_manifest_is_told_to_carry_the_apiserver_config_label() -> None:
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec:\n  containers:\n"
           "  - name: kube-apiserver\n    command: [kube-apiserver]\n")  # fmt: skip
    found = discover(configmap(pod, key="pod.yaml"))
    assert [d.kind for d in found.documents] == ["apiserver-pod"]
    assert codes(found.warnings) == ["label-missing"] and "apiserver-config" in found.warnings[0].message


def test_with_require_kind_label_an_unlabelled_policy_configmap_is_refused_in_enforce() -> None:
    strict = ctx(require_kind_label=True)
    v = create(escaped(GOOD), context=strict)
    assert not v.allowed and codes(v.violations) == ["label-required"]
    assert create(GOOD, context=strict, labels=LABEL).allowed
    assert create(escaped(GOOD), mode="warn", context=strict).decision == "warn"


def test_with_require_kind_label_ratchet_lets_an_already_unlabelled_configmap_be_changed_but_not_created() -> None:
    strict = ctx(require_kind_label=True)
    assert update(escaped(GOOD), GOOD, mode="ratchet", context=strict).decision == "warn"
    assert not create(GOOD, mode="ratchet", context=strict).allowed


# ------------------------------------------------------------------ bounded cost


def test_a_value_without_a_marker_or_a_disguise_is_not_even_parsed() -> None:
    for value in ("server { listen 80; }", "color=blue\nsize=3", "apiVersion: v1\nkind: Pod\n"):
        assert not worth_decoding(value)
        assert not is_relevant("ConfigMap", configmap(value))


def test_a_value_that_may_hide_a_marker_is_relevant_to_the_webhook_pre_check() -> None:
    assert is_relevant("ConfigMap", configmap(escaped(GOOD)))
    assert is_relevant("ConfigMap", configmap(escaped(GOOD, "binary tag")))


def test_a_script_with_backslashes_is_decoded_and_left_alone() -> None:
    script = '#!/bin/sh\nprintf "a\\tb\\n" | sed -e "s/\\./-/g"\n'
    found = discover(configmap(script, key="run.sh"))
    assert (found.documents, found.violations, found.warnings, found.relevant) == ([], [], [], False)


def test_without_a_literal_marker_only_typed_documents_are_walked() -> None:
    # A bare rules document (no apiVersion/kind) is audit-policy-like only when its text says so.
    bare = 'rules:\n- level: "Non\\x65"\n'
    assert discover(configmap(bare)).documents == []
    # A typed document of another kind, escaped, is decoded and is nothing auditwarden judges.
    deployment = 'apiVersion: "apps/v1"\nkind: "Deploy\\x6dent"\nmetadata: {name: web}\n'
    assert discover(configmap(deployment)).documents == []


def test_the_label_recommendation_comes_after_the_content_warnings() -> None:
    text = GOOD.replace("- level: Metadata\n", '- level: Metadata\n  verbs: ["exec", "get"]\n')
    assert codes(create(text).warnings)[-2:] == ["rule-never-matches", "label-missing"]


def test_a_value_that_may_hide_a_policy_but_exceeds_the_load_bounds_cannot_be_vouched_for() -> None:
    deep = 'note: "a\\x2eb"\nx: ' + "[" * 150 + "]" * 150 + "\n"
    found = discover(configmap(deep, key="deep.yaml"))
    assert codes(found.violations) == ["content-unparseable"]
    assert "nested deeper than 100" in found.violations[0].message
