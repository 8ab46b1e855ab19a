"""Verdicts: ``webhook.core.verdict.judge`` applies the rules of README "How a verdict is reached"
and "Modes and profiles" (changes, modes, validity first) to ConfigMaps, Pods and bare documents; plus
ConfigMap discovery and the webhook's cheap pre-check ``webhook.core.precheck.is_relevant``."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from webhook.context import build_context
from webhook.core.documents import discover
from webhook.core.findings import Finding
from webhook.core.precheck import is_mirror_pod, is_relevant
from webhook.core.verdict import Context, Facts, Verdict, judge

RBAC = "rbac.authorization.k8s.io"
POLICY_PATH = "/etc/kubernetes/audit-policy.yaml"
LOG_PATH = "/var/log/kubernetes/audit/audit.log"


def ctx(profile: str = "baseline", version: tuple[int, int] = (1, 37)) -> Context:
    return build_context(profile=profile, kubernetes_version=version)


def policy_text(*rules: dict[str, Any], api_version: str = "audit.k8s.io/v1") -> str:
    return yaml.safe_dump({"apiVersion": api_version, "kind": "Policy", "rules": list(rules)}, sort_keys=False)


GOOD = policy_text({"level": "Metadata"})  # all six categories
TWO = policy_text(  # secret-access and rbac-changes only: below baseline's three
    {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
    {"level": "Metadata", "resources": [{"group": RBAC}]},
)
ONE = policy_text({"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]})
INVALID = policy_text({"level": "metadata"})


def configmap(
    data: dict[str, Any] | None,
    *,
    labels: dict[str, str] | None = None,
    name: str = "audit-policy",
    namespace: str = "kube-system",
    binary: dict[str, str] | None = None,
) -> dict[str, Any]:
    cm: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, **({"labels": labels} if labels else {})},
    }
    if data is not None:
        cm["data"] = data
    if binary is not None:
        cm["binaryData"] = binary
    return cm


def policy_cm(text: str, **kw: Any) -> dict[str, Any]:
    return configmap({"policy.yaml": text}, **kw)


LABEL = {"auditwarden.io/kind": "audit-policy"}

COMPLIANT_FLAGS = {
    "audit-policy-file": POLICY_PATH,
    "audit-log-path": LOG_PATH,
    "audit-log-maxage": "30",
    "audit-log-maxbackup": "10",
    "audit-log-maxsize": "100",
}
EXTRA_VOLUMES: list[dict[str, Any]] = [
    {"name": "audit", "hostPath": POLICY_PATH, "mountPath": POLICY_PATH, "readOnly": True},
    {"name": "audit-log", "hostPath": "/var/log/kubernetes/audit", "mountPath": "/var/log/kubernetes/audit"},
]


def kubeadm_cm(**changes: str | None) -> dict[str, Any]:
    """kube-system/kubeadm-config with a v1beta4 ClusterConfiguration; keyword None drops the flag."""
    flags = dict(COMPLIANT_FLAGS)
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            flags.pop(name)
        else:
            flags[name] = value
    cc = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "ClusterConfiguration",
        "apiServer": {"extraArgs": [{"name": k, "value": v} for k, v in flags.items()], "extraVolumes": EXTRA_VOLUMES},
    }
    return configmap({"ClusterConfiguration": yaml.safe_dump(cc)}, name="kubeadm-config")


def apiserver_pod(*, mirror: bool = True, **changes: str | None) -> dict[str, Any]:
    flags = dict(COMPLIANT_FLAGS)
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            flags.pop(name)
        else:
            flags[name] = value
    annotations = {"kubernetes.io/config.mirror": "0123abcd", "kubernetes.io/config.source": "file"} if mirror else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "kube-apiserver-cp-1",
            "namespace": "kube-system",
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
            "annotations": annotations,
        },
        "spec": {
            "nodeName": "cp-1",
            "containers": [
                {
                    "name": "kube-apiserver",
                    "image": "registry.k8s.io/kube-apiserver:v1.37.0",
                    "command": ["kube-apiserver", *(f"--{k}={v}" for k, v in flags.items())],
                    "volumeMounts": [
                        {"name": "audit", "mountPath": POLICY_PATH, "readOnly": True},
                        {"name": "audit-log", "mountPath": "/var/log/kubernetes/audit"},
                    ],
                }
            ],
            "volumes": [
                {"name": "audit", "hostPath": {"path": POLICY_PATH, "type": "File"}},
                {"name": "audit-log", "hostPath": {"path": "/var/log/kubernetes/audit", "type": "DirectoryOrCreate"}},
            ],
        },
    }


def create(obj: dict[str, Any], mode: str = "enforce", context: Context | None = None, **kw: Any) -> Verdict:
    return judge(obj, None, operation="CREATE", mode=mode, context=context or ctx(), **kw)  # type: ignore[arg-type]


def update(new: dict[str, Any], old: dict[str, Any], mode: str = "enforce", context: Context | None = None,
           **kw: Any) -> Verdict:  # fmt: skip
    return judge(new, old, operation="UPDATE", mode=mode, context=context or ctx(), **kw)  # type: ignore[arg-type]


def delete(old: dict[str, Any], mode: str = "enforce", context: Context | None = None) -> Verdict:
    return judge(None, old, operation="DELETE", mode=mode, context=context or ctx())  # type: ignore[arg-type]


def codes(findings: list[Any]) -> list[str]:
    return [f.code for f in findings]


# ================================================================== plain verdicts


def test_a_compliant_policy_configmap_is_allowed() -> None:
    v = create(policy_cm(GOOD))
    assert (v.allowed, v.decision) == (True, "allow")
    assert v.summary.startswith("Audit policy covers 6 of 6 event categories")
    assert list(v.categories) == [
        "authentication",
        "api-calls",
        "rbac-denials",
        "pod-creation",
        "secret-access",
        "rbac-changes",
    ]


def test_a_policy_below_the_profile_is_denied_in_enforce() -> None:
    v = create(policy_cm(TWO))
    assert (v.allowed, v.decision) == (False, "deny")
    assert codes(v.violations) == ["categories-below-minimum"]
    assert list(v.categories) == ["secret-access", "rbac-changes"]


def test_a_bare_policy_document_is_judged_too() -> None:
    assert create(yaml.safe_load(TWO)).decision == "deny"


def test_an_unrelated_configmap_is_skipped() -> None:
    v = create(configmap({"app.properties": "color=blue"}, namespace="default"))
    assert (v.allowed, v.decision) == (True, "skip")


def test_the_profile_comes_from_the_context() -> None:
    assert create(policy_cm(GOOD), context=ctx("stig")).decision == "deny"
    assert create(policy_cm(policy_text({"level": "RequestResponse"})), context=ctx("stig")).decision == "allow"


# ============================================================= validity comes first


@pytest.mark.parametrize("mode", ["enforce", "ratchet"])
def test_an_invalid_policy_is_denied_in_enforce_and_ratchet(mode: str) -> None:
    v = create(policy_cm(INVALID), mode)
    assert v.decision == "deny"
    assert codes(v.violations) == ["policy-invalid"]
    assert v.violations[0].message.startswith("kube-apiserver would refuse to start with this policy: ")


def test_an_invalid_policy_is_denied_in_ratchet_even_when_it_was_already_invalid() -> None:
    assert update(policy_cm(INVALID, labels=LABEL), policy_cm(INVALID), "ratchet").decision == "deny"


def test_a_v1beta1_policy_is_invalid_on_1_37_and_valid_on_a_1_23_target() -> None:
    text = policy_text({"level": "Metadata"}, api_version="audit.k8s.io/v1beta1")
    assert codes(create(policy_cm(text)).violations) == ["policy-invalid"]
    old = create(policy_cm(text), context=ctx(version=(1, 23)))
    assert old.decision == "allow"
    assert "policy-deprecated-version" in codes(old.warnings)


def test_group_star_follows_the_target_version() -> None:
    text = policy_text({"level": "Metadata", "resources": [{"group": "*"}]}, {"level": "Metadata"})
    assert create(policy_cm(text), context=ctx(version=(1, 35))).decision == "deny"
    assert create(policy_cm(text), context=ctx(version=(1, 36))).decision == "allow"


def test_an_invalid_flag_value_is_denied_even_in_ratchet() -> None:
    v = update(kubeadm_cm(audit_log_maxage="-1"), kubeadm_cm(audit_log_maxage="-1"), "ratchet")
    assert v.decision == "deny"
    assert "audit-flag-invalid" in codes(v.violations)


# ========================================================================= warn


def test_warn_never_denies_an_invalid_policy() -> None:
    v = create(policy_cm(INVALID), "warn")
    assert (v.allowed, v.decision) == (True, "warn")
    assert codes(v.violations) == ["policy-invalid"]


def test_warn_never_denies_a_deletion() -> None:
    v = delete(policy_cm(GOOD), "warn")
    assert (v.allowed, v.decision) == (True, "warn")


def test_warn_never_denies_dropping_the_log_path() -> None:
    assert update(kubeadm_cm(audit_log_path=None), kubeadm_cm(), "warn").allowed


# ====================================================================== changes


@pytest.mark.parametrize("mode", ["enforce", "ratchet"])
def test_an_update_dropping_audit_log_path_is_denied(mode: str) -> None:
    v = update(kubeadm_cm(audit_log_path=None), kubeadm_cm(), mode)
    assert v.decision == "deny"
    assert "audit-flag-dropped" in codes(v.violations)


def test_an_update_dropping_audit_log_path_from_a_mirror_pod_is_denied_in_enforce() -> None:
    v = update(apiserver_pod(audit_log_path=None), apiserver_pod())
    assert v.decision == "deny"
    assert {"audit-flag-dropped", "audit-backend-missing"} <= set(codes(v.violations))


def test_an_update_dropping_a_compliant_retention_flag_is_denied() -> None:
    v = update(kubeadm_cm(audit_log_maxbackup=None), kubeadm_cm())
    assert codes(v.violations) == ["audit-flag-dropped"]


@pytest.mark.parametrize("mode", ["enforce", "ratchet"])
def test_lowering_maxage_below_30_is_denied(mode: str) -> None:
    v = update(kubeadm_cm(audit_log_maxage="7"), kubeadm_cm(), mode)
    assert v.decision == "deny"
    assert codes(v.violations) == ["audit-log-maxage-too-low"]
    assert "retention-lowered" in codes(v.changes)


def test_lowering_maxage_while_staying_at_or_above_30_is_allowed_and_reported() -> None:
    v = update(kubeadm_cm(audit_log_maxage="30"), kubeadm_cm(audit_log_maxage="90"))
    assert v.decision == "allow"
    assert codes(v.warnings) == ["policy-content-unseen", "retention-lowered"]


def test_raising_maxage_to_the_threshold_is_allowed() -> None:
    v = update(kubeadm_cm(audit_log_maxage="30"), kubeadm_cm(audit_log_maxage="7"))
    assert (v.allowed, v.decision) == (True, "allow")
    assert v.changes == ()


def test_losing_a_category_is_reported_as_a_change() -> None:
    v = update(policy_cm(ONE), policy_cm(TWO))
    assert codes(v.changes) == ["category-lost"]
    assert "rbac-changes" in v.changes[0].message


# ======================================================================== ratchet


def test_ratchet_allows_a_non_compliant_configmap_relabelled_without_change_with_decision_warn() -> None:
    v = update(policy_cm(TWO, labels=LABEL), policy_cm(TWO), "ratchet")
    assert (v.allowed, v.decision) == (True, "warn")
    assert codes(v.violations) == ["categories-below-minimum"]


def test_ratchet_denies_a_non_compliant_policy_weakened_further() -> None:
    v = update(policy_cm(ONE), policy_cm(TWO), "ratchet")
    assert v.decision == "deny"
    assert codes(v.changes) == ["category-lost"]


def test_ratchet_allows_raising_a_still_too_low_value_with_a_warning() -> None:
    v = update(kubeadm_cm(audit_log_maxage="14"), kubeadm_cm(audit_log_maxage="7"), "ratchet")
    assert (v.allowed, v.decision) == (True, "warn")


def test_ratchet_denies_lowering_an_already_too_low_value() -> None:
    assert update(kubeadm_cm(audit_log_maxage="3"), kubeadm_cm(audit_log_maxage="7"), "ratchet").decision == "deny"


def test_ratchet_judges_a_create_as_enforce() -> None:
    v = create(policy_cm(TWO), "ratchet")
    assert (v.allowed, v.decision) == (False, "deny")


def test_enforce_denies_an_unchanged_non_compliant_object() -> None:
    assert update(policy_cm(TWO, labels=LABEL), policy_cm(TWO)).decision == "deny"


def test_ratchet_allows_repairing_an_invalid_policy_into_a_valid_but_weak_one() -> None:
    v = update(policy_cm(TWO), policy_cm(INVALID), "ratchet")
    assert (v.allowed, v.decision) == (True, "warn")


def test_ratchet_judges_mirror_pods_as_warn() -> None:
    v = create(apiserver_pod(audit_log_maxage="7"), "ratchet")
    assert (v.allowed, v.decision) == (True, "warn")
    assert codes(v.violations) == ["audit-log-maxage-too-low"]


def test_enforce_denies_a_non_compliant_mirror_pod() -> None:
    assert create(apiserver_pod(audit_log_maxage="7")).decision == "deny"


def test_ratchet_judges_a_non_mirror_apiserver_pod_create_as_enforce() -> None:
    v = create(apiserver_pod(mirror=False, audit_log_maxage="7"), "ratchet")
    assert v.decision == "deny"


# ======================================================================== delete


@pytest.mark.parametrize("mode", ["enforce", "ratchet"])
def test_deleting_a_policy_configmap_is_denied(mode: str) -> None:
    v = delete(policy_cm(GOOD, labels=LABEL), mode)
    assert v.decision == "deny"
    assert codes(v.violations) == ["configuration-deleted"]


def test_deleting_the_kubeadm_config_configmap_is_denied() -> None:
    v = delete(kubeadm_cm())
    assert v.decision == "deny"
    assert codes(v.violations) == ["configuration-deleted"]


@pytest.mark.parametrize("mode", ["enforce", "ratchet", "warn"])
def test_deleting_a_pod_is_always_allowed(mode: str) -> None:
    v = delete(apiserver_pod(), mode)
    assert v.allowed
    assert v.violations == ()


def test_deleting_an_unrelated_configmap_is_allowed() -> None:
    assert delete(configmap({"a": "b"}, namespace="default")).decision == "skip"


# ===================================================================== exemptions


def test_an_exempted_requester_turns_a_denial_into_decision_exempted() -> None:
    v = create(policy_cm(TWO), exempted_by="user:breakglass-admin")
    assert (v.allowed, v.decision, v.exempted_by) == (True, "exempted", "user:breakglass-admin")
    assert codes(v.warnings)[0] == "exempted"
    assert codes(v.violations) == ["categories-below-minimum"]


def test_an_exemption_does_not_change_an_allowed_verdict() -> None:
    v = create(policy_cm(GOOD), exempted_by="group:system:masters")
    assert (v.decision, v.exempted_by) == ("allow", None)


# ============================================================ the caller's facts

LOOKUP_FAILED = Finding("policy-source-error", "policySources: reading ConfigMap kube-system/p: HTTP 403")
DEADLINE = Finding("analysis-failed", "the analysis did not finish within 2.0 s")


def test_a_fact_of_the_caller_denies_a_compliant_object_in_enforce() -> None:
    v = create(apiserver_pod(), facts=Facts(violations=(LOOKUP_FAILED,)))
    assert (v.allowed, v.decision) == (False, "deny")
    assert codes(v.violations) == ["policy-source-error"]


def test_a_fact_of_the_caller_denies_in_ratchet_although_nothing_got_worse() -> None:
    v = update(policy_cm(GOOD), policy_cm(GOOD), mode="ratchet", facts=Facts(violations=(LOOKUP_FAILED,)))
    assert v.decision == "deny"


def test_a_fact_of_the_caller_denies_a_mirror_pod_in_ratchet_whose_content_is_judged_as_warn() -> None:
    weak = apiserver_pod(audit_log_maxage="1")
    assert create(weak, mode="ratchet").decision == "warn"
    assert create(weak, mode="ratchet", facts=Facts(violations=(LOOKUP_FAILED,))).decision == "deny"


def test_a_fact_of_the_caller_only_warns_in_warn_mode() -> None:
    v = create(apiserver_pod(), mode="warn", facts=Facts(violations=(LOOKUP_FAILED,)))
    assert (v.allowed, v.decision, codes(v.violations)) == (True, "warn", ["policy-source-error"])


def test_a_warning_fact_of_the_caller_never_blocks() -> None:
    v = create(apiserver_pod(), facts=Facts(warnings=(LOOKUP_FAILED,)))
    assert (v.decision, codes(v.warnings)[-1]) == ("allow", "policy-source-error")


def test_an_exempt_requester_is_let_through_a_fact_of_the_caller_with_the_exempted_warning() -> None:
    v = create(apiserver_pod(), exempted_by="user:breakglass", facts=Facts(violations=(LOOKUP_FAILED,)))
    assert (v.allowed, v.decision, v.exempted_by) == (True, "exempted", "user:breakglass")
    assert codes(v.warnings)[0] == "exempted"


def test_an_unanalysed_object_is_judged_on_the_failure_alone() -> None:
    failed = Facts(violations=(DEADLINE,), unanalysed=True)
    v = update(policy_cm(GOOD), policy_cm(GOOD), mode="ratchet", facts=failed)
    assert (v.decision, codes(v.violations), v.results) == ("deny", ["analysis-failed"], ())
    assert update(policy_cm(GOOD), policy_cm(GOOD), mode="warn", facts=failed).decision == "warn"


def test_a_mirror_pod_delete_is_the_kubelets_clean_up_even_with_facts() -> None:
    pod = apiserver_pod()
    v = judge(None, pod, operation="DELETE", mode="enforce", context=ctx(), facts=Facts(violations=(DEADLINE,)))
    assert v.decision == "skip"


# ==================================================================== discovery


def test_every_document_of_a_multi_document_value_is_judged() -> None:
    v = create(configmap({"policies.yaml": GOOD + "---\n" + TWO}))
    assert [r.kind for r in v.results] == ["audit-policy", "audit-policy"]
    assert [r.source for r in v.results] == ["data[policies.yaml][0]", "data[policies.yaml][1]"]
    assert v.decision == "deny"


def test_every_data_key_is_searched() -> None:
    v = create(configmap({"a.yaml": GOOD, "b.yaml": ONE, "notes.txt": "hello"}))
    assert [r.source for r in v.results] == ["data[a.yaml]", "data[b.yaml]"]


def test_a_configmap_labelled_audit_policy_with_non_policy_content_is_a_violation() -> None:
    v = create(configmap({"policy.yaml": "hello: world\n"}, labels=LABEL))
    assert v.decision == "deny"
    assert codes(v.violations) == ["labelled-not-a-policy"]


def test_a_configmap_labelled_audit_policy_without_data_is_a_violation() -> None:
    v = create(configmap(None, labels=LABEL))
    assert codes(v.violations) == ["labelled-not-a-policy"]


def test_a_configmap_labelled_audit_policy_with_unparseable_content_is_a_violation() -> None:
    v = create(configmap({"policy.yaml": "rules: [\n"}, labels=LABEL))
    assert codes(v.violations) == ["content-unparseable"]


def test_binary_data_is_ignored_with_a_note() -> None:
    v = create(policy_cm(GOOD, binary={"policy.gz": "H4sIAAAAAAAAA+3BMQEAAADCoPVPbQ0PoAAAAAAAAAAAAAAAAA=="}))
    assert v.decision == "allow"
    assert "binary-data-ignored" in codes(v.warnings)


def test_binary_data_of_an_unrelated_configmap_gives_no_note() -> None:
    v = create(configmap({"a": "b"}, namespace="default", binary={"x": "AA=="}))
    assert v.decision == "skip"


def test_the_kubeadm_config_configmap_cluster_configuration_key_is_judged() -> None:
    v = create(kubeadm_cm())
    assert [r.kind for r in v.results] == ["kubeadm-config"]
    assert v.decision == "allow"


def test_a_kubeadm_config_without_audit_flags_is_a_violation() -> None:
    v = create(kubeadm_cm(audit_policy_file=None, audit_log_path=None))
    assert {"audit-policy-file-missing", "audit-backend-missing"} <= set(codes(v.violations))


def test_a_kubeadm_config_with_mapped_policy_content_judges_the_policy_too() -> None:
    context = build_context(profile="baseline", policy_files={POLICY_PATH: TWO})
    v = create(kubeadm_cm(), context=context)
    assert [r.kind for r in v.results] == ["kubeadm-config", "audit-policy"]
    assert codes(v.violations) == ["categories-below-minimum"]


def test_a_kyverno_policy_is_not_an_audit_policy() -> None:
    kyverno = {
        "apiVersion": "kyverno.io/v1",
        "kind": "Policy",
        "metadata": {"name": "require-labels", "namespace": "default"},
        "spec": {"rules": [{"name": "check", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}}]},
    }
    assert discover(kyverno).documents == []
    assert create(kyverno).decision == "skip"


def test_a_kyverno_policy_inside_a_labelled_configmap_is_not_a_policy() -> None:
    text = "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: p}\nspec: {rules: []}\n"
    assert codes(create(configmap({"p.yaml": text}, labels=LABEL)).violations) == ["labelled-not-a-policy"]


def test_an_apiserver_pod_manifest_inside_a_configmap_is_judged() -> None:
    v = create(configmap({"kube-apiserver.yaml": yaml.safe_dump(apiserver_pod(mirror=False))}))
    assert [r.kind for r in v.results] == ["apiserver-pod"]


def test_a_list_is_judged_item_by_item() -> None:
    v = create({"apiVersion": "v1", "kind": "List", "items": [policy_cm(GOOD), policy_cm(ONE)]})
    assert len(v.results) == 2
    assert v.decision == "deny"


def test_a_pod_whose_container_only_has_flag_like_args_is_not_a_kube_apiserver_pod() -> None:
    nginx = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "args": ["--port=8080"]}]},
    }
    assert discover(nginx).documents == []


# ================================================================== is_relevant


def test_a_labelled_configmap_is_relevant() -> None:
    assert is_relevant("ConfigMap", configmap({"x": "y"}, labels=LABEL))


def test_the_kubeadm_config_configmap_is_relevant() -> None:
    assert is_relevant("ConfigMap", configmap(None, name="kubeadm-config"))


def test_a_configmap_holding_an_audit_policy_is_relevant() -> None:
    assert is_relevant("ConfigMap", policy_cm(GOOD))


def test_a_configmap_holding_an_apiserver_manifest_is_relevant() -> None:
    assert is_relevant("ConfigMap", configmap({"m.yaml": "command: [kube-apiserver]"}))


def test_an_ordinary_configmap_is_not_relevant() -> None:
    assert not is_relevant("ConfigMap", configmap({"app.properties": "color=blue"}, namespace="default"))
    assert not is_relevant("ConfigMap", configmap(None, namespace="default"))


def test_a_configmap_with_malformed_data_is_relevant_so_the_analysis_can_say_so() -> None:
    assert is_relevant("ConfigMap", {"kind": "ConfigMap", "metadata": {"name": "x"}, "data": ["not", "a", "map"]})


def test_a_mirror_apiserver_pod_is_relevant() -> None:
    pod = apiserver_pod()
    assert is_mirror_pod(pod)
    assert is_relevant("Pod", pod)


def test_a_mirror_pod_without_label_is_relevant_by_its_command() -> None:
    pod = apiserver_pod()
    pod["metadata"]["labels"] = {}
    assert is_relevant("Pod", pod)


def test_a_non_mirror_pod_is_not_relevant() -> None:
    assert not is_relevant("Pod", apiserver_pod(mirror=False))


def test_a_mirror_pod_of_another_component_is_not_relevant() -> None:
    pod = apiserver_pod()
    pod["metadata"]["labels"] = {"component": "etcd"}
    pod["spec"]["containers"][0]["command"] = ["etcd", "--data-dir=/var/lib/etcd"]
    assert not is_relevant("Pod", pod)


def test_other_kinds_and_missing_objects_are_not_relevant() -> None:
    assert not is_relevant("Secret", configmap({"a": "audit.k8s.io"}))
    assert not is_relevant("ConfigMap", None)


@pytest.mark.parametrize(
    "obj",
    [
        policy_cm(GOOD),
        policy_cm(INVALID),
        configmap({"policy.yaml": "hello"}, labels=LABEL),
        kubeadm_cm(),
        configmap({"kube-apiserver.yaml": yaml.safe_dump(apiserver_pod(mirror=False))}),
    ],
)
def test_every_configmap_judge_would_judge_passes_the_pre_check(obj: dict[str, Any]) -> None:
    assert create(obj).decision != "skip"
    assert is_relevant("ConfigMap", obj)


def test_every_finding_code_is_documented_in_the_readme() -> None:
    from pathlib import Path

    from webhook.core.findings import CODES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Finding codes", 1)[1].split("\n## ", 1)[0]
    expanded = section.replace("`…-", "`audit-log-")
    assert [c for c in CODES if f"`{c}`" not in expanded] == []
