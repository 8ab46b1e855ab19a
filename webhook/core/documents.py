"""Recognising what a document is, and discovering documents inside ConfigMaps.

Recognised kinds:

* ``audit-policy`` — ``apiVersion: audit.k8s.io/*`` (any version: an old one is reported as
  invalid, not ignored), or a bare ``rules:`` document without apiVersion/kind whose rules
  carry ``level`` (kube-apiserver refuses it, and the user should hear so).
  A ``kind: Policy`` of another API group (Kyverno, …) is *not* an audit policy.
* ``apiserver-pod`` — a Pod with a kube-apiserver container (by command, or the
  ``component: kube-apiserver`` label).
* ``kubeadm-config`` — a kubeadm ``ClusterConfiguration``; also the one embedded in a
  Cluster API ``KubeadmControlPlane`` and kind's ``kubeadmConfigPatches``.
* ``configmap`` — a ConfigMap, whose ``data`` values are searched (multi-document YAML
  included) for any of the above, by their *decoded* content: ``apiVersion:
  "audit\\x2ek8s.io/v1"`` is an audit policy to anything that reads the value as YAML, so it is
  one here too (:func:`worth_decoding`).  ``binaryData`` is ignored, with a note.
* ``List`` — each item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from webhook.core import yamlsafe
from webhook.core.apiserver import find_apiserver_container
from webhook.core.findings import Finding
from webhook.core.policy import PolicyError, decode_policy

# Substrings that make a ConfigMap value worth parsing (the webhook's pre-check uses them too).
MARKERS: tuple[str, ...] = ("audit.k8s.io", "ClusterConfiguration", "kube-apiserver")
# Characters through which YAML or JSON text decodes to strings it does not contain literally:
# a backslash escape in a double-quoted YAML or a JSON string ("audit\x2ek8s.io", "\u002e", a
# backslash-newline continuation) and a tag ("!!binary" base64, a "%TAG" shorthand, a "%62"
# escape in a verbatim tag — every tag starts with "!").  Without either, every decoded string
# is a piece of the raw text, pieces joined only by the space or newline of line folding, which
# no marker contains: a marker that is not in the raw text is not in the decoded text either.
DISGUISES: tuple[str, ...] = ("\\", "!")
KIND_LABEL = "auditwarden.io/kind"
LABEL_KINDS = ("audit-policy", "apiserver-config")
KUBEADM_CONFIG = ("kube-system", "kubeadm-config")


DocumentKind = Literal[
    "audit-policy", "apiserver-pod", "kubeadm-config", "k3s-config", "kops-cluster", "openshift-apiserver"
]


@dataclass
class Document:
    kind: DocumentKind
    key: str  # stable within the enclosing object, used to pair old and new versions
    obj: Mapping[str, Any]
    files: Mapping[str, str] = field(default_factory=dict)  # files the document itself ships (kops fileAssets)


@dataclass
class Discovery:
    documents: list[Document] = field(default_factory=list)
    violations: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    relevant: bool = False  # the object is one auditwarden judges at all


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """An object's ``metadata``, or an empty mapping when it has none (or not a mapping)."""
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def object_name(obj: Mapping[str, Any]) -> str:
    meta = metadata(obj)
    ns, name = meta.get("namespace"), meta.get("name") or meta.get("generateName") or "<unnamed>"
    return f"{ns}/{name}" if ns else str(name)


def looks_like_policy(obj: Mapping[str, Any]) -> bool:
    api = obj.get("apiVersion")
    if isinstance(api, str):
        # A Policy of the core group ("v1": no group) is no Kubernetes kind at all, so it can
        # only be a mistyped audit policy, which kube-apiserver refuses ("no kind "Policy" is
        # registered for version "v1""); Kyverno's kyverno.io/v1 Policy is another group.
        return api.startswith("audit.k8s.io/") or api == "audit.k8s.io" or (
            obj.get("kind") == "Policy" and "/" not in api
        )
    if obj.get("kind") not in (None, "Policy"):
        return False
    rules = obj.get("rules")
    return isinstance(rules, list) and bool(rules) and all(isinstance(r, Mapping) and "level" in r for r in rules)


