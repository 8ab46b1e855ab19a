"""Rule entries that can never match a request: warnings, never a verdict.

kube-apiserver loads a policy whose rule names ``verbs: ["exec"]`` or ``deployments`` under
``group: ""``; the entry simply never matches (``checker.go`` compares strings).  The verdict
comes from evaluation, which is exact either way; these warnings tell the user that a careful
rule does nothing, naming the rule, the field, the reason and a correction.

What a request carries (``staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go``,
``NewRequestInfo``):

* a *resource* request's verb is ``get``, ``list``, ``watch``, ``create``, ``update``, ``patch``,
  ``delete`` or ``deletecollection`` (from the HTTP method and the path), or one of the path's
  ``specialVerbs`` ``proxy`` and ``watch`` — :data:`RESOURCE_VERBS`;
* a *non-resource* request's verb is its HTTP method in lower case — :data:`NON_RESOURCE_VERBS`
  (the methods Go's ``net/http`` names that a client sends to kube-apiserver);
* its API group and resource are the path's, and a subresource is ``resource/sub``.

Only built-in groups are judged (from :class:`~webhook.core.builtin.BuiltinAPI`, generated from
upstream's discovery documents): a resource of a custom group, or a resource name the table does
not know in a built-in group (it may be one of an older release), is left alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from webhook.core.builtin import BuiltinAPI
from webhook.core.findings import Finding
from webhook.core.policy import Policy, PolicyRule

RESOURCE_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
                            "proxy"})  # fmt: skip
NON_RESOURCE_VERBS = frozenset({"get", "head", "post", "put", "patch", "delete", "options"})

# Words people write as verbs, and what the request really carries.
_CONNECT = "arrives as create (or get, over WebSocket) on the pods/{sub} subresource"
_FORWARD = 'verbs: ["create", "get"] with resources ["pods/portforward"]'
_VERB_HINTS: dict[str, tuple[str, str]] = {
    "exec": (_CONNECT.format(sub="exec"), 'verbs: ["create", "get"] with resources ["pods/exec"]'),
    "attach": (_CONNECT.format(sub="attach"), 'verbs: ["create", "get"] with resources ["pods/attach"]'),
    "portforward": (_CONNECT.format(sub="portforward"), _FORWARD),
    "port-forward": (_CONNECT.format(sub="portforward"), _FORWARD),
    "connect": ("is the admission operation of exec/attach/portforward/proxy, not a request verb: those arrive as "
                "create or get on the subresource", 'verbs: ["create", "get"] on the subresource'),
    "read": ("is not a verb; reads arrive as get, list or watch", 'verbs: ["get", "list", "watch"]'),
    "write": ("is not a verb; writes arrive as create, update, patch, delete or deletecollection",
              'verbs: ["create", "update", "patch", "delete", "deletecollection"]'),
    "edit": ("is not a verb; edits arrive as update or patch", 'verbs: ["update", "patch"]'),
    "modify": ("is not a verb; changes arrive as update or patch", 'verbs: ["update", "patch"]'),
    "post": ("is an HTTP method; on a resource it arrives as create", 'verbs: ["create"]'),
    "put": ("is an HTTP method; on a resource it arrives as update", 'verbs: ["update"]'),
    "head": ("is an HTTP method; on a resource it arrives as get", 'verbs: ["get"]'),
}  # fmt: skip
# RBAC authorization verbs: kube-apiserver checks them internally, no request carries them.
_AUTHZ_ONLY = ("impersonate", "bind", "escalate", "use", "approve", "sign", "attest")
_CORE_ALIASES = ("core", "v1", "api")


def never_matches(policy: Policy, api: BuiltinAPI) -> list[Finding]:
    """Warnings for every rule entry of ``policy`` that no request can match."""
    out: list[Finding] = []
    for i, rule in enumerate(policy.rules):
        for where, reason, fix in _rule(rule, api):
            out.append(
                Finding(
                    "rule-never-matches",
                    f"rule {i} ({rule.describe()}): rules[{i}].{where} never matches a request: {reason}. Fix: {fix}.",
                )
            )
    return out


def _rule(rule: PolicyRule, api: BuiltinAPI) -> Iterable[tuple[str, str, str]]:
    yield from _verbs(rule)
    for j, gr in enumerate(rule.resources):
        yield from _group_resources(gr.group, gr.resources, f"resources[{j}]", api)


def _verbs(rule: PolicyRule) -> Iterable[tuple[str, str, str]]:
    resource_side = bool(rule.resources or rule.namespaces)
    if resource_side:
        valid, kind = RESOURCE_VERBS, "a resource request"
    elif rule.non_resource_urls:
        valid, kind = NON_RESOURCE_VERBS, "a non-resource request (its verb is the HTTP method in lower case)"
    else:
        valid, kind = RESOURCE_VERBS | NON_RESOURCE_VERBS, "any request"
    for k, verb in enumerate(rule.verbs):
        if verb == "*" or verb in valid:
            continue
        where = f"verbs[{k}] {verb!r}"
        if verb.lower() in valid:
            yield where, f"verbs are lower case; {kind} never carries {verb!r}", f'verbs: ["{verb.lower()}"]'
        elif verb in _VERB_HINTS and not (verb in ("post", "put", "head") and not resource_side):
            reason, fix = _VERB_HINTS[verb]
            yield where, f"{verb!r} {reason}", fix
        elif verb in _AUTHZ_ONLY:
            yield where, (f"{verb!r} is an RBAC authorization verb that kube-apiserver checks internally; "
                          f"{kind} never carries it"), "log the request that triggers the check (its own verb)"
        else:
            close = difflib.get_close_matches(verb.lower(), sorted(valid), n=1)
            fix = f"did you mean {close[0]!r}?" if close else "use one of " + ", ".join(sorted(valid))
            yield where, f"{verb!r} is not a Kubernetes verb; {kind} carries one of {', '.join(sorted(valid))}", fix


def _group_resources(
    group: str, resources: tuple[str, ...], where: str, api: BuiltinAPI
) -> Iterable[tuple[str, str, str]]:
    if not api.groups or group == "*":
        return
    table = api.groups.get(group)
    if table is None:
        yield from _short_group(group, where, api)
        return
    shown = "the core group" if group == "" else f"group {group!r}"
    for k, entry in enumerate(resources):
        at = f"{where}.resources[{k}] {entry!r}"
        name, slash, sub = entry.partition("/")
        if name == "*":
            if slash and sub != "*" and not any(sub in subs for subs in table.values()):
                yield at, f"no resource of {shown} has a subresource {sub!r} (Kubernetes {api.version})", (
                    f"name the subresource of a resource of {shown}, e.g. {_examples(table)}"
                )
            continue
        if name not in table:
            homes = api.groups_of(name)
            if homes:
                there = ", ".join(f'"{g}"' for g in homes)
                yield at, f"{name} are served by group {there}, not by {shown} (Kubernetes {api.version})", (
                    f'put {entry!r} under group: {there.split(", ")[0]}'
                )
            continue
        if slash and sub != "*" and sub not in table[name]:
            subs = sorted(table[name])
            close = difflib.get_close_matches(sub, subs, n=1)
            has = f"its subresources are {', '.join(subs)}" if subs else "it has no subresources"
            fix = f'"{name}/{close[0]}"' if close else (f"one of {', '.join(f'{name}/{s}' for s in subs)}" if subs
                                                        else f'"{name}"')  # fmt: skip
            yield at, f"{name} has no subresource {sub!r} in {shown}; {has} (Kubernetes {api.version})", fix


def _short_group(group: str, where: str, api: BuiltinAPI) -> Iterable[tuple[str, str, str]]:
    at = f"{where}.group {group!r}"
    if group in _CORE_ALIASES:
        yield at, f"the core API group is written \"\", and no group is called {group!r}", 'group: ""'
        return
    longer = [g for g in api.groups if g.startswith(group + ".")]
    if longer:
        names = ", ".join(f'"{g}"' for g in longer)
        yield at, f"API groups are matched by their full name; {group!r} is short for {names}", f"group: {longer[0]!r}"


def _examples(table: Mapping[str, frozenset[str]]) -> str:
    pairs = [f"{r}/{s}" for r, subs in table.items() for s in sorted(subs)]
    return ", ".join(pairs[:3]) if pairs else "(none has any)"
