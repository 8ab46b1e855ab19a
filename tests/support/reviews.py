"""AdmissionReview requests and the objects in them, shared by the service's unit and integration
tests and the load benchmark (bench/load.py)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

GOOD_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/version", "/livez*", "/readyz*"]
  - level: Metadata
    resources: [{group: "", resources: ["secrets", "configmaps", "serviceaccounts/token"]}]
  - level: RequestResponse
    resources:
      - {group: "rbac.authorization.k8s.io"}
      - {group: "", resources: ["pods/exec", "pods/attach", "pods/portforward", "pods/ephemeralcontainers"]}
  - level: Request
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: Metadata
"""

# Covers nothing: secrets silenced, everything else unmatched (default None).
WEAK_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    resources: [{group: "", resources: ["secrets"]}]
  - level: Metadata
    verbs: ["create"]
    resources: [{group: "", resources: ["namespaces"]}]
"""

# Worse than WEAK_POLICY? No: the same coverage with one more rule.
WEAK_POLICY_2 = (
    WEAK_POLICY
    + """  - level: Metadata
    verbs: ["delete"]
    resources: [{group: "", resources: ["namespaces"]}]
"""
)

INVALID_POLICY = """apiVersion: audit.k8s.io/v1beta1
kind: Policy
rules:
  - level: Metadata
"""

GOOD_FLAGS = [
    "kube-apiserver",
    "--advertise-address=10.0.0.10",
    "--audit-log-maxage=30",
    "--audit-log-maxbackup=10",
    "--audit-log-maxsize=100",
    "--audit-log-path=/var/log/kubernetes/audit/audit.log",
    "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
    "--authorization-mode=Node,RBAC",
    "--etcd-servers=https://127.0.0.1:2379",
    "--secure-port=6443",
]


# A kubeadm control plane's kube-apiserver, every flag as kubeadm writes it (with audit logging on).
KUBEADM_FLAGS = [
    "kube-apiserver",
    "--advertise-address=10.0.0.10",
    "--allow-privileged=true",
    "--audit-log-maxage=30",
    "--audit-log-maxbackup=10",
    "--audit-log-maxsize=100",
    "--audit-log-path=/var/log/kubernetes/audit/audit.log",
    "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
    "--authorization-mode=Node,RBAC",
    "--client-ca-file=/etc/kubernetes/pki/ca.crt",
    "--enable-admission-plugins=NodeRestriction",
    "--enable-bootstrap-token-auth=true",
    "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
    "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
    "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
    "--etcd-servers=https://127.0.0.1:2379",
    "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
    "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
    "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
    "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
    "--requestheader-allowed-names=front-proxy-client",
    "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
    "--secure-port=6443",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
    "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
    "--service-cluster-ip-range=10.96.0.0/12",
    "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
    "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
]


def managed_fields(manager: str) -> list[dict[str, Any]]:
    """What server-side apply records on every object (the verdict memo's key leaves it out)."""
    return [{"manager": manager, "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:settings.json": {}}}}]  # fmt: skip


def configmap(
    data: dict[str, Any] | None,
    *,
    name: str = "audit-policy",
    namespace: str = "kube-system",
    labels: dict[str, str] | None = None,
    manager: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "resourceVersion": "1"}
    if labels:
        meta["labels"] = labels
    if manager:
        meta["managedFields"] = managed_fields(manager)
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data is not None:
        obj["data"] = data
    return obj


def policy_configmap(policy: str = GOOD_POLICY, **kw: Any) -> dict[str, Any]:
    return configmap({"policy.yaml": policy}, **kw)


def apiserver_pod(
    flags: list[str] | None = None,
    *,
    mirror: bool = True,
    name: str = "kube-apiserver-cp-1",
    drop: tuple[str, ...] = (),
    config_hash: str = "abc",
) -> dict[str, Any]:
    command = [f for f in (GOOD_FLAGS if flags is None else flags) if not any(f.startswith(d) for d in drop)]
    annotations = {"kubernetes.io/config.source": "file", "kubernetes.io/config.hash": config_hash}
    if mirror:
        annotations["kubernetes.io/config.mirror"] = config_hash
    mounts = [
        ("audit-policy", "/etc/kubernetes/audit-policy.yaml", True, "File"),
        ("audit-log", "/var/log/kubernetes/audit/", False, "DirectoryOrCreate"),
        ("k8s-certs", "/etc/kubernetes/pki", True, "DirectoryOrCreate"),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "kube-system",
            "uid": str(uuid.uuid4()),
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
            "annotations": annotations,
        },
        "spec": {
            "containers": [
                {
                    "name": "kube-apiserver",
                    "image": "registry.k8s.io/kube-apiserver:v1.35.0",
                    "command": command,
                    "volumeMounts": [{"name": n, "mountPath": p, "readOnly": ro} for n, p, ro, _ in mounts],
                }
            ],
            "hostNetwork": True,
            "volumes": [{"name": n, "hostPath": {"path": p, "type": t}} for n, p, _, t in mounts],
        },
    }


def plain_pod(name: str = "web-1", namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "web", "image": "nginx", "args": ["--kube-apiserver-lookalike"]}]},
    }


def review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    kind: str | None = None,
    group: str = "",
    user: str = "alice",
    groups: list[str] | None = None,
    dry_run: bool = False,
    uid: str | None = None,
    sub_resource: str | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    subject = obj if obj is not None else old
    assert subject is not None
    kind = kind or subject.get("kind", "ConfigMap")
    meta = subject.get("metadata", {})
    resource = {"ConfigMap": "configmaps", "Pod": "pods"}.get(kind, kind.lower() + "s")
    req: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "operation": operation,
        "userInfo": {"username": user, "groups": list(groups or ["system:authenticated"])},
        "object": copy.deepcopy(obj),
        "oldObject": copy.deepcopy(old),
        "dryRun": dry_run,
    }
    if sub_resource:
        req["subResource"] = sub_resource
    if options is not None:
        req["options"] = options
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


def body(review_doc: dict[str, Any]) -> bytes:
    return json.dumps(review_doc).encode()


# ------------------------------------------------------------------- hostile content


def alias_bomb(levels: int = 9) -> str:
    """'Billion laughs': 10**levels nodes once expanded, a few hundred bytes as text."""
    lines = ["apiVersion: audit.k8s.io/v1", "kind: Policy", "a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines += ["rules:", "  - level: Metadata", f"    users: *a{levels - 1}"]
    return "\n".join(lines) + "\n"


def deeply_nested_yaml(depth: int = 50_000) -> str:
    return "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: " + "[" * depth + "]" * depth + "\n"


def huge_policy(rules: int) -> str:
    """A valid policy of ``rules`` distinct one-line rules (each shadows nothing)."""
    head = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
    body_lines = [f"- {{level: Metadata, users: [u{i}], namespaces: [ns{i}]}}\n" for i in range(rules)]
    return head + "".join(body_lines) + "- level: Metadata\n"


def many_keys_configmap(n: int = 10_000, *, with_policy: bool = True) -> dict[str, Any]:
    data = {f"key-{i}": f"value {i}" for i in range(n)}
    if with_policy:
        data["policy.yaml"] = GOOD_POLICY
    return configmap(data, name="many-keys")
