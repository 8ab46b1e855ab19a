"""kubeadm-config as kubeadm reads and renders it, and static Pods as the kubelet validates them.

Upstream: cmd/kubeadm/app/util/config/common.go (validateSupportedVersion: which API versions a
release reads), cmd/kubeadm/app/util/arguments.go (ArgumentsToCommand, per release),
cmd/kubeadm/app/apis/kubeadm/argument.go (MergeArgWithBase), cmd/kubeadm/app/phases/controlplane/
{manifests.go,volumes.go} (getAPIServerCommand, getHostPathVolumesForTheControlPlane),
cmd/kubeadm/app/apis/kubeadm/validation/validation.go (ValidateExtraArgs),
pkg/kubelet/config/common.go (tryDecodeSinglePod) and pkg/apis/core/validation/validation.go
(ValidateVolumes, ValidateVolumeMounts).  The verified examples of issue 15 are in
tests/support/kubeadm_examples.py; the real kubeadm confirms them in
tests/oracle/test_kubeadm_differential.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kubeadm_examples import COMPLIANT, EXAMPLES, VOLUMES, Example, configuration, dump
from webhook.context import build_context
from webhook.core import kubeadm, staticpod, yamlsafe
from webhook.core.apiserver import from_cluster_configuration, kubeadm_version
from webhook.core.verdict import judge
from webhook.core.versions import parse_version


def kubeadm_configmap(text: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": text}}  # fmt: skip


def violation_codes(text: str, version: tuple[int, int]) -> list[str]:
    verdict = judge(kubeadm_configmap(text), None, operation="CREATE", mode="enforce",
                    context=build_context(profile="baseline", kubernetes_version=version))  # fmt: skip
    return sorted({f.code for r in verdict.results for f in r.violations})


# ================================================================ the verified examples


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_verified_example_is_rendered_as_kubeadm_does(example: Example) -> None:
    r = kubeadm.render(yamlsafe.load_first(example.text), parse_version(example.release))
    if example.refused is not None:
        assert any(example.refused in e for e in r.errors), r.errors
        assert r.command == []
        return
    assert r.errors == []
    assert tuple(a for a in r.command if a.startswith("--audit-")) == example.audit_args
    volumes = {(v.name, v.host_path, v.type) for v in r.volumes}
    assert set(example.volumes) <= volumes
    assert not {v.host_path for v in r.volumes} & set(example.absent_volumes)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_verified_example_gets_the_verdict_of_what_kubeadm_deploys(example: Example) -> None:
    # The target version is the webhook's; the configuration's own kubernetesVersion wins.
    assert violation_codes(example.text, (1, 37)) == sorted(example.codes)


def test_a_refusal_quotes_kubeadm() -> None:
    cfg = from_cluster_configuration(configuration(api_version="kubeadm.k8s.io/v1beta3"))
    assert cfg.refused == [
        'your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta3" (kind: "ClusterConfiguration"). '
        "Please use kubeadm v1.36 instead and run 'kubeadm config migrate --old-config old-config-file "
        "--new-config new-config-file', which will write the new, similar spec using a newer API version."
    ]


def test_an_unquoted_number_is_refused_with_the_go_json_message() -> None:
    text = dump(configuration()).replace("value: '30'", "value: 30")
    r = kubeadm.render(yamlsafe.load_first(text), (1, 37))
    assert r.errors == [
        "json: cannot unmarshal number into Go struct field Arg.apiServer.ControlPlaneComponent.extraArgs.value "
        "of type string"
    ]


def test_the_kubelet_refusal_of_a_rendered_pod_is_its_own_message() -> None:
    volumes = [*VOLUMES, {"name": "audit-log-2", "hostPath": "/srv/log", "mountPath": "/var/log/kubernetes/audit"}]
    verdict = judge(kubeadm_configmap(dump(configuration(volumes=volumes))), None, operation="CREATE",
                    mode="enforce", context=build_context(profile="baseline"))  # fmt: skip
    [finding] = [f for r in verdict.results for f in r.violations]
    assert finding.code == "static-pod-invalid"
    assert finding.message.endswith(
        # mounts are sorted by name: audit-log, audit-log-2, ...
        'invalid pod: [spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/var/log/kubernetes/audit": '
        "must be unique]"
    )
    assert not verdict.allowed


# ====================================================================== API versions


@pytest.mark.parametrize(
    ("api_version", "release", "read"),
    [
        ("v1beta2", (1, 19), True), ("v1beta2", (1, 26), True), ("v1beta2", (1, 27), False),
        ("v1beta3", (1, 21), False), ("v1beta3", (1, 22), True), ("v1beta3", (1, 36), True),
        ("v1beta3", (1, 37), False),
        ("v1beta4", (1, 30), False), ("v1beta4", (1, 31), True), ("v1beta4", (1, 37), True),
        ("v1", (1, 36), False), ("v1", (1, 37), False), ("v1beta1", (1, 21), True), ("v1beta1", (1, 22), False),
    ],
)  # fmt: skip
def test_which_api_versions_a_kubeadm_release_reads(api_version: str, release: tuple[int, int], read: bool) -> None:
    assert (kubeadm.read_error(f"kubeadm.k8s.io/{api_version}", release) is None) is read


def test_the_experimental_v1_is_read_with_its_opt_in_only() -> None:
    assert kubeadm.read_error("kubeadm.k8s.io/v1", (1, 37), allow_experimental=True) is None
    assert "--allow-experimental-api" in str(kubeadm.read_error("kubeadm.k8s.io/v1", (1, 37)))


def test_the_configurations_own_kubernetes_version_decides_the_kubeadm_release() -> None:
    assert kubeadm_version(configuration(kubernetes_version="v1.36.3"), (1, 37)) == (1, 36)
    assert kubeadm_version({"kind": "ClusterConfiguration"}, (1, 35)) == (1, 35)
    assert kubeadm_version(configuration(kubernetes_version="stable-1"), (1, 37)) == (1, 37)


def test_v1beta3_passes_on_a_1_36_configuration_and_is_refused_on_a_1_37_one() -> None:
    old = dump(configuration(api_version="kubeadm.k8s.io/v1beta3", kubernetes_version="v1.36.3"))
    assert violation_codes(old, (1, 37)) == []
    new = dump(configuration(api_version="kubeadm.k8s.io/v1beta3", kubernetes_version="v1.37.0"))
    assert violation_codes(new, (1, 37)) == ["kubeadm-config-invalid"]


# ========================================================================= arguments


def args(*pairs: tuple[str, str] | tuple[str, str, str]) -> list[Any]:
    return [kubeadm._Arg(*p) for p in pairs]


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ((1, 37), ["--b=2", "--a=9", "--a=1"]),  # base without overrides, then overrides as written
        ((1, 35), ["--b=2", "--a=9", "--a=1"]),
        ((1, 34), ["--a=1", "--a=9", "--b=2"]),  # everything sorted by name, then value
        ((1, 30), ["--a=1", "--b=2"]),  # a map: one value per name (the last)
    ],
)
def test_arguments_to_command_per_release(release: tuple[int, int], expected: list[str]) -> None:
    base = args(("b", "2"), ("a", "0"))
    assert kubeadm.arguments_to_command(base, args(("a", "9"), ("a", "1")), release) == expected


def test_merge_method_appends_the_last_override_to_the_base_argument() -> None:
    base = args(("enable-admission-plugins", "NodeRestriction"))
    overrides = args(("enable-admission-plugins", ",X", "append"), ("enable-admission-plugins", "Y,", "prepend"))
    assert kubeadm.arguments_to_command(base, overrides, (1, 37)) == ["--enable-admission-plugins=Y,NodeRestriction"]


def test_a_merge_method_without_a_base_argument_is_ignored() -> None:
    overrides = args(("audit-log-path", "/var/log/a.log", "append"))
    assert kubeadm.arguments_to_command([], overrides, (1, 37)) == []


def test_a_replace_override_before_a_merge_one_stays_and_comes_last() -> None:
    base = args(("enable-admission-plugins", "NodeRestriction"))
    overrides = args(("enable-admission-plugins", "A"), ("enable-admission-plugins", ",B", "append"))
    assert kubeadm.arguments_to_command(base, overrides, (1, 37)) == [
        "--enable-admission-plugins=NodeRestriction,B", "--enable-admission-plugins=A"
    ]


def test_a_users_authorization_mode_replaces_kubeadms_as_written() -> None:
    r = kubeadm.render(configuration([("authorization-mode", "Webhook,,Bogus,RBAC")]), (1, 37))
    authz = [a for a in r.command if a.startswith("--authorization-mode")]
    assert authz == ["--authorization-mode=Webhook,,Bogus,RBAC"]


def test_an_authorization_mode_with_a_merge_method_extends_node_rbac() -> None:
    cc = configuration(api_version="kubeadm.k8s.io/v1")
    cc["apiServer"]["extraArgs"] = [{"name": "authorization-mode", "value": ",Webhook", "mergeMethod": "append"}]
    r = kubeadm.render(cc, (1, 37), allow_experimental=True)
    assert [a for a in r.command if a.startswith("--authorization-mode")] == ["--authorization-mode=Node,RBAC,Webhook"]


def test_an_argument_without_a_name_is_refused() -> None:
    r = kubeadm.render(configuration([("", "x")]), (1, 37))
    assert r.errors == ['apiServer.extraArgs: Invalid value: "index 0": argument has no name']


def test_an_unknown_field_is_refused_by_validate_only() -> None:
    cc = configuration()
    cc["apiServer"]["extraArgs"][0]["mergeMethod"] = "append"  # v1 only
    r = kubeadm.render(cc, (1, 37))
    assert r.errors == []
    assert r.strict == ['strict decoding error: unknown field "apiServer.extraArgs.mergeMethod"']


# =========================================================================== volumes


def test_extra_volumes_replace_by_name_and_are_sorted() -> None:
    vols = [{"name": "b", "hostPath": "/b", "mountPath": "/b"}, {"name": "a", "hostPath": "/a", "mountPath": "/a"},
            {"name": "b", "hostPath": "/c", "mountPath": "/c", "readOnly": True}]  # fmt: skip
    r = kubeadm.render(configuration(COMPLIANT, vols), (1, 37))
    assert [(m.name, m.mount_path, m.read_only) for m in r.mounts] == [
        ("a", "/a", False), ("b", "/c", True), ("ca-certs", "/etc/ssl/certs", True),
        ("k8s-certs", "/etc/kubernetes/pki", True),
    ]  # fmt: skip


def test_ca_directories_are_mounted_when_the_node_has_them() -> None:
    r = kubeadm.render(configuration(), (1, 37), node_paths=frozenset({"/etc/pki/ca-trust"}))
    assert ("etc-pki-ca-trust", "/etc/pki/ca-trust", "DirectoryOrCreate") in {
        (v.name, v.host_path, v.type) for v in r.volumes
    }


# ======================================================================== the kubelet


def pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> dict[str, Any]:
    container = {"name": "kube-apiserver", "volumeMounts": mounts}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver"},
            "spec": {"containers": [container], "volumes": volumes}}  # fmt: skip


def test_the_kubelet_refuses_two_mounts_at_one_path() -> None:
    volumes = [{"name": "a", "hostPath": {"path": "/a"}}, {"name": "b", "hostPath": {"path": "/b"}}]
    mounts = [{"name": "a", "mountPath": "/x"}, {"name": "b", "mountPath": "/x"}]
    assert staticpod.kubelet_errors(pod(volumes, mounts)) == [
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/x": must be unique'
    ]


def test_the_kubelet_refuses_an_unsupported_host_path_type_and_then_does_not_know_the_volume() -> None:
    volumes = [{"name": "a", "hostPath": {"path": "/a", "type": "Bogus"}}]
    assert staticpod.kubelet_errors(pod(volumes, [{"name": "a", "mountPath": "/a"}])) == [
        'spec.volumes[0].hostPath.type: Unsupported value: "Bogus": supported values: "", "BlockDevice", '
        '"CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"',
        'spec.containers[0].volumeMounts[0].name: Not found: "a"',
    ]


def test_the_kubelet_refuses_a_mount_without_its_volume() -> None:
    assert staticpod.kubelet_errors(pod([], [{"name": "audit", "mountPath": "/a"}])) == [
        'spec.containers[0].volumeMounts[0].name: Not found: "audit"'
    ]


def test_the_kubelet_refuses_a_volume_name_that_is_no_dns_label() -> None:
    errors = staticpod.kubelet_errors(pod([{"name": "Audit_Log", "hostPath": {"path": "/a"}}], []))
    assert errors == [
        'spec.volumes[0].name: Invalid value: "Audit_Log": a lowercase RFC 1123 label must consist of lower case '
        "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
        "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    ]


def test_the_kubelet_message_lists_every_error_like_go_prints_an_error_list() -> None:
    assert staticpod.kubelet_refusal(["a: x", "b: y"]) == "invalid pod: [a: x b: y]"


def test_an_embedded_configuration_without_api_version_is_read_as_the_releases_own() -> None:
    # Cluster API's KubeadmControlPlane and kind's kubeadmConfigPatches carry no apiVersion
    cc = configuration()
    del cc["apiVersion"]
    cfg = from_cluster_configuration(cc, (1, 37))
    assert cfg.refused == []
    assert cfg.flags["audit-log-maxage"] == "30"
    assert kubeadm.preferred_api_version((1, 30)) == "kubeadm.k8s.io/v1beta3"


def test_an_embedded_configuration_keeps_its_map_of_extra_args() -> None:
    cfg = from_cluster_configuration({"kind": "ClusterConfiguration", "apiServer": {"extraArgs": dict(COMPLIANT)}})
    assert cfg.refused == []
    assert cfg.flags["audit-log-maxage"] == "30"
