"""The Helm chart, rendered by a real `helm` (lint, template) and judged object by object.

What a validating webhook must never get wrong is checked on every values file in ci/: it exempts
its own namespace (and values cannot undo that), `sideEffects: None`, the mirror-Pod entry never
intercepts DELETE, `warn` fails open, the pods run under the restricted profile, and the
certificate the chart generates is the one its caBundle trusts. The CEL matchConditions are also
evaluated, in spirit, by a small translator for the subset of CEL the chart uses.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import tls
from tests.support.tools import REPO, tool

CHART = REPO / "charts" / "auditwarden"
CI_VALUES = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
NEW = "1.37.0"
OLD = "1.29.0"
NS = "auditwarden"
RELEASE = "aw"
FULLNAME = "aw-auditwarden"
CLUSTER_SCOPED = {"ValidatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
HELM_INSTALL = (
    "GOBIN=${AUDITWARDEN_TOOLS:-$HOME/.cache/auditwarden/tools}/bin go install helm.sh/helm/v4/cmd/helm@v4.2.4"
)

Doc = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> Path:
    path = tool("helm")
    if path is None:
        message = f"helm is not installed; install it with: {HELM_INSTALL}"
        if os.environ.get("AUDITWARDEN_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return path


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HELM_CACHE_HOME": tempfile.gettempdir() + "/auditwarden-helm-cache"},
    )


def template(
    helm: Path,
    values: str | None = None,
    *args: str,
    kube_version: str = NEW,
    namespace: str = NS,
    check: bool = True,
) -> tuple[list[Doc], subprocess.CompletedProcess[str]]:
    cmd = ["template", RELEASE, str(CHART), "--namespace", namespace, "--kube-version", kube_version]
    if values:
        cmd += ["-f", str(CHART / "ci" / values)]
    result = run_helm(helm, *cmd, *args)
    if check:
        assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d] if result.returncode == 0 else []
    return docs, result


def render(helm: Path, values: str | None = None, *args: str, kube_version: str = NEW) -> list[Doc]:
    return template(helm, values, *args, kube_version=kube_version)[0]


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str) -> Doc:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def webhooks(docs: list[Doc]) -> dict[str, Doc]:
    return {w["name"]: w for w in one(docs, "ValidatingWebhookConfiguration")["webhooks"]}


def excluded_namespaces(hook: Doc) -> set[str]:
    """Namespaces the namespaceSelector can never match (a NotIn on kubernetes.io/metadata.name)."""
    out: set[str] = set()
    for expr in hook.get("namespaceSelector", {}).get("matchExpressions", []):
        if expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "NotIn":
            out.update(expr["values"])
    return out


# ------------------------------------------------------------------------------------------
# lint and template for every ci/ values file


def test_every_mode_has_a_ci_values_file() -> None:
    assert set(CI_VALUES) >= {
        "default-values.yaml",
        "cert-manager-values.yaml",
        "existing-secret-values.yaml",
        "url-values.yaml",
        "warn-values.yaml",
    }


@pytest.mark.parametrize("values", CI_VALUES)
@pytest.mark.parametrize("kube_version", [NEW, OLD])
def test_helm_lint_passes_strict(helm: Path, values: str, kube_version: str) -> None:
    result = run_helm(
        helm,
        "lint",
        str(CHART),
        "--strict",
        "--namespace",
        NS,
        "--kube-version",
        kube_version,
        "-f",
        str(CHART / "ci" / values),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", CI_VALUES)
@pytest.mark.parametrize("kube_version", [NEW, OLD])
def test_helm_template_renders_valid_objects(helm: Path, values: str, kube_version: str) -> None:
    docs = render(helm, values, kube_version=kube_version)
    assert docs
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(d)
        assert d["metadata"]["name"]
        if d["kind"] not in CLUSTER_SCOPED:
            assert d["metadata"].get("namespace"), d["kind"]
    one(docs, "ValidatingWebhookConfiguration")


# ------------------------------------------------------------------------------------------
# The webhook configuration


@pytest.mark.parametrize("values", CI_VALUES)
@pytest.mark.parametrize("kube_version", [NEW, OLD])
def test_both_webhooks_exclude_the_release_namespace(helm: Path, values: str, kube_version: str) -> None:
    hooks = webhooks(render(helm, values, kube_version=kube_version))
    assert set(hooks) == {"configmaps.auditwarden.io", "mirrorpods.auditwarden.io"}
    for hook in hooks.values():
        assert NS in excluded_namespaces(hook)
        assert "kube-system" not in excluded_namespaces(hook)


@pytest.mark.parametrize(
    "override",
    [
        ["--set", "webhook.excludeNamespaces=null"],
        ["--set-json", 'webhook.excludeNamespaces=["team-a"]'],
        ["--set-json", "webhook.excludeNamespaces=[]"],
        ["--set", "webhook.configMaps.namespaceSelector=null"],
        ["--set-json", "webhook.configMaps.namespaceSelector={}"],
        ["--set-json", "webhook.namespaceSelector={}"],
        ["--set-json", 'webhook.excludeNamespaces=["kube-system"]'],
        ["--set", "nameOverride=other", "--set", "fullnameOverride=x"],
    ],
)
def test_values_cannot_remove_the_self_exemption(helm: Path, override: list[str]) -> None:
    docs, result = template(helm, None, *override, check=False)
    if result.returncode != 0:  # refused by the schema or the chart's own checks: also safe
        assert "Error" in result.stderr
        return
    for hook in webhooks(docs).values():
        assert NS in excluded_namespaces(hook), override


def test_other_namespaces_can_be_excluded_too(helm: Path) -> None:
    hooks = webhooks(render(helm, None, "--set-json", 'webhook.excludeNamespaces=["team-a","auditwarden"]'))
    for hook in hooks.values():
        assert excluded_namespaces(hook) == {NS, "team-a"}


def test_installing_into_kube_system_is_refused(helm: Path) -> None:
    _, result = template(helm, None, namespace="kube-system", check=False)
    assert result.returncode != 0
    assert "must not be installed into kube-system" in result.stderr


@pytest.mark.parametrize("values", CI_VALUES)
def test_webhook_entries_follow_the_safe_defaults(helm: Path, values: str) -> None:
    for hook in webhooks(render(helm, values)).values():
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["timeoutSeconds"] == 5
        assert hook["matchPolicy"] == "Equivalent"
        assert re.fullmatch(r"[a-z0-9-]+\.auditwarden\.io", hook["name"])
        [rule] = hook["rules"]
        assert rule["apiGroups"] == [""] and rule["apiVersions"] == ["v1"] and rule["scope"] == "Namespaced"


def test_default_failure_policies_and_operations(helm: Path) -> None:
    hooks = webhooks(render(helm))
    cm, pods = hooks["configmaps.auditwarden.io"], hooks["mirrorpods.auditwarden.io"]
    assert cm["failurePolicy"] == "Fail"
    assert cm["rules"][0]["resources"] == ["configmaps"]
    assert cm["rules"][0]["operations"] == ["CREATE", "UPDATE", "DELETE"]
    assert pods["failurePolicy"] == "Ignore"
    assert pods["rules"][0]["resources"] == ["pods"]
    assert pods["rules"][0]["operations"] == ["CREATE", "UPDATE"]


@pytest.mark.parametrize("values", CI_VALUES)
def test_mirror_pods_never_intercept_delete(helm: Path, values: str) -> None:
    pods = webhooks(render(helm, values))["mirrorpods.auditwarden.io"]
    assert "DELETE" not in pods["rules"][0]["operations"]
    assert "*" not in pods["rules"][0]["operations"]


@pytest.mark.parametrize("ops", ['["CREATE","UPDATE","DELETE"]', '["*"]', '["DELETE"]'])
def test_values_cannot_make_mirror_pods_intercept_delete(helm: Path, ops: str) -> None:
    _, result = template(helm, None, "--set-json", f"webhook.mirrorPods.operations={ops}", check=False)
    assert result.returncode != 0, "the schema must refuse DELETE for mirror Pods"
    assert "/webhook/mirrorPods/operations" in result.stderr


def test_warn_mode_forces_ignore_on_both_webhooks(helm: Path) -> None:
    warn_values = yaml.safe_load((CHART / "ci" / "warn-values.yaml").read_text())
    assert warn_values["webhook"]["configMaps"]["failurePolicy"] == "Fail"  # asked for Fail...
    for hook in webhooks(render(helm, "warn-values.yaml")).values():
        assert hook["failurePolicy"] == "Ignore"  # ...and still fails open


def test_a_target_in_warn_mode_fails_open_alone(helm: Path) -> None:
    hooks = webhooks(render(helm, None, "--set", "config.targets.configMaps.mode=warn"))
    assert hooks["configmaps.auditwarden.io"]["failurePolicy"] == "Ignore"
    hooks = webhooks(render(helm, None, "--set", "config.mode=warn", "--set", "config.targets.configMaps.mode=enforce"))
    assert hooks["configmaps.auditwarden.io"]["failurePolicy"] == "Fail"
    assert hooks["mirrorpods.auditwarden.io"]["failurePolicy"] == "Ignore"


@pytest.mark.parametrize("values", CI_VALUES)
def test_match_conditions_from_1_30(helm: Path, values: str) -> None:
    for hook in webhooks(render(helm, values, kube_version=NEW)).values():
        assert hook.get("matchConditions"), hook["name"]
        assert "objectSelector" not in hook
        for cond in hook["matchConditions"]:
            assert re.fullmatch(r"[a-z0-9-]+", cond["name"])
            assert cond["expression"].strip()


@pytest.mark.parametrize("values", CI_VALUES)
def test_object_selector_fallback_before_1_30(helm: Path, values: str) -> None:
    hooks = webhooks(render(helm, values, kube_version=OLD))
    for hook in hooks.values():
        assert "matchConditions" not in hook
    assert hooks["configmaps.auditwarden.io"]["objectSelector"] == {
        "matchExpressions": [{"key": "auditwarden.io/kind", "operator": "Exists"}]
    }
    assert hooks["mirrorpods.auditwarden.io"]["objectSelector"] == {"matchLabels": {"component": "kube-apiserver"}}


def test_scoping_can_be_forced(helm: Path) -> None:
    hooks = webhooks(render(helm, None, "--set", "webhook.scoping=objectSelector", kube_version=NEW))
    assert all("objectSelector" in h and "matchConditions" not in h for h in hooks.values())


# ------------------------------------------------------------------------------------------
# The CEL matchConditions, evaluated in spirit


class _Obj:
    """A Kubernetes object as CEL sees it: field selection on maps, errors on missing fields."""

    def __init__(self, value: dict[str, Any]) -> None:
        self._v = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._v:
            raise KeyError(f"no such key: {name}")  # CEL: "no such key" -> the condition errors
        return _wrap(self._v[name])

    def __getitem__(self, key: str) -> Any:
        return _wrap(self._v[key])

    def __contains__(self, key: str) -> bool:
        return key in self._v

    def __iter__(self) -> Iterator[str]:
        return iter(self._v)

    def __len__(self) -> int:
        return len(self._v)


def _wrap(value: Any) -> Any:
    return _Obj(value) if isinstance(value, dict) else value


def _has(obj: Any, *path: str) -> bool:
    for name in path[:-1]:
        obj = getattr(obj, name)
    return path[-1] in obj


def cel_to_python(expr: str) -> str:
    """Translate the CEL subset the chart uses into a Python expression."""
    out = expr
    # has(a.b.c) -> _has(a, 'b', 'c')
    out = re.sub(
        r"has\((\w+)((?:\.\w+)+)\)",
        lambda m: "_has({}, {})".format(m.group(1), ", ".join(repr(p) for p in m.group(2).split(".")[1:])),
        out,
    )
    # X.exists(k, body) -> any((body) for k in X), X.all(k, body) -> all(...), with balanced parentheses
    while (m := re.search(r"([\w.\[\]]+)\.(exists|all)\((\w+),", out)) is not None:
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(out[i], 0)
            i += 1
        body = out[m.end() : i - 1]
        fn = "any" if m.group(2) == "exists" else "all"
        out = f"{out[: m.start()]}{fn}(({body}) for {m.group(3)} in {m.group(1)}){out[i:]}"
    # s.matches(r'RE') -> _matches(s, r'RE') (RE2 and Python agree on the patterns the chart uses)
    out = re.sub(r"([\w.\[\]]+)\.matches\(", r"_matches(\1, ", out)
    out = re.sub(r"([\w.\[\]]+)\.contains\(", r"_contains(\1, ", out)
    out = out.replace("size(", "len(")
    out = out.replace("&&", " and ").replace("||", " or ").replace("null", "None")
    code = re.sub(r"r?'(?:[^'\\]|\\.)*'", "''", out)  # string literals may hold '!'
    assert "!" not in code.replace("!=", ""), f"untranslated negation in {expr!r}"
    return out


class CelCost:
    """cel-go's runtime cost of the string functions (``interpreter/runtimecost.go``, v0.29.2), which
    dominate the condition's cost; kube-apiserver stops an expression at ``PerCallLimit`` = 1,000,000
    (``k8s.io/apiserver/pkg/apis/cel/config.go``) and then applies the failure policy."""

    def __init__(self) -> None:
        self.total = 0

    def contains(self, value: str, sub: str) -> bool:  # ContainsString: ceil(0.1 n) * ceil(0.1 m)
        self.total += math.ceil(len(value) * 0.1) * math.ceil(len(sub) * 0.1)
        return sub in value

    def matches(self, value: str, pattern: str) -> bool:  # Matches: ceil(0.1 (1 + n)) * ceil(0.25 m); RE2, unanchored
        self.total += math.ceil((1 + len(value)) * 0.1) * math.ceil(len(pattern) * 0.25)
        return re.search(pattern, value) is not None


def evaluate(expr: str, obj: dict[str, Any] | None, old: dict[str, Any] | None, cost: CelCost | None = None) -> bool:
    code = cel_to_python(expr)
    cost = cost or CelCost()
    env = {"object": _wrap(obj), "oldObject": _wrap(old), "_has": _has, "_matches": cost.matches,
           "_contains": cost.contains, "any": any, "all": all, "len": len}  # fmt: skip
    result = eval(f"({code})", {"__builtins__": {}, **env})
    assert isinstance(result, bool)
    return result


def configmap(name: str = "x", labels: dict[str, str] | None = None, data: dict[str, str] | None = None) -> Doc:
    meta: Doc = {"name": name, "namespace": "team-a"}
    if labels is not None:
        meta["labels"] = labels
    cm: Doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data is not None:
        cm["data"] = data
    return cm


POLICY = configmap("audit", data={"policy.yaml": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n"})
LABELLED = configmap("anything", labels={"auditwarden.io/kind": "audit-policy"})
KUBEADM = configmap("kubeadm-config", data={"ClusterConfiguration": "apiServer: {}\n"})
APISERVER_FLAGS = configmap("flags", data={"args": "kube-apiserver --audit-log-path=-"})
UNRELATED = configmap("app-settings", labels={"app": "web"}, data={"color": "blue"})
BARE = configmap("bare")  # no labels, no data: every field access must be guarded


@pytest.fixture(scope="module")
def conditions(helm: Path) -> dict[str, str]:
    hooks = webhooks(render(helm))
    out = {}
    for name, hook in hooks.items():
        [cond] = hook["matchConditions"]
        out[name] = cond["expression"]
    return out


def test_configmap_condition_handles_delete_through_old_object(conditions: dict[str, str]) -> None:
    expr = conditions["configmaps.auditwarden.io"]
    assert "oldObject" in expr and "object != null" in expr and "oldObject != null" in expr
    assert "has(object.data)" in expr and "has(oldObject.data)" in expr
    cel: Callable[[Doc | None, Doc | None], bool] = lambda o, old: evaluate(expr, o, old)  # noqa: E731
    for relevant in (POLICY, LABELLED, KUBEADM, APISERVER_FLAGS):
        assert cel(relevant, None), relevant  # CREATE
        assert cel(None, relevant), relevant  # DELETE: object is null
        assert cel(relevant, relevant)  # UPDATE
        assert cel(UNRELATED, relevant)  # UPDATE that strips the policy out is still judged
        assert cel(relevant, UNRELATED)  # UPDATE that turns a ConfigMap into a policy
    for irrelevant in (UNRELATED, BARE):
        assert not cel(irrelevant, None)
        assert not cel(None, irrelevant)
        assert not cel(irrelevant, irrelevant)


def test_mirror_pod_condition(conditions: dict[str, str]) -> None:
    expr = conditions["mirrorpods.auditwarden.io"]
    mirror = {"metadata": {"name": "kube-apiserver-cp1", "annotations": {"kubernetes.io/config.mirror": "abc"}}}
    plain = {"metadata": {"name": "web-1"}}
    annotated = {"metadata": {"name": "web-2", "annotations": {"example.com/x": "y"}}}
    assert evaluate(expr, mirror, None)
    assert evaluate(expr, mirror, mirror)
    assert not evaluate(expr, plain, None)
    assert not evaluate(expr, annotated, annotated)


# ------------------------------------------------------------------------------------------
# Deployment, Service, PDB, RBAC, ConfigMap


def test_deployment_is_highly_available_and_restricted(helm: Path) -> None:
    docs = render(helm)
    dep = one(docs, "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    [spread] = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert pod["automountServiceAccountToken"] is False

    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532 and isinstance(psc["runAsUser"], int)
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in sc
    assert not any("hostPath" in v for v in pod["volumes"])

    assert container["command"] == ["auditwarden"]
    assert container["args"] == [
        "serve",
        "--bind",
        "0.0.0.0:8443",
        "--config",
        "/etc/auditwarden/config.yaml",
        "--tls-cert",
        "/etc/auditwarden/tls/tls.crt",
        "--tls-key",
        "/etc/auditwarden/tls/tls.key",
        "--max-connections",
        "1000",
        "--max-connections-per-peer",
        "500",
        "--new-connections-per-peer-per-second",
        "100",
        "--new-connections-per-peer-burst",
        "1000",
        "--handshake-timeout",
        "3",
        "--header-timeout",
        "5",
        "--body-timeout",
        "10",
    ]
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}
    assert container["resources"]["requests"] and container["resources"]["limits"]

    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    config_volume = volumes[mounts["/etc/auditwarden"]["name"]]
    assert mounts["/etc/auditwarden"]["readOnly"] is True
    paths = {
        item["path"]: (kind, source[kind]["name"])
        for source in config_volume["projected"]["sources"]
        for kind in ("configMap", "secret")
        if kind in source
        for item in source[kind]["items"]
    }
    assert paths["config.yaml"] == ("configMap", f"{FULLNAME}-config")
    assert paths["tls/tls.crt"] == ("secret", f"{FULLNAME}-tls")
    assert paths["tls/tls.key"] == ("secret", f"{FULLNAME}-tls")


def test_connection_caps_and_deadlines_are_passed_to_serve(helm: Path) -> None:
    """The per-pod connection cap and the deadlines against hostile clients are values (docs/webhook.md)."""
    docs = render(helm, None, "--set", "connections.maxConnections=4000", "--set",
                  "connections.maxConnectionsPerPeer=64", "--set", "connections.newConnectionsPerPeerPerSecond=20",
                  "--set-json",
                  "connections.handshakeTimeoutSeconds=1.5")  # fmt: skip
    [container] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--max-connections") + 1] == "4000"
    assert args[args.index("--max-connections-per-peer") + 1] == "64"
    assert args[args.index("--new-connections-per-peer-per-second") + 1] == "20"
    assert args[args.index("--handshake-timeout") + 1] == "1.5"
    assert args[args.index("--body-timeout") + 1] == "10"


def test_service_maps_443_to_the_https_port(helm: Path) -> None:
    docs = render(helm)
    svc = one(docs, "Service")
    assert svc["metadata"]["name"] == FULLNAME
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    service = webhooks(docs)["configmaps.auditwarden.io"]["clientConfig"]["service"]
    assert service == {"name": FULLNAME, "namespace": NS, "path": "/validate", "port": 443}


def test_pdb_keeps_one_pod(helm: Path) -> None:
    docs = render(helm)
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    # A PDB over a single replica would block every node drain: not rendered then.
    assert not by_kind(render(helm, None, "--set", "replicaCount=1"), "PodDisruptionBudget")


def test_a_terminating_pod_keeps_serving_until_the_endpoints_have_dropped_it(helm: Path) -> None:
    # the node tests (tests/e2e/node) show why: a rolling update must not fail a single admission
    for version, action in ((NEW, {"sleep": {"seconds": 5}}), (OLD, {"exec": {"command": ["sleep", "5"]}})):
        pod = one(render(helm, kube_version=version), "Deployment")["spec"]["template"]["spec"]
        assert pod["containers"][0]["lifecycle"]["preStop"] == action
        assert pod["terminationGracePeriodSeconds"] == 30
    pod = one(render(helm, None, "--set", "preStopSleepSeconds=0"), "Deployment")["spec"]["template"]["spec"]
    assert "lifecycle" not in pod["containers"][0]


def test_no_rbac_and_no_token_without_policy_sources(helm: Path) -> None:
    docs = render(helm)
    assert not by_kind(docs, "Role") and not by_kind(docs, "RoleBinding")
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False


def test_the_scan_cluster_role_is_opt_in_read_only_and_bound_to_nothing(helm: Path) -> None:
    """`auditwarden scan`'s ClusterRole: off by default; when asked for, get/list on configmaps and pods and
    get on OpenShift's apiservers, nothing else, and no binding (the user binds it to the scanning identity)."""
    assert by_kind(render(helm), "ClusterRole") == []
    docs = render(helm, None, "--set", "scanClusterRole.create=true")
    role = one(docs, "ClusterRole")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["config.openshift.io"], "resources": ["apiservers"], "verbs": ["get"]},
    ]
    assert by_kind(docs, "ClusterRoleBinding") == [] and by_kind(docs, "RoleBinding") == []