def late_policy(docs: list[Any]) -> str | None:
    """Why a file whose audit policy is not its first YAML document stops kube-apiserver.

    kube-apiserver reads ``--audit-policy-file`` with ``sigs.k8s.io/yaml``, which decodes the
    first document only (``yamlsafe.load_first``): a policy after an empty or other first
    document is never read, and the first one is refused.  None when the first document is
    the policy, or no document is.
    """
    first = docs[0] if docs else None
    if isinstance(first, Mapping) and looks_like_policy(first):
        return None
    later = next((j for j, d in enumerate(docs[1:], start=2) if isinstance(d, Mapping) and looks_like_policy(d)), None)
    if later is None:
        return None
    try:
        decode_policy(first)
        upstream = "it does not hold the policy"
    except PolicyError as err:
        upstream = str(err)
    return (
        f"the audit policy is YAML document {later}, but kube-apiserver reads only the first document of "
        f"--audit-policy-file and refuses to start: {upstream}. Fix: remove the leading '---' or the "
        "documents before the policy"
    )


def worth_decoding(value: str) -> bool:
    """May ``value``, decoded as YAML or JSON, carry audit configuration?

    The cheap test before any parsing: never False for a value whose decoded content names a
    marker (see :data:`DISGUISES`).  The webhook's pre-check and the chart's CEL condition
    follow it (the CEL condition as far as CEL can; docs/chart.md).
    """
    return spelled_out(value) or any(c in value for c in DISGUISES)


def spelled_out(value: str) -> bool:
    """Does ``value`` name a marker in its raw text (no decoding needed to see it)?"""
    return any(marker in value for marker in MARKERS)


def typed(doc: Any) -> bool:
    """A mapping with ``apiVersion`` and ``kind``: what a value without a literal marker must
    decode to before its documents are walked (the bounded cost of decoded discovery)."""
    return isinstance(doc, Mapping) and "apiVersion" in doc and "kind" in doc


def discover(obj: Any, key: str = "", *, require_label: bool = False) -> Discovery:
    """Every judged document in ``obj`` (a parsed YAML/JSON document or admission object).

    ``require_label``: an unlabelled ConfigMap that carries audit configuration is a violation
    (``label-required``) instead of a warning (``label-missing``).
    """
    out = Discovery()
    _walk(obj, key, out, depth=0, require_label=require_label)
    return out


def _walk(obj: Any, key: str, out: Discovery, depth: int, *, require_label: bool = False) -> None:
    if not isinstance(obj, Mapping) or depth > 4:
        return
    kind = obj.get("kind")
    api = obj.get("apiVersion")
    if looks_like_policy(obj):
        out.relevant = True
        out.documents.append(Document("audit-policy", key or "policy", obj))
    elif kind == "Pod":
        if find_apiserver_container(obj) is not None:
            out.relevant = True
            out.documents.append(Document("apiserver-pod", key or "pod", obj))
    elif kind == "ClusterConfiguration" and (not isinstance(api, str) or api.startswith("kubeadm.k8s.io")):
        out.relevant = True
        out.documents.append(Document("kubeadm-config", key or "clusterConfiguration", obj))
    elif kind == "KubeadmControlPlane":
        spec = obj.get("spec")
        kcs = spec.get("kubeadmConfigSpec") if isinstance(spec, Mapping) else None
        cc = kcs.get("clusterConfiguration") if isinstance(kcs, Mapping) else None
        if isinstance(cc, Mapping):
            out.relevant = True
            out.documents.append(
                Document("kubeadm-config", f"{key}:spec.kubeadmConfigSpec.clusterConfiguration", cc)
            )
    elif kind == "Cluster" and isinstance(api, str) and api.startswith("kind.x-k8s.io"):
        _kind_cluster(obj, key, out)
    elif kind == "ConfigMap":
        _configmap(obj, key, out, require_label=require_label)
    elif isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        for i, item in enumerate(obj["items"]):
            _walk(item, f"{key}.items[{i}]" if key else f"items[{i}]", out, depth + 1)
    elif kind == "APIServer" and isinstance(api, str) and api.startswith("config.openshift.io/"):
        out.relevant = True
        out.documents.append(Document("openshift-apiserver", key or "apiserver", obj))
    else:
        _distro(obj, key, out)


