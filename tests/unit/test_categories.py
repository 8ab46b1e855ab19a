"""The packaged category catalog agrees with tests/data/spec/categories.yaml, and the corpus
policies get exactly the worked examples of tests/data/corpus/EXPECTED-categories.yaml."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.tools import DATA
from webhook.context import build_context, packaged_catalog
from webhook.core.categories import CatalogError, parse_catalog
from webhook.core.checker import User
from webhook.core.coverage import assess
from webhook.core.policy import PolicyError, load_policy

SPEC: dict[str, Any] = yaml.safe_load((DATA / "spec" / "categories.yaml").read_text())
EXPECTED: dict[str, Any] = yaml.safe_load((DATA / "corpus" / "EXPECTED-categories.yaml").read_text())


def _spec_probes() -> dict[str, dict[str, Any]]:
    probes = {}
    for cid, c in SPEC["categories"].items():
        for p in c["probes"]:
            probes[p["id"]] = {**p, "category": cid}
    for a in SPEC["advisories"]:
        probes[a["id"]] = {**a, "category": None}
    return probes


def _expected_stages(p: dict[str, Any]) -> frozenset[str]:
    principal = SPEC["principals"][p["principal"]]
    if principal["user"] is None:
        return frozenset({"ResponseStarted"})
    if p.get("longRunning"):
        return frozenset({"ResponseStarted", "ResponseComplete"})
    return frozenset({"ResponseComplete"})


def test_the_catalog_has_the_six_categories_in_spec_order() -> None:
    assert packaged_catalog().category_ids == tuple(SPEC["categories"])


@pytest.mark.parametrize("probe_id", list(_spec_probes()))
def test_each_probe_matches_the_spec(probe_id: str) -> None:
    spec = _spec_probes()[probe_id]
    catalog = packaged_catalog()
    ours = {p.id: (c.id, p) for c in catalog.categories for p in c.probes}
    ours |= {a.id: (None, a) for a in catalog.advisories}
    category, probe = ours[probe_id]
    assert category == spec["category"]
    principal = SPEC["principals"][spec["principal"]]
    a = probe.attributes
    assert a.user == (None if principal["user"] is None else User(principal["user"], tuple(principal["groups"])))
    assert (a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name, a.path) == (
        spec["verb"], spec.get("namespace", ""), spec.get("apiGroup", ""), spec.get("resource", ""),
        spec.get("subresource", ""), spec.get("name", ""), spec.get("path", ""),
    )  # fmt: skip
    assert a.is_resource_request == spec.get("isResourceRequest", True)
    assert probe.stages == _expected_stages(spec)
    if category is None:
        assert probe.warning == spec["warning"]


def test_there_are_25_category_probes_and_3_advisories() -> None:
    catalog = packaged_catalog()
    assert sum(len(c.probes) for c in catalog.categories) == 25
    assert len(catalog.advisories) == 3


@pytest.mark.parametrize("name", list(SPEC["profiles"]))
def test_profiles_match_the_spec(name: str) -> None:
    spec, ours = SPEC["profiles"][name], packaged_catalog().profiles[name]
    assert ours.min_categories == spec["minCategories"]
    assert list(ours.required_categories) == spec["requiredCategories"]
    assert ours.min_level == spec["minLevel"]
    want_stages = ["RequestReceived", "ResponseStarted", "ResponseComplete"] if spec.get("requireAllStages") else []
    assert list(ours.required_stages) == want_stages


def test_a_users_catalog_file_is_loadable(tmp_path: Any) -> None:
    text = """
apiVersion: auditwarden.io/v1
kind: CategoryCatalog
categories:
- id: secrets-only
  probes:
  - id: get-secret
    request: {user: {name: jane, groups: [system:authenticated]}, verb: get, resource: secrets, namespace: a}
    stages: [ResponseComplete]
profiles:
  baseline: {minCategories: 1, requiredCategories: [], minLevel: Metadata}
"""
    f = tmp_path / "cats.yaml"
    f.write_text(text)
    ctx = build_context(categories_file=f)
    assert ctx.catalog.category_ids == ("secrets-only",)


@pytest.mark.parametrize(
    "text, message",
    [
        ("kind: Other", "CategoryCatalog"),
        ("kind: CategoryCatalog\ncategories: []", "no categories"),
        ("kind: CategoryCatalog\ncategories: [{id: a, probes: [{id: p, request: {}, stages: [Bogus]}]}]", "stages"),
    ],
)
def test_a_broken_catalog_file_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(text)


@pytest.mark.parametrize("path", list(EXPECTED))
def test_corpus_policy_matches_the_worked_example(path: str) -> None:
    expected = EXPECTED[path]
    text = (DATA / "corpus" / path).read_text()
    if not expected["valid"]:
        with pytest.raises(PolicyError, match="v1beta1"):
            load_policy(text)
        return
    ctx = build_context()
    coverage = assess(load_policy(text), ctx.catalog, ctx.catalog.profiles["baseline"])
    assert sorted(coverage.covered) == sorted(expected["covered"])
    assert {k: v.level for k, v in coverage.categories.items() if v.covered} == expected["levels"]
    assert {k: [m.probe for m in v.missed] for k, v in coverage.categories.items() if v.missed} == expected[
        "notLogged"
    ]