def test_rbac_is_get_on_the_named_configmaps_only(helm: Path) -> None:
    docs = render(
        helm,
        None,
        "--set-json",
        'config.policySources={"/etc/kubernetes/audit-policy.yaml":"kube-system/audit-policy",'
        '"/etc/kubernetes/b.yaml":"kube-system/audit-b","/etc/k/c.yaml":"platform/audit-c"}',
    )
    roles = {r["metadata"]["namespace"]: r for r in by_kind(docs, "Role")}
    assert set(roles) == {"kube-system", "platform"}
    assert roles["kube-system"]["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["audit-b", "audit-policy"]}
    ]
    assert roles["platform"]["rules"][0]["resourceNames"] == ["audit-c"]
    bindings = {b["metadata"]["namespace"]: b for b in by_kind(docs, "RoleBinding")}
    assert set(bindings) == set(roles)
    for ns, binding in bindings.items():
        assert binding["roleRef"]["name"] == roles[ns]["metadata"]["name"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NS}]
    assert not by_kind(docs, "ClusterRole")
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def test_bad_policy_source_reference_is_refused(helm: Path) -> None:
    _, result = template(helm, None, "--set-json", 'config.policySources={"/a.yaml":"no-slash"}', check=False)
    assert result.returncode != 0
    assert "policySources" in result.stderr


