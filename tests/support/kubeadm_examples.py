"""The verified examples of issue 15: ClusterConfigurations with kubeadm's own outcome.

Each example says what the real kubeadm does with the configuration — refuses it (with a
fragment of its message) or renders a static Pod whose ``--audit-*`` arguments come in the given
order, whose volumes carry the given facts — and which violations auditwarden reports.  The unit
tests (tests/unit/test_kubeadm.py) hold auditwarden to them; tests/oracle/test_kubeadm_differential.py
holds the real kubeadm (``kubeadm init phase control-plane apiserver --rootfs``) to the same
``kubeadm`` outcome, so the pinned outcomes are kubeadm's, not assumptions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import yaml

POLICY = "/etc/kubernetes/audit/policy.yaml"
LOG = "/var/log/kubernetes/audit/audit.log"
COMPLIANT = [
    ("audit-policy-file", POLICY),
    ("audit-log-path", LOG),
    ("audit-log-maxage", "30"),
    ("audit-log-maxbackup", "10"),
    ("audit-log-maxsize", "100"),
]
VOLUMES: list[dict[str, Any]] = [
    {"name": "audit-policy", "hostPath": "/etc/kubernetes/audit", "mountPath": "/etc/kubernetes/audit",
     "readOnly": True, "pathType": "DirectoryOrCreate"},
    {"name": "audit-log", "hostPath": "/var/log/kubernetes/audit", "mountPath": "/var/log/kubernetes/audit",
     "pathType": "DirectoryOrCreate"},
]  # fmt: skip


def configuration(
    args: list[tuple[str, str]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    *,
    api_version: str = "kubeadm.k8s.io/v1beta4",
    kubernetes_version: str = "v1.37.2",
) -> dict[str, Any]:
    pairs = COMPLIANT if args is None else args
    extra: Any = (
        dict(pairs) if api_version.endswith(("v1beta2", "v1beta3")) else [{"name": k, "value": v} for k, v in pairs]
    )
    return {
        "apiVersion": api_version,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": kubernetes_version,
        "apiServer": {"extraArgs": extra, "extraVolumes": copy.deepcopy(VOLUMES if volumes is None else volumes)},
    }


def dump(cc: dict[str, Any]) -> str:
    return yaml.safe_dump(cc, sort_keys=False)


@dataclass(frozen=True)
class Example:
    name: str
    text: str  # the ClusterConfiguration as written (YAML)
    release: str  # the kubeadm release that reads it
    refused: str | None = None  # a fragment of kubeadm's refusal; None: kubeadm renders it
    audit_args: tuple[str, ...] = ()  # the rendered --audit-* arguments, in order
    volumes: tuple[tuple[str, str, str], ...] = ()  # (name, hostPath, type) that the rendering has
    codes: tuple[str, ...] = ()  # auditwarden's violation codes (baseline profile)
    absent_volumes: tuple[str, ...] = field(default=())  # host paths the rendering does not mount


def _args(*extra: tuple[str, str], without: str = "") -> list[tuple[str, str]]:
    return [a for a in COMPLIANT if a[0] != without] + list(extra)


def _rendered(args: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(f"--{k}={v}" for k, v in args)


def _typed(value: str) -> str:
    """The compliant configuration with audit-log-maxage's value written as the plain scalar ``value``."""
    return dump(configuration()).replace("value: '30'", f"value: {value}")


_MAXAGE_0 = _args(("audit-log-maxage", "0"))
_MAXSIZE_1 = _args(("audit-log-maxsize", "500"), ("audit-log-maxsize", "1"), without="audit-log-maxsize")
_MAXAGE_30 = _args(("audit-log-maxage", "7"), ("audit-log-maxage", "30"), without="audit-log-maxage")
_NO_POLICY = _args(("audit-policy-file", ""))
_SORTED_134 = ("--audit-log-maxage=30", "--audit-log-maxage=7", "--audit-log-maxbackup=10", "--audit-log-maxsize=100",
               f"--audit-log-path={LOG}", f"--audit-policy-file={POLICY}")  # fmt: skip
_NUMBER = "cannot unmarshal number into Go struct field"
_K8S_CERTS_POLICY = [("audit-policy-file", "/etc/kubernetes/pki/audit-policy.yaml"), *COMPLIANT[1:]]

