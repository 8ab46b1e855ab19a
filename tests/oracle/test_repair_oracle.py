"""`auditwarden fix`'s output, judged by kube-apiserver's own code (the Go oracle,
``k8s.io/apiserver/pkg/audit/policy``): every repaired corpus policy loads, passes the profile
when its probes are evaluated upstream, and loses nothing on the probes and a request set drawn
from the policy's own words (upstream's level and omitStages, original vs repaired)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.repairs import CORPUS, request_set
from webhook.context import packaged_catalog
from webhook.core.checker import Attributes
from webhook.core.policy import LEVEL_RANK, PolicyError, decode_policy
from webhook.core.repair import Repair, repair
from webhook.fixedit import edit_text, locate

CATALOG = packaged_catalog()
PROFILES = ("baseline", "strict", "stig")
FILES = sorted(p for p in CORPUS.rglob("*.yaml") if p.name not in ("INDEX.yaml", "EXPECTED-categories.yaml"))


def _repairs(path: Path, profile: str) -> dict[str, tuple[Repair, Any]]:
    """The repair of every loadable policy in the file that fails the profile, with its location."""
    out = {}
    for loc in locate(path.read_text(), str(path)):
        try:
            p = decode_policy(loc.plain)
        except PolicyError:
            continue
        r = repair(p, CATALOG, CATALOG.profiles[profile])
        if r.needed:
            out[loc.source] = (r, loc)
    return out


# Every (file, profile) with something to repair: the test below runs exactly on those.
CASES = [(path, profile) for profile in PROFILES for path in FILES if _repairs(path, profile)]


@pytest.fixture(scope="module")
def oracle() -> Iterator[Any]:
    from tests.support.oracle import Oracle

    with Oracle() as o:
        yield o


def wire(a: Attributes) -> dict[str, Any]:
    return {
        "user": None if a.user is None else {"name": a.user.name, "groups": list(a.user.groups)},
        "verb": a.verb, "namespace": a.namespace, "apiGroup": a.api_group, "apiVersion": a.api_version,
        "resource": a.resource, "subresource": a.subresource, "name": a.name, "path": a.path,
        "isResourceRequest": a.is_resource_request,
    }  # fmt: skip


def policy_text(file_text: str, loc_plain: Any, whole_file: bool) -> str:
    # A policy file is given to the oracle as the file itself; an embedded one as its JSON.
    return file_text if whole_file else json.dumps(loc_plain)


def test_every_profile_has_corpus_policies_to_repair() -> None:
    assert {profile for _, profile in CASES} == set(PROFILES)


@pytest.mark.parametrize(("path", "profile"), CASES, ids=[f"{p.relative_to(CORPUS)}-{pr}" for p, pr in CASES])
def test_repaired_corpus_policies_load_pass_and_lose_nothing_upstream(oracle: Any, path: Path, profile: str) -> None:
    text = path.read_text()
    prof = CATALOG.profiles[profile]
    found = _repairs(path, profile)
    assert all(r.possible for r, _ in found.values()), [r.blocked for r, _ in found.values()]
    repairs = {source: r for source, (r, _) in found.items()}
    originals = {source: loc for source, (_, loc) in found.items()}
    new_text = edit_text(text, str(path), lambda loc: repairs.get(loc.source))
    after = {loc.source: loc for loc in locate(new_text, str(path))}
    for source, r in repairs.items():
        assert r.original is not None
        whole = source == str(path)
        old_text = policy_text(text, originals[source].plain, whole)
        new_policy_text = policy_text(new_text, after[source].plain, whole)
        reqs = request_set(r.original, CATALOG, count=400)
        old, new = oracle.ask_many([
            {"policy": old_text, "requests": [wire(a) for a in reqs], "validateOnly": False},
            {"policy": new_policy_text, "requests": [wire(a) for a in reqs], "validateOnly": False},
        ])  # fmt: skip
        assert new["valid"], new["error"]
        for a, o, n in zip(reqs, old["results"], new["results"], strict=True):
            if o["level"] == "None":
                continue
            assert LEVEL_RANK[n["level"]] >= LEVEL_RANK[o["level"]], (a, o, n)
            assert set(n["omitStages"]) <= set(o["omitStages"]), (a, o, n)
        # Passes: the catalog's probes as upstream evaluates them (they lead the request set).
        decisions = iter(new["results"])
        covered = []
        for category in CATALOG.categories:
            ok = True
            for probe in category.probes:
                d = next(decisions)
                logged = d["level"] != "None" and not probe.stages <= set(d["omitStages"])
                ok = ok and logged and LEVEL_RANK[d["level"]] >= LEVEL_RANK[prof.min_level]
            if ok:
                covered.append(category.id)
        assert len(covered) >= prof.min_categories, covered
        assert set(prof.required_categories) <= set(covered), covered