def test_a_policy_source_with_a_data_key_grants_get_on_the_configmap_alone(helm: Path) -> None:
    docs = render(helm, None, "--set-json", 'config.policySources={"/etc/kubernetes/a.yaml":"ops/policies#a.yaml"}')
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"][0]["resourceNames"] == ["policies"]


def test_configmap_carries_the_service_configuration(helm: Path) -> None:
    docs = render(helm, "existing-secret-values.yaml")
    cm = one(docs, "ConfigMap")
    assert cm["metadata"]["name"] == f"{FULLNAME}-config"
    config = yaml.safe_load(cm["data"]["config.yaml"])
    # The whole `config` values map: the chart's defaults (the service's, generated from its schema)
    # with the values file's keys over them.
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    assert config == {
        **defaults,
        "profile": "strict",
        "exemptions": {"users": [], "groups": ["platform:break-glass"]},
        "policySources": {
            "/etc/kubernetes/audit-policy.yaml": "kube-system/audit-policy",
            "/etc/kubernetes/audit/extra.yaml": "kube-system/audit-policy-extra",
        },
    }
    assert config["maxRequestBytes"] == 3145728 and isinstance(config["maxRequestBytes"], int)
    warn = yaml.safe_load(one(render(helm, "warn-values.yaml"), "ConfigMap")["data"]["config.yaml"])
    assert warn["mode"] == "warn" and warn["profile"] == "stig" and warn["kubernetesVersion"] == "1.33"
    targets = yaml.safe_load(
        one(render(helm, None, "--set", "config.targets.mirrorPods.mode=warn"), "ConfigMap")["data"]["config.yaml"]
    )
    assert targets["targets"] == {"configMaps": {"mode": ""}, "mirrorPods": {"mode": "warn"}}
    catalog = yaml.safe_load(
        one(render(helm, None, "--set", "categoriesCatalog=categories: []"), "ConfigMap")["data"]["config.yaml"]
    )
    assert catalog["categoriesFile"] == "/etc/auditwarden/categories.yaml"


