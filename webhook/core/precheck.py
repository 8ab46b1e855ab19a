"""Cheap relevance test run on the webhook's hot path before any YAML parsing.

It may say "relevant" for an object that turns out to carry nothing (then the full
analysis skips it), but never "irrelevant" for one that :func:`webhook.core.verdict.judge`
would judge.  It mirrors the chart's CEL matchConditions, which keep most irrelevant
objects from reaching the webhook at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.core.documents import KIND_LABEL, KUBEADM_CONFIG, metadata, worth_decoding

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def is_kubelet_cleanup(kind: object, operation: str) -> bool:
    """A Pod DELETE: the only Pods judged are mirror Pods, and deleting one is the kubelet's
    own clean-up (it recreates the mirror Pod from the manifest), never a weakening — allowed
    without judging, by the webhook's routing and by :func:`webhook.core.verdict.judge` alike."""
    return kind == "Pod" and operation == "DELETE"


def is_mirror_pod(obj: Mapping[str, Any] | None) -> bool:
    if not isinstance(obj, Mapping):
        return False
    annotations = metadata(obj).get("annotations")
    return isinstance(annotations, Mapping) and MIRROR_ANNOTATION in annotations


def is_relevant(kind: str, obj: Mapping[str, Any] | None) -> bool:
    """True when a ConfigMap/Pod may carry something auditwarden judges (no YAML parsing)."""
    if not isinstance(obj, Mapping):
        return False
    meta = metadata(obj)
    if kind == "ConfigMap":
        labels = meta.get("labels")
        if isinstance(labels, Mapping) and KIND_LABEL in labels:
            return True
        if (meta.get("namespace"), meta.get("name")) == KUBEADM_CONFIG:
            return True
        data = obj.get("data")
        if data is None:
            return False
        if not isinstance(data, Mapping):
            return True  # malformed: let the analysis say so
        return any(not isinstance(value, str) or worth_decoding(value) for value in data.values())
    if kind == "Pod":
        if not is_mirror_pod(obj):
            return False
        labels = meta.get("labels")
        if isinstance(labels, Mapping) and labels.get("component") == "kube-apiserver":
            return True
        spec = obj.get("spec")
        containers = spec.get("containers") if isinstance(spec, Mapping) else None
        if not isinstance(containers, list):
            return False
        for c in containers:
            if not isinstance(c, Mapping):
                continue
            for part in (c.get("command"), c.get("args")):
                if isinstance(part, list) and any(isinstance(a, str) and "apiserver" in a for a in part):
                    return True
        return False
    return False