EXAMPLES: tuple[Example, ...] = (
    Example("maxage 30 then 0: 0 takes effect", dump(configuration(_MAXAGE_0)), "v1.37.2",
            audit_args=_rendered(_MAXAGE_0), codes=("audit-log-maxage-too-low",)),
    Example("maxsize 500 then 1: 1 takes effect", dump(configuration(_MAXSIZE_1)), "v1.37.2",
            audit_args=_rendered(_MAXSIZE_1), codes=("audit-log-maxsize-too-low",)),
    Example("policy file then empty: nothing is audited", dump(configuration(_NO_POLICY)), "v1.37.2",
            audit_args=_rendered(_NO_POLICY), codes=("audit-policy-file-missing",)),
    Example("maxage 7 then 30: 30 takes effect", dump(configuration(_MAXAGE_30)), "v1.37.2",
            audit_args=_rendered(_MAXAGE_30)),
    Example("maxage 30 then 7 on kubeadm 1.34: sorted, so \"7\" (the greater string) takes effect",
            dump(configuration(_args(("audit-log-maxage", "7")), kubernetes_version="v1.34.0")), "v1.34.0",
            audit_args=_SORTED_134, codes=("audit-log-maxage-too-low",)),
    Example("a second audit-log volume with readOnly: true makes the log mount read-only",
            dump(configuration(volumes=[*VOLUMES, {**VOLUMES[1], "readOnly": True}])), "v1.37.2",
            audit_args=_rendered(COMPLIANT),
            volumes=(("audit-log", "/var/log/kubernetes/audit", "DirectoryOrCreate"),),
            codes=("audit-log-mount-read-only",)),
    Example("an extraVolume named k8s-certs replaces kubeadm's pki mount",
            dump(configuration(_K8S_CERTS_POLICY, [*VOLUMES, {"name": "k8s-certs", "hostPath": "/srv/certs",
                                                               "mountPath": "/srv/certs", "readOnly": True}])),
            "v1.37.2", audit_args=_rendered(_K8S_CERTS_POLICY), volumes=(("k8s-certs", "/srv/certs", ""),),
            absent_volumes=("/etc/kubernetes/pki",), codes=("audit-policy-not-mounted",)),
    Example("v1beta3 is removed in 1.37", dump(configuration(api_version="kubeadm.k8s.io/v1beta3")), "v1.37.2",
            refused="Please use kubeadm v1.36", codes=("kubeadm-config-invalid",)),
    Example("v1beta3 is read by 1.36", dump(configuration(api_version="kubeadm.k8s.io/v1beta3",
                                                          kubernetes_version="v1.36.3")),
            "v1.36.3", audit_args=tuple(sorted(_rendered(COMPLIANT)))),
    Example("v1beta2 is refused", dump(configuration(api_version="kubeadm.k8s.io/v1beta2")), "v1.37.2",
            refused="Please use kubeadm v1.22", codes=("kubeadm-config-invalid",)),
    Example("the experimental v1 needs its opt-in", dump(configuration(api_version="kubeadm.k8s.io/v1")), "v1.37.2",
            refused='experimental API spec: "kubeadm.k8s.io/v1"', codes=("kubeadm-config-invalid",)),
    Example("v1beta4 extraArgs written as a map",
            dump({**configuration(), "apiServer": {"extraArgs": dict(COMPLIANT), "extraVolumes": VOLUMES}}),
            "v1.37.2", refused="cannot unmarshal object into Go struct field", codes=("kubeadm-config-invalid",)),
    Example("an unquoted number: value: 30", _typed("30"), "v1.37.2", refused=_NUMBER,
            codes=("kubeadm-config-invalid",)),
    Example("an unquoted hex number: value: 0x1e", _typed("0x1e"), "v1.37.2", refused=_NUMBER,
            codes=("kubeadm-config-invalid",)),
    Example("audit-log-compress: yes",
            dump(configuration(_args(("audit-log-compress", "true")))).replace("value: 'true'", "value: yes"),
            "v1.37.2", refused="cannot unmarshal bool into Go struct field", codes=("kubeadm-config-invalid",)),
    Example("two volumeMounts with the same mountPath: the kubelet refuses the Pod",
            dump(configuration(volumes=[*VOLUMES, {"name": "audit-log-2", "hostPath": "/srv/log",
                                                   "mountPath": "/var/log/kubernetes/audit"}])),
            "v1.37.2", audit_args=_rendered(COMPLIANT), volumes=(("audit-log-2", "/srv/log", ""),),
            codes=("static-pod-invalid",)),
    Example("hostPath type Bogus: the kubelet refuses the Pod",
            dump(configuration(volumes=[VOLUMES[0], {**VOLUMES[1], "pathType": "Bogus"}])), "v1.37.2",
            audit_args=_rendered(COMPLIANT), volumes=(("audit-log", "/var/log/kubernetes/audit", "Bogus"),),
            codes=("static-pod-invalid",)),
)  # fmt: skip