def test_config_change_rolls_the_pods(helm: Path) -> None:
    def checksum(*args: str) -> str:
        dep = one(render(helm, None, *args), "Deployment")
        return str(dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "config.profile=strict")


def test_network_policy_and_service_monitor_are_optional(helm: Path) -> None:
    plain = render(helm)
    assert not by_kind(plain, "NetworkPolicy") and not by_kind(plain, "ServiceMonitor")
    docs = render(helm, "cert-manager-values.yaml")
    netpol = one(docs, "NetworkPolicy")
    assert netpol["spec"]["policyTypes"] == ["Ingress"]
    [rule] = netpol["spec"]["ingress"]
    assert rule["ports"] == [{"port": "https", "protocol": "TCP"}]
    assert rule["from"] == [{"ipBlock": {"cidr": "10.0.0.0/24"}}]
    konnectivity = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "konnectivity-agent"}}}  # fmt: skip
    peers = render(helm, "cert-manager-values.yaml", "--set-json",
                   f"networkPolicy.apiServerFrom=[{json.dumps(konnectivity)}]")  # fmt: skip
    [rule] = one(peers, "NetworkPolicy")["spec"]["ingress"]
    assert rule["from"] == [{"ipBlock": {"cidr": "10.0.0.0/24"}}, konnectivity]
    only_peers = render(helm, None, "--set", "networkPolicy.enabled=true", "--set-json",
                        f"networkPolicy.apiServerFrom=[{json.dumps(konnectivity)}]")  # fmt: skip
    [rule] = one(only_peers, "NetworkPolicy")["spec"]["ingress"]
    assert rule["from"] == [konnectivity]
    monitor = one(docs, "ServiceMonitor")
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["path"] == "/metrics"