def _distro(obj: Mapping[str, Any], key: str, out: Discovery) -> None:
    """Distribution configuration files that carry kube-apiserver audit settings."""
    if "kube-apiserver-arg" in obj:  # k3s / RKE2 config.yaml
        out.relevant = True
        out.documents.append(Document("k3s-config", key or "config", obj))
        return
    spec = obj.get("spec")
    kas = spec.get("kubeAPIServer") if isinstance(spec, Mapping) else None
    if isinstance(kas, Mapping) and any(isinstance(k, str) and k.startswith("audit") for k in kas):
        assert isinstance(spec, Mapping)
        files = {
            str(fa["path"]): fa["content"]
            for fa in spec.get("fileAssets") or []
            if isinstance(fa, Mapping) and isinstance(fa.get("path"), str) and isinstance(fa.get("content"), str)
        }
        out.relevant = True
        out.documents.append(Document("kops-cluster", key or "cluster", obj, files))
        return
    cluster = obj.get("cluster")
    api_server = cluster.get("apiServer") if isinstance(cluster, Mapping) else None
    policy = api_server.get("auditPolicy") if isinstance(api_server, Mapping) else None
    if isinstance(policy, Mapping):  # Talos machine configuration
        out.relevant = True
        out.documents.append(Document("audit-policy", f"{key}cluster.apiServer.auditPolicy", policy))


def _kind_cluster(obj: Mapping[str, Any], key: str, out: Discovery) -> None:
    sources: list[tuple[str, Any]] = [(f"{key}kubeadmConfigPatches[{i}]", p)
                                      for i, p in enumerate(obj.get("kubeadmConfigPatches") or [])]
    for n, node in enumerate(obj.get("nodes") or []):
        if isinstance(node, Mapping):
            sources += [(f"{key}nodes[{n}].kubeadmConfigPatches[{i}]", p)
                        for i, p in enumerate(node.get("kubeadmConfigPatches") or [])]
    for where, patch in sources:
        if not isinstance(patch, str):
            continue
        try:
            docs = yamlsafe.load_all(patch)
        except yamlsafe.DocumentError as exc:
            out.warnings.append(Finding("content-unparseable", f"{where}: {exc}"))
            continue
        for j, doc in enumerate(docs):
            if isinstance(doc, Mapping) and doc.get("kind") == "ClusterConfiguration":
                out.relevant = True
                out.documents.append(Document("kubeadm-config", f"{where}[{j}]", doc))


