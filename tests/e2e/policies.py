"""Audit policies and kube-apiserver configurations the e2e scenarios use (also fed to the loader differential).

Coverage figures are auditwarden's (packaged catalog, profile baseline: at least 3 of 6
categories); the scenarios assert them through the real apiserver.
"""

from __future__ import annotations

from typing import Any

import yaml

#: rule 0 hides reads from everyone: covers 3 (api-calls, pod-creation, rbac-changes)
COVERS_3 = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    verbs: [get]
  - level: Metadata
"""

#: a realistic policy covering every category
COVERS_ALL = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: [watch]
    resources:
      - group: ""
        resources: [endpoints, services]
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version"]
  - level: Metadata
    resources:
      - group: ""
        resources: [secrets, configmaps, serviceaccounts/token]
  - level: RequestResponse
    resources:
      - group: rbac.authorization.k8s.io
  - level: Metadata
"""

#: rule 0 hides get/list/watch: covers 2 (pod-creation, rbac-changes) -> refused
COVERS_2 = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    verbs: [get, list, watch]
  - level: Metadata
"""
COVERS_2_MISSING = ("authentication", "api-calls", "rbac-denials", "secret-access")
COVERS_2_HIDING_RULE = "rule 0 (level None, verbs [get, list, watch])"

#: the same categories as COVERS_2 but written differently (for the ratchet: not worse)
COVERS_2_PODS_RBAC = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    verbs: [get, list, watch]
  - level: RequestResponse
    resources:
      - group: ""
        resources: [pods, pods/exec, pods/attach, pods/ephemeralcontainers]
      - group: rbac.authorization.k8s.io
"""

#: one category less than COVERS_2_PODS_RBAC (rbac-changes lost): weaker still
COVERS_1 = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    verbs: [get, list, watch]
  - level: RequestResponse
    resources:
      - group: ""
        resources: [pods, pods/exec, pods/attach, pods/ephemeralcontainers]
"""

#: kube-apiserver refuses to start with these
INVALID_LEVEL = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Everything
"""
INVALID_V1BETA1 = """\
apiVersion: audit.k8s.io/v1beta1
kind: Policy
rules:
  - level: Metadata
"""
INVALID_NO_RULES = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules: []
"""
INVALID_STAGE = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestRecieved]
rules:
  - level: Metadata
"""
#: loads: strict decoding fails on the unknown field `verb`, the lenient fallback drops it
UNKNOWN_FIELD = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    verb: [get]
"""
#: group "*" is valid from 1.36
GROUP_WILDCARD = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    resources:
      - group: "*"
        resources: [secrets]
  - level: Metadata
"""

ALL: dict[str, str] = {
    "covers-3": COVERS_3,
    "covers-all": COVERS_ALL,
    "covers-2": COVERS_2,
    "covers-2-pods-rbac": COVERS_2_PODS_RBAC,
    "covers-1": COVERS_1,
    "invalid-level": INVALID_LEVEL,
    "invalid-v1beta1": INVALID_V1BETA1,
    "invalid-no-rules": INVALID_NO_RULES,
    "invalid-stage": INVALID_STAGE,
    "unknown-field": UNKNOWN_FIELD,
    "group-wildcard": GROUP_WILDCARD,
}

# --------------------------------------------------------------------------- apiserver flags

POLICY_PATH = "/etc/kubernetes/audit/policy.yaml"
LOG_DIR = "/var/log/kubernetes/audit"
LOG_PATH = f"{LOG_DIR}/audit.log"
COMPLIANT_FLAGS = {
    "audit-policy-file": POLICY_PATH,
    "audit-log-path": LOG_PATH,
    "audit-log-maxage": "30",
    "audit-log-maxbackup": "10",
    "audit-log-maxsize": "100",
}


def flags_with(**changes: str | None) -> dict[str, str]:
    """COMPLIANT_FLAGS with changes (``audit_log_maxage="7"``); None drops the flag."""
    flags = dict(COMPLIANT_FLAGS)
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            flags.pop(name, None)
        else:
            flags[name] = value
    return flags


def cluster_configuration(**changes: str | None) -> str:
    """A kubeadm v1beta4 ClusterConfiguration (extraArgs as a name/value list) with audit settings."""
    cc = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "kubernetesVersion": "v1.37.2",
        "clusterName": "e2e",
        "controlPlaneEndpoint": "127.0.0.1:6443",
        "apiServer": {
            "extraArgs": [{"name": k, "value": v} for k, v in flags_with(**changes).items()],
            "extraVolumes": [
                {
                    "name": "audit-policy",
                    "hostPath": "/etc/kubernetes/audit",
                    "mountPath": "/etc/kubernetes/audit",
                    "readOnly": True,
                    "pathType": "DirectoryOrCreate",
                },
                {"name": "audit-log", "hostPath": LOG_DIR, "mountPath": LOG_DIR, "pathType": "DirectoryOrCreate"},
            ],
        },
        "networking": {"serviceSubnet": "10.96.0.0/12", "podSubnet": "10.244.0.0/16", "dnsDomain": "cluster.local"},
    }
    return yaml.safe_dump(cc, sort_keys=False)


def apiserver_command(**changes: str | None) -> list[str]:
    return [
        "kube-apiserver",
        "--advertise-address=10.0.0.10",
        "--secure-port=6443",
        *(f"--{k}={v}" for k, v in flags_with(**changes).items()),
    ]


def apiserver_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) a kubeadm static Pod has for auditing."""
    volumes: list[dict[str, Any]] = [
        {"name": "audit-policy", "hostPath": {"path": "/etc/kubernetes/audit", "type": "DirectoryOrCreate"}},
        {"name": "audit-log", "hostPath": {"path": LOG_DIR, "type": "DirectoryOrCreate"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "audit-policy", "mountPath": "/etc/kubernetes/audit", "readOnly": True},
        {"name": "audit-log", "mountPath": LOG_DIR},
    ]
    return volumes, mounts