# ------------------------------------------------------------------------------------------
# Certificates: generated, cert-manager, existing Secret, url


def _handshake(cert_pem: bytes, key_pem: bytes, ca_pem: bytes, server_name: str) -> None:
    """A real TLS handshake: server with cert/key on loopback, client trusting only ca_pem."""
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        server_ctx = tls.server_context(cert_file, key_file)
    client_ctx = ssl.create_default_context(cadata=ca_pem.decode())
    assert tls.handshake(server_ctx, client_ctx, server_name).received == tls.GREETING


def test_generated_certificate_is_what_the_ca_bundle_trusts(helm: Path) -> None:
    from cryptography import x509

    docs = render(helm)
    secret = one(docs, "Secret")
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["name"] == f"{FULLNAME}-tls"
    assert int(secret["metadata"]["annotations"]["auditwarden.io/not-after"]) > 0
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    hooks = webhooks(docs)
    bundles = {h["clientConfig"]["caBundle"] for h in hooks.values()}
    assert bundles == {secret["data"]["ca.crt"]}, "caBundle must be the Secret's ca.crt"

    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    leaf = x509.load_pem_x509_certificate(data["tls.crt"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        FULLNAME,
        f"{FULLNAME}.{NS}",
        f"{FULLNAME}.{NS}.svc",
        f"{FULLNAME}.{NS}.svc.cluster.local",
    ]
    # The name the kube-apiserver dials for a Service webhook is NAME.NS.svc.
    _handshake(data["tls.crt"], data["tls.key"], data["ca.crt"], f"{FULLNAME}.{NS}.svc")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(data["tls.crt"], data["tls.key"], data["ca.crt"], f"{FULLNAME}.other.svc")


def test_cert_manager_mode_injects_the_ca(helm: Path) -> None:
    docs = render(helm, "cert-manager-values.yaml")
    assert not by_kind(docs, "Secret"), "cert-manager writes the Secret, not the chart"
    certs = {c["metadata"]["name"]: c for c in by_kind(docs, "Certificate")}
    serving = certs[f"{FULLNAME}-tls"]
    assert serving["spec"]["secretName"] == f"{FULLNAME}-tls"
    assert serving["spec"]["dnsNames"] == [
        FULLNAME,
        f"{FULLNAME}.{NS}",
        f"{FULLNAME}.{NS}.svc",
        f"{FULLNAME}.{NS}.svc.cluster.local",
    ]
    assert "server auth" in serving["spec"]["usages"]
    assert certs[f"{FULLNAME}-ca"]["spec"]["isCA"] is True
    issuers = {i["metadata"]["name"] for i in by_kind(docs, "Issuer")}
    assert serving["spec"]["issuerRef"]["name"] in issuers
    vwc = one(docs, "ValidatingWebhookConfiguration")
    assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NS}/{FULLNAME}-tls"
    for hook in vwc["webhooks"]:
        assert "caBundle" not in hook["clientConfig"]
    # An external issuer replaces the chart's own CA.
    docs = render(
        helm, "cert-manager-values.yaml", "--set-json", 'certManager.issuerRef={"name":"corp","kind":"ClusterIssuer"}'
    )
    assert not by_kind(docs, "Issuer")
    assert one(docs, "Certificate")["spec"]["issuerRef"] == {
        "name": "corp",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }


