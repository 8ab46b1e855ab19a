"""Helpers for the repair tests: the corpus policies, a request set drawn from a policy's own
vocabulary, and the three guarantees as checks that name what broke."""

from __future__ import annotations

import random
from collections.abc import Iterator

from tests.support.tools import DATA
from webhook.core import yamlsafe
from webhook.core.categories import Catalog, Profile
from webhook.core.checker import Attributes, Evaluator, User
from webhook.core.coverage import assess
from webhook.core.documents import discover
from webhook.core.policy import LEVEL_RANK, Policy, PolicyError, decode_policy
from webhook.core.repair import SENSITIVE, Repair, catalog_requests, loses_something

CORPUS = DATA / "corpus"


def corpus_policies() -> Iterator[tuple[str, Policy]]:
    """Every loadable audit policy of the corpus: files, ConfigMap values, kops fileAssets, Talos."""
    for path in sorted(CORPUS.rglob("*.yaml")):
        if path.name in ("INDEX.yaml", "EXPECTED-categories.yaml"):
            continue
        rel = str(path.relative_to(CORPUS))
        for n, doc in enumerate(yamlsafe.load_file(path.read_bytes())):
            if doc is None:
                continue
            for document in discover(doc).documents:
                objs = [document.obj] if document.kind == "audit-policy" else []
                objs += [yamlsafe.decode_like_apiserver(text) for text in document.files.values()]
                for obj in objs:
                    try:
                        yield f"{rel}:{n}:{document.key}", decode_policy(obj)
                    except PolicyError:
                        continue  # kube-apiserver would not load it: fix refuses, tested elsewhere


def _vocabulary(policy: Policy, catalog: Catalog) -> dict[str, list[str]]:
    probes = catalog_requests(catalog)
    words: dict[str, set[str]] = {
        "verbs": {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"},
        "namespaces": {"", "default", "kube-system"},
        "names": {"", "web-0"},
        "paths": {"/api", "/apis", "/healthz", "/version", "/metrics"},
        "resources": {f"{g}|{r}" for g, r in SENSITIVE} | {"|pods", "apps|deployments", "|nodes/proxy"},
        "users": {"jane", "system:anonymous", "system:kube-proxy"},
        "groups": {"system:authenticated", "system:unauthenticated", "system:nodes"},
    }
    for a in probes:
        words["verbs"].add(a.verb)
        words["namespaces"].add(a.namespace)
        words["names"].add(a.name)
        if a.is_resource_request:
            words["resources"].add(f"{a.api_group}|{a.resource}" + (f"/{a.subresource}" if a.subresource else ""))
        else:
            words["paths"].add(a.path)
        if a.user is not None:
            words["users"].add(a.user.name)
            words["groups"] |= set(a.user.groups)
    for rule in policy.rules:
        words["verbs"] |= {v for v in rule.verbs if v != "*"}
        words["namespaces"] |= set(rule.namespaces)
        words["users"] |= set(rule.users)
        words["groups"] |= set(rule.user_groups)
        words["paths"] |= {u.replace("*", "x") if u != "*" else "/x" for u in rule.non_resource_urls}
        for gr in rule.resources:
            group = "apps" if gr.group == "*" else gr.group
            words["names"] |= set(gr.resource_names)
            for res in gr.resources or ("pods",):
                words["resources"].add(f"{group}|{res.replace('*', 'x')}")
    return {k: sorted(v) for k, v in words.items()}


def request_set(policy: Policy, catalog: Catalog, count: int = 600, seed: int = 12) -> list[Attributes]:
    """The catalog's probes and ``count`` requests drawn from the policy's and catalog's words
    (users, groups, verbs, namespaces, resources and subresources, names, URLs; failed logins
    included), with a fixed seed."""
    words = _vocabulary(policy, catalog)
    rng = random.Random(seed)
    out = list(catalog_requests(catalog))
    for _ in range(count):
        who = rng.randrange(6)
        user = None if who == 0 else User(rng.choice(words["users"]), tuple(rng.sample(words["groups"], 2)))
        if rng.randrange(5) == 0:
            out.append(Attributes(user, rng.choice(["get", "post"]), path=rng.choice(words["paths"]),
                                  is_resource_request=False))  # fmt: skip
            continue
        group, _, combined = rng.choice(words["resources"]).partition("|")
        resource, _, subresource = combined.partition("/")
        out.append(
            Attributes(user, rng.choice(words["verbs"]), rng.choice(words["namespaces"]), group, "v1",
                       resource, subresource, rng.choice(words["names"]), "/api/v1/x")
        )  # fmt: skip
    return out


PROFILE_CODES = {"categories-below-minimum", "category-required", "stage-omitted"}


def profile_violations(policy: Policy, catalog: Catalog, profile: Profile) -> list[str]:
    return [v.message for v in assess(policy, catalog, profile).violations if v.code in PROFILE_CODES]


def raised_payloads(original: Policy, repaired: Policy, requests: list[Attributes]) -> list[str]:
    """Sensitive requests the repair logs above both Metadata and their old level."""
    before, after = Evaluator(original), Evaluator(repaired)
    out = []
    sensitive = {(g, r) for g, r in SENSITIVE}
    for a in requests:
        combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        if not a.is_resource_request or (a.api_group, combined) not in sensitive:
            continue
        old, new = LEVEL_RANK[before.evaluate(a).level], LEVEL_RANK[after.evaluate(a).level]
        if new > max(old, LEVEL_RANK["Metadata"]):
            out.append(f"{a}: {before.evaluate(a).level} -> {after.evaluate(a).level}")
    return out


def original_rules_kept(repair: Repair) -> list[str]:
    """Every original rule is still there, in order, changed at most by losing omitStages entries."""
    assert repair.original is not None and repair.policy is not None
    inserted = {i.index for i in repair.insertions}
    kept = [r for i, r in enumerate(repair.policy.rules) if i not in inserted]
    problems = []
    if len(kept) != len(repair.original.rules):
        return [f"{len(repair.original.rules)} original rules, {len(kept)} kept"]
    for i, (old, new) in enumerate(zip(repair.original.rules, kept, strict=True)):
        if (old.level, old.users, old.user_groups, old.verbs, old.resources, old.namespaces,
                old.non_resource_urls) != (new.level, new.users, new.user_groups, new.verbs, new.resources,
                                           new.namespaces, new.non_resource_urls):  # fmt: skip
            problems.append(f"rule {i} changed beyond omitStages")
        if not set(new.omit_stages) <= set(old.omit_stages):
            problems.append(f"rule {i} gained omitStages")
    return problems


def check_repair(repair: Repair, catalog: Catalog, profile: Profile, requests: list[Attributes]) -> list[str]:
    """Every guarantee of a repair that exists: passes, loses nothing, bounded, minimal shape."""
    assert repair.original is not None and repair.policy is not None
    problems = [f"still fails: {m}" for m in profile_violations(repair.policy, catalog, profile)]
    problems += [f"loses: {m}" for m in loses_something(repair.original, repair.policy, requests)]
    if LEVEL_RANK[profile.min_level] <= LEVEL_RANK["Metadata"]:
        problems += [f"payload raised: {m}" for m in raised_payloads(repair.original, repair.policy, requests)]
    problems += original_rules_kept(repair)
    for ins in repair.insertions:
        rule = repair.policy.rules[ins.index]
        if rule.users or rule.user_groups or rule.omit_stages:
            problems.append(f"inserted rule {ins.index} names users/userGroups or omits stages")
    return problems