def _configmap(cm: Mapping[str, Any], key: str, out: Discovery, *, require_label: bool) -> None:
    meta = metadata(cm)
    labels = meta.get("labels") if isinstance(meta.get("labels"), Mapping) else {}
    label_kind = labels.get(KIND_LABEL) if isinstance(labels, Mapping) else None
    is_kubeadm = (meta.get("namespace"), meta.get("name")) == KUBEADM_CONFIG
    named = object_name(cm)
    if label_kind is not None:
        out.relevant = True
        if label_kind not in LABEL_KINDS:
            out.warnings.append(
                Finding(
                    "label-unknown",
                    f"label {KIND_LABEL}={label_kind!r} is not one of {', '.join(LABEL_KINDS)}; the content is "
                    "judged by what it contains",
                )
            )
    data = cm.get("data")
    if data is not None and not isinstance(data, Mapping):
        out.relevant = True
        out.violations.append(Finding("content-malformed", f"ConfigMap {named}: data is not a map of strings"))
        return
    found_before = len(out.documents)
    for data_key, value in (data or {}).items():
        where = f"{key}data[{data_key}]"
        if not isinstance(value, str):
            out.relevant = True
            out.violations.append(Finding("content-malformed", f"{where}: value is not a string"))
            continue
        forced = label_kind is not None or (is_kubeadm and data_key == "ClusterConfiguration")
        if not forced and not worth_decoding(value):
            continue
        literal = forced or spelled_out(value)
        try:
            docs = yamlsafe.load_file(value)
        except yamlsafe.DocumentError as exc:
            # Bounded-load refusals (aliases, depth, size) and broken YAML in content that
            # claims to be audit configuration are violations: auditwarden cannot vouch for it.
            # A value that may only *decode* to audit configuration claims nothing when it is
            # not YAML at all (a script with a backslash), but one that is too deep or expands
            # too far could still hide a policy, so bounded refusals count for it too.
            bounded = not str(exc).startswith(("invalid YAML", "couldn't get version/kind"))
            if forced or bounded or "audit.k8s.io" in value:
                out.relevant = True
                out.violations.append(
                    Finding("content-unparseable", f"{where} cannot be analysed: {exc}. Fix the YAML.")
                )
            continue
        if not literal:
            # Decoded discovery, bounded: only documents that decode to a typed object.
            docs = [d for d in docs if typed(d)]
            if not docs:
                continue
        late = late_policy(docs)
        if late is not None:
            out.relevant = True
            out.violations.append(Finding("policy-not-first-document", f"{where}: {late}"))
        for j, doc in enumerate(docs):
            sub = f"{where}" if len(docs) == 1 else f"{where}[{j}]"
            _walk(doc, sub, out, depth=1)
    # The label says "this ConfigMap carries an audit policy" (other keys, a README say, may
    # sit beside it); without one, it is a violation of its own.
    unparseable = any(v.code == "content-unparseable" for v in out.violations)
    if label_kind == "audit-policy" and not unparseable and not any(
        d.kind == "audit-policy" for d in out.documents[found_before:]
    ):
        out.violations.append(
            Finding(
                "labelled-not-a-policy",
                f"ConfigMap {named} is labelled {KIND_LABEL}=audit-policy but none of its data values is an "
                "audit.k8s.io Policy. Fix: store the policy YAML in it, or remove the label.",
            )
        )
    if label_kind is None and not is_kubeadm and len(out.documents) > found_before:
        finding = _unlabelled(named, out.documents[found_before:], required=require_label)
        (out.violations if require_label else out.warnings).append(finding)
    if is_kubeadm:
        out.relevant = True
    if cm.get("binaryData") and (out.relevant or len(out.documents) > found_before):
        out.warnings.append(
            Finding("binary-data-ignored", f"ConfigMap {named}: binaryData is not analysed")
        )


def _unlabelled(named: str, found: list[Document], *, required: bool) -> Finding:
    """The label makes admission matching independent of how the content is spelt.

    The fix comes first: the webhook cuts a warning at 120 characters.
    """
    value = "audit-policy" if any(d.kind == "audit-policy" for d in found) else "apiserver-config"
    what = "an audit policy" if value == "audit-policy" else "kube-apiserver audit configuration"
    why = (
        "the label is what makes the webhook's matching independent of how the content is spelt (an "
        "escaped or tagged value reaches the webhook only through the chart's broader conditions)"
    )
    if required:
        return Finding(
            "label-required",
            f"label {KIND_LABEL}={value} is required (requireKindLabel): ConfigMap {named} carries {what} "
            f"without it; {why}. Fix: add the label.",
        )
    return Finding(
        "label-missing",
        f"recommended: label {KIND_LABEL}={value}; ConfigMap {named} carries {what} without it, and {why}.",
    )