def test_existing_secret_is_mounted_never_rendered(helm: Path) -> None:
    values = yaml.safe_load((CHART / "ci" / "existing-secret-values.yaml").read_text())
    docs = render(helm, "existing-secret-values.yaml")
    assert not by_kind(docs, "Secret") and not by_kind(docs, "Certificate")
    for hook in webhooks(docs).values():
        assert hook["clientConfig"]["caBundle"] == values["tls"]["caBundle"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    secrets = [
        s["secret"]["name"] for v in pod["volumes"] for s in v.get("projected", {}).get("sources", []) if "secret" in s
    ]
    assert secrets == [values["tls"]["existingSecret"]]


def test_existing_secret_without_ca_bundle_is_refused(helm: Path) -> None:
    _, result = template(helm, None, "--set", "tls.existingSecret=mine", check=False)
    assert result.returncode != 0
    assert "tls.caBundle" in result.stderr


def test_url_mode_renders_only_the_webhook_configuration(helm: Path) -> None:
    values = yaml.safe_load((CHART / "ci" / "url-values.yaml").read_text())
    docs = render(helm, "url-values.yaml")
    assert [d["kind"] for d in docs] == ["ValidatingWebhookConfiguration"]
    for hook in webhooks(docs).values():
        assert hook["clientConfig"] == {"url": values["webhook"]["url"], "caBundle": values["tls"]["caBundle"]}
        assert NS in excluded_namespaces(hook)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8443/validate", "https://user:pw@host/validate", "https://host/validate?x=1"]
)
def test_url_mode_refuses_urls_the_apiserver_would_reject(helm: Path, url: str) -> None:
    _, result = template(helm, None, "--set", f"webhook.url={url}", check=False)
    assert result.returncode != 0
    assert "/webhook/url" in result.stderr


# ------------------------------------------------------------------------------------------
# Values validation and documentation


def test_schema_refuses_a_banana_replica_count(helm: Path) -> None:
    _, result = template(helm, None, "--set", "replicaCount=banana", check=False)
    assert result.returncode != 0
    assert "/replicaCount" in result.stderr
    assert "want integer" in result.stderr or "integer" in result.stderr


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ("config.mode=off", "/config/mode"),
        ("config.profile=loose", "/config/profile"),
        ("webhook.timeoutSeconds=60", "/webhook/timeoutSeconds"),
        ("connections.maxConnections=0", "/connections/maxConnections"),
        ("connections.bodyTimeoutSeconds=0", "/connections/bodyTimeoutSeconds"),
        ("webhook.configMaps.failurePolicy=Maybe", "/webhook/configMaps/failurePolicy"),
        ("replicaCont=3", "replicaCont"),
    ],
)
def test_schema_refuses_bad_values_with_the_path(helm: Path, override: str, where: str) -> None:
    _, result = template(helm, None, "--set", override, check=False)
    assert result.returncode != 0
    assert where in result.stderr


def test_every_values_key_is_commented() -> None:
    """Each key has a comment above it; keys under a `# --` documented block inherit it."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    documented_indent: int | None = None
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z]\w*):", line)
        if not m:
            continue
        indent = len(m.group(1))
        if documented_indent is not None and indent > documented_indent:
            continue
        documented_indent = None
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j < 0 or not lines[j].lstrip().startswith("#"):
            undocumented.append(f"{i + 1}: {line.strip()}")
            continue
        k = j
        while k >= 0 and lines[k].lstrip().startswith("#"):
            k -= 1
        if lines[k + 1].lstrip().startswith("# --"):
            documented_indent = indent
    assert not undocumented, "values.yaml keys without a comment:\n" + "\n".join(undocumented)


def test_notes_show_mode_profile_and_how_to_check(helm: Path) -> None:
    result = run_helm(
        helm,
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NS,
        "--dry-run=client",
        "-f",
        str(CHART / "ci" / "warn-values.yaml"),
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "mode:     warn" in notes
    assert "profile:  stig" in notes
    assert "failurePolicy Ignore" in notes
    assert "kubectl apply --dry-run=server -f -" in notes
    assert "auditwarden.io/kind: audit-policy" in notes
    assert "apiVersion: audit.k8s.io/v1" in notes


def test_chart_metadata(helm: Path) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "auditwarden"
    assert chart["type"] == "application"
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_background_reports_are_opt_in_and_their_crds_are_the_pinned_copies(helm: Path) -> None:
    """reports.enabled: a CronJob scanning every namespace and writing OpenReports Reports and ClusterReports, with a
    ServiceAccount that reads what a scan reads and manages those reports only; reports.installCRDs: the pinned
    CRDs, unchanged."""
    assert not by_kind(render(helm), "CronJob") and not by_kind(render(helm), "CustomResourceDefinition")
    docs = render(helm, None, "--set", "reports.enabled=true", "--set", "reports.installCRDs=true")
    job = one(docs, "CronJob")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    # a finding is in the reports, not a failed Job (exit 2, a read or write that failed, still fails it)
    assert container["args"][:6] == ["scan", "--all-namespaces", "--write-reports", "--reports-format", "openreports",
                                     "--exit-zero"]  # fmt: skip
    assert pod["serviceAccountName"] == f"{FULLNAME}-reports"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    role = next(d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == f"{FULLNAME}-reports")
    assert {(tuple(r["apiGroups"]), tuple(r["resources"])): r["verbs"] for r in role["rules"]} == {
        (("",), ("configmaps", "pods")): ["get", "list"],
        (("config.openshift.io",), ("apiservers",)): ["get"],
        (("openreports.io",), ("reports", "clusterreports")): ["get", "list", "create", "update", "delete"],
    }
    crds = {d["metadata"]["name"]: d for d in by_kind(docs, "CustomResourceDefinition")}
    files = Path(__file__).resolve().parents[2] / "charts" / "auditwarden" / "files" / "openreports"
    assert sorted(crds) == ["clusterreports.openreports.io", "reports.openreports.io"]
    for name, file in (("reports.openreports.io", "openreports.io_reports.yaml"),
                       ("clusterreports.openreports.io", "openreports.io_clusterreports.yaml")):  # fmt: skip
        assert crds[name] == yaml.safe_load((files / file).read_text())


def test_reports_format_wgpolicyk8s_writes_and_installs_the_wg_policy_api_instead(helm: Path) -> None:
    """reports.format=wgpolicyk8s: the scan writes PolicyReport/ClusterPolicyReport, its role manages those and not
    OpenReports', and installCRDs renders the pinned wgpolicyk8s.io copies only."""
    docs = render(helm, None, "--set", "reports.enabled=true", "--set", "reports.installCRDs=true",
                  "--set", "reports.format=wgpolicyk8s")  # fmt: skip
    [container] = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][3:5] == ["--reports-format", "wgpolicyk8s"]
    role = next(d for d in by_kind(docs, "ClusterRole") if d["metadata"]["name"] == f"{FULLNAME}-reports")
    groups = {g for r in role["rules"] for g in r["apiGroups"]}
    assert "openreports.io" not in groups
    assert [r["resources"] for r in role["rules"] if r["apiGroups"] == ["wgpolicyk8s.io"]] == [
        ["policyreports", "clusterpolicyreports"]]  # fmt: skip
    crds = {d["metadata"]["name"]: d for d in by_kind(docs, "CustomResourceDefinition")}
    files = Path(__file__).resolve().parents[2] / "charts" / "auditwarden" / "files" / "wgpolicyk8s"
    assert crds == {
        "policyreports.wgpolicyk8s.io": yaml.safe_load((files / "wgpolicyk8s.io_policyreports.yaml").read_text()),
        "clusterpolicyreports.wgpolicyk8s.io": yaml.safe_load(
            (files / "wgpolicyk8s.io_clusterpolicyreports.yaml").read_text()),
    }  # fmt: skip


@pytest.mark.parametrize("api", ["openreports", "wgpolicyk8s"])
def test_pinned_report_crds_are_the_copies_their_provenance_names(api: str) -> None:
    """Each pinned CRD's SHA-256 is the one PROVENANCE.md records (a copy edited by hand fails here)."""
    import hashlib

    files = Path(__file__).resolve().parents[2] / "charts" / "auditwarden" / "files" / api
    provenance = (files / "PROVENANCE.md").read_text()
    crds = sorted(files.glob("*.yaml"))
    assert len(crds) == 2
    for f in crds:
        assert f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}" in provenance
