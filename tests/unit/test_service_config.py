"""The webhook configuration file: defaults, every key, precise refusals, environment overrides."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from webhook.cli import main
from webhook.core import yamlsafe
from webhook.service.config import (
    DEFAULT_MAX_REQUEST_BYTES,
    SCHEMA,
    ConfigError,
    PolicySource,
    ServiceConfig,
    build_context,
    load_config,
    parse_config,
)


def refused(raw: Any, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, env=env or {}, source="cfg.yaml")
    return str(err.value)


def test_defaults() -> None:
    c = parse_config({})
    assert c.mode == "enforce"
    assert c.profile == "baseline"
    assert c.kubernetes_version == (1, 37)
    assert c.exemptions.users == frozenset() and c.exemptions.groups == frozenset()
    assert dict(c.policy_sources) == {}
    assert c.policy_source_ttl_seconds == 60
    assert c.deny_on_policy_source_error is False
    assert c.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES == 3 * 1024 * 1024
    assert c.categories_file is None
    assert (c.config_maps_mode, c.mirror_pods_mode) == ("enforce", "enforce")
    assert c.log_level == "info"


def test_every_key() -> None:
    c = parse_config(
        {
            "mode": "ratchet",
            "profile": "stig",
            "kubernetesVersion": "1.35",
            "exemptions": {"users": ["breakglass"], "groups": ["system:breakglass"]},
            "policySources": {
                "/etc/kubernetes/audit-policy.yaml": "kube-system/audit-policy",
                "/etc/kubernetes/other.yaml": "ops/policies#strict.yaml",
            },
            "policySourceTTLSeconds": 30,
            "denyOnPolicySourceError": True,
            "maxRequestBytes": 1048576,
            "categoriesFile": "/etc/auditwarden/categories.yaml",
            "targets": {"configMaps": {"mode": "enforce"}, "mirrorPods": {"mode": "warn"}},
            "logLevel": "DEBUG",
            "analysisTimeoutSeconds": 4,
            "isolateAboveBytes": 0,
        }
    )
    assert c.mode == "ratchet" and c.profile == "stig" and c.kubernetes_version == (1, 35)
    assert c.exemptions.match("breakglass", []) == "user:breakglass"
    assert c.exemptions.match("bob", ["system:breakglass"]) == "group:system:breakglass"
    assert c.policy_sources["/etc/kubernetes/audit-policy.yaml"] == PolicySource("kube-system", "audit-policy")
    assert c.policy_sources["/etc/kubernetes/other.yaml"] == PolicySource("ops", "policies", "strict.yaml")
    assert c.policy_source_ttl_seconds == 30.0 and c.deny_on_policy_source_error is True
    assert c.max_request_bytes == 1048576
    assert c.categories_file == "/etc/auditwarden/categories.yaml"
    assert (c.config_maps_mode, c.mirror_pods_mode) == ("enforce", "warn")
    assert c.log_level == "debug"
    assert c.analysis_timeout_seconds == 4.0 and c.isolate_above_bytes == 0


def test_targets_default_to_the_global_mode() -> None:
    c = parse_config({"mode": "warn", "targets": {"configMaps": {"mode": "enforce"}, "mirrorPods": {"mode": ""}}})
    assert (c.config_maps_mode, c.mirror_pods_mode) == ("enforce", "warn")
    c = parse_config({"mode": "ratchet", "targets": {}})
    assert (c.config_maps_mode, c.mirror_pods_mode) == ("ratchet", "ratchet")


def test_what_the_helm_chart_renders_is_accepted() -> None:
    # charts/auditwarden/templates/_helpers.tpl "auditwarden.configFile" with the default values.
    c = parse_config(
        {
            "exemptions": {"groups": [], "users": []},
            "maxRequestBytes": 3145728,
            "mode": "enforce",
            "policySources": {},
            "profile": "baseline",
            "targets": {"mirrorPods": {"mode": "warn"}},
            "categoriesFile": "/etc/auditwarden/categories.yaml",
            "kubernetesVersion": "1.33",
        }
    )
    assert c.mirror_pods_mode == "warn" and c.kubernetes_version == (1, 33)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"mdoe": "warn"}, "cfg.yaml: mdoe: unknown key (did you mean mode?)"),
        ({"targets": {"configMap": {"mode": "warn"}}},
         "targets.configMap: unknown key (did you mean targets.configMaps?)"),
        ({"targets": {"mirrorPods": {"mode": "warn", "failurePolicy": "Ignore"}}},
         "targets.mirrorPods.failurePolicy: unknown key"),
        ({"exemptions": {"user": ["x"]}}, "exemptions.user: unknown key (did you mean exemptions.users?)"),
        ({"maxrequestbytes": 10}, "maxrequestbytes: unknown key (did you mean maxRequestBytes?)"),
    ],
)  # fmt: skip
def test_unknown_keys_are_refused_with_their_path(raw: dict[str, Any], expected: str) -> None:
    assert expected in refused(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"mode": "block"}, "mode: 'block' is not one of enforce, ratchet, warn"),
        ({"mode": "Enforce"}, "mode: 'Enforce' is not one of enforce, ratchet, warn"),
        ({"profile": "cis"}, "profile: 'cis' is not one of baseline, strict, stig"),
        ({"targets": {"mirrorPods": {"mode": "off"}}}, "targets.mirrorPods.mode: 'off' is not one of"),
        ({"logLevel": "verbose"}, "logLevel: 'verbose' is not one of debug, info, warning, error"),
        ({"mode": 1}, "mode: expected one of enforce, ratchet, warn, got an integer 1"),
        ({"exemptions": {"users": "bob"}}, "exemptions.users: expected a list of strings, got a string"),
        ({"exemptions": {"groups": ["ok", 7]}}, "exemptions.groups[1]: expected a non-empty string, got an integer 7"),
        ({"exemptions": ["bob"]}, "exemptions: expected a mapping with users and groups, got a list"),
        ({"maxRequestBytes": "3MiB"}, "maxRequestBytes: expected an integer, got a string '3MiB'"),
        ({"maxRequestBytes": True}, "maxRequestBytes: expected an integer, got a boolean True"),
        ({"maxRequestBytes": 10}, "maxRequestBytes: 10 is outside the allowed range 1024..67108864"),
        ({"denyOnPolicySourceError": "yes"}, "denyOnPolicySourceError: expected true or false, got a string 'yes'"),
        ({"policySourceTTLSeconds": -1}, "policySourceTTLSeconds: -1 is outside the allowed range 0..86400"),
        ({"policySourceTTLSeconds": ".inf"}, "policySourceTTLSeconds: expected a number of seconds"),
        ({"categoriesFile": ["a"]}, "categoriesFile: expected a file path, got a list"),
        ({"targets": {"configMaps": "warn"}}, "targets.configMaps: expected a mapping like {mode: warn}, got a string"),
        ({"policySourceTTLSeconds": float("nan")}, "policySourceTTLSeconds: nan is not a number"),
        ({"analysisTimeoutSeconds": float("inf")}, "analysisTimeoutSeconds: inf is outside the allowed range 0.5..300"),
        ({"exemptions": {"users": [""]}}, "exemptions.users[0]: '' is not a non-empty string"),
        ({"logLevel": "Debug"}, "logLevel: 'Debug' is not one of debug, info, warning, error"),
        ({"policySources": {3: "kube-system/p"}}, "policySources[3]: the key must be the absolute"),
        ({"kubernetesVersion": "1.99"}, "kubernetesVersion: Kubernetes 1.99 is outside the releases"),
        ({"kubernetesVersion": 1.30}, 'kubernetesVersion: YAML reads 1.3 as a number (1.30 would become 1.3): quote'),
        ({"kubernetesVersion": 130}, 'kubernetesVersion: expected a string like "1.35", got an integer'),
        ({"kubernetesVersion": "1.18"}, "kubernetesVersion: Kubernetes 1.18 is outside the releases"),
        ({"kubernetesVersion": "latest"}, "kubernetesVersion: 'latest' is not a string like \"1.35\""),
        ({"policySources": ["x"]}, "policySources: expected a mapping of file path"),
        ({"policySources": {"audit.yaml": "kube-system/p"}}, "the key must be the absolute --audit-policy-file path"),
        ({"policySources": {"/a.yaml": "audit-policy"}}, "'audit-policy' is not \"namespace/name\" or"),
        ({"policySources": {"/a.yaml": "Kube_System/p"}}, "policySources['/a.yaml']: 'Kube_System/p' is not"),
        ({"policySources": {"/a.yaml": "kube-system/p#"}}, "'kube-system/p#' is not \"namespace/name\" or"),
        ({"policySources": {"/a.yaml": 3}}, 'expected "namespace/name" or "namespace/name#key", got an integer'),
    ],
)  # fmt: skip
def test_bad_values_are_refused_precisely(raw: dict[str, Any], expected: str) -> None:
    assert expected in refused(raw)


def test_every_problem_is_reported_at_once_in_key_order() -> None:
    message = refused({"mdoe": "warn", "profile": "cis", "targets": {"mirrorPods": {"mode": 3}}})
    assert message.startswith("cfg.yaml: mdoe: unknown key (did you mean mode?)")
    assert "; profile: 'cis' is not one of baseline, strict, stig" in message
    assert message.endswith('; targets.mirrorPods.mode: expected one of "", enforce, ratchet, warn, got an integer 3')


def test_a_null_value_takes_the_default() -> None:
    c = parse_config({"mode": None, "targets": None, "exemptions": {"users": None}, "logLevel": None})
    assert (c.mode, c.config_maps_mode, c.log_level, c.exemptions.users) == ("enforce", "enforce", "info", frozenset())
    # ... but a policySources entry without its ConfigMap is a mistake, not a default.
    message = refused({"policySources": {"/etc/a.yaml": None}})
    assert "policySources['/etc/a.yaml']: expected \"namespace/name\"" in message


def test_the_defaults_are_the_schemas() -> None:
    props = SCHEMA["properties"]
    c = ServiceConfig()
    assert dataclasses.replace(parse_config({}), source=c.source) == c
    assert c.mode == props["mode"]["default"] and c.profile == props["profile"]["default"]
    assert c.max_request_bytes == props["maxRequestBytes"]["default"]
    assert c.isolate_above_bytes == props["isolateAboveBytes"]["default"]
    assert c.analysis_timeout_seconds == props["analysisTimeoutSeconds"]["default"]
    assert c.policy_source_ttl_seconds == props["policySourceTTLSeconds"]["default"]
    assert c.deny_on_policy_source_error is props["denyOnPolicySourceError"]["default"]


def test_the_schema_is_valid_draft_2020_12_and_every_leaf_key_has_a_default_and_a_description() -> None:
    jsonschema.Draft202012Validator.check_schema(dict(SCHEMA))
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def leaves(node: Any, path: str) -> list[tuple[str, Any]]:
        if node.get("type") == "object" and "properties" in node:
            return [leaf for k, sub in node["properties"].items() for leaf in leaves(sub, f"{path}.{k}".lstrip("."))]
        return [(path, node)]

    found = leaves(SCHEMA, "")
    assert {p for p, _ in found} >= {"mode", "logLevel", "isolateAboveBytes", "targets.mirrorPods.mode"}
    for path, node in found:
        assert "default" in node and node.get("description"), path


def test_the_configuration_must_be_a_mapping() -> None:
    assert refused(["mode", "warn"]) == "cfg.yaml: the configuration must be a mapping of keys, got a list"


def test_environment_overrides() -> None:
    env = {"AUDITWARDEN_MODE": "warn", "AUDITWARDEN_PROFILE": "strict", "AUDITWARDEN_KUBERNETES_VERSION": "1.34"}
    c = parse_config({"mode": "enforce", "targets": {"configMaps": {"mode": "ratchet"}}}, env=env)
    assert (c.mode, c.profile, c.kubernetes_version) == ("warn", "strict", (1, 34))
    assert (c.config_maps_mode, c.mirror_pods_mode) == ("ratchet", "warn")  # an explicit target wins
    assert parse_config({"mode": "ratchet"}, env={"AUDITWARDEN_MODE": ""}).mode == "ratchet"  # empty: ignored


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AUDITWARDEN_MODE": "audit"}, "$AUDITWARDEN_MODE: 'audit' is not one of enforce, ratchet, warn"),
        ({"AUDITWARDEN_PROFILE": "cis"}, "$AUDITWARDEN_PROFILE: 'cis' is not one of baseline, strict, stig"),
        ({"AUDITWARDEN_KUBERNETES_VERSION": "2.0"}, "$AUDITWARDEN_KUBERNETES_VERSION: Kubernetes 2.0 is outside"),
    ],
)
def test_bad_environment_overrides_name_the_variable(env: dict[str, str], expected: str) -> None:
    assert expected in refused({}, env)


def test_load_config_from_a_file_and_from_the_environment(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    f.write_text("mode: warn\nkubernetesVersion: '1.36'\n")
    assert load_config(f, env={}).mode == "warn"
    assert load_config(None, env={"AUDITWARDEN_CONFIG": str(f)}).kubernetes_version == (1, 36)
    assert load_config(None, env={}).source == "<defaults>"
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert load_config(empty, env={}).mode == "enforce"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"mode: [warn\n", "invalid YAML"),
        (b"\xff\xfemode: warn", "not valid UTF-8 (byte 0)"),
        (b"- mode\n", "the configuration must be a mapping of keys, got a list"),
        (b"mode: warn\nmodes: x\n", "modes: unknown key (did you mean mode?)"),
        (b"mode: warn\n---\nmode: enforce\n", "expected one YAML document, found 2"),
        (b"a: &a [1,1,1,1,1,1,1,1,1,1]\n" + b"".join(
            b"%c: &%c [%s]\n" % (n, n, b",".join([b"*" + bytes([n - 1])] * 10)) for n in b"bcdefg"),
         "excessive YAML aliasing"),
        (b"[" * 200 + b"]" * 200, "nested deeper than"),
    ],
)
def test_load_config_refuses_bad_files(tmp_path: Path, content: bytes, expected: str) -> None:
    f = tmp_path / "config.yaml"
    f.write_bytes(content)
    with pytest.raises(ConfigError, match=None) as err:
        load_config(f, env={})
    assert expected in str(err.value)
    assert str(f) in str(err.value)


def test_a_file_larger_than_the_loader_accepts_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    f.write_bytes(b"#" * (yamlsafe.MAX_TEXT_BYTES + 10))
    with pytest.raises(ConfigError, match=f"document is larger than {yamlsafe.MAX_TEXT_BYTES} bytes"):
        load_config(f, env={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file: No such file or directory"):
        load_config(tmp_path / "absent.yaml", env={})


def test_categories_file_is_read_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"categoriesFile: cannot read .*absent\.yaml"):
        build_context(parse_config({"categoriesFile": str(tmp_path / "absent.yaml")}))
    bad = tmp_path / "cats.yaml"
    bad.write_text("categories: 3\n")
    with pytest.raises(ConfigError, match="categoriesFile: "):
        build_context(parse_config({"categoriesFile": str(bad)}))
    ctx = build_context(parse_config({"profile": "strict", "kubernetesVersion": "1.35"}))
    assert ctx.profile == "strict" and ctx.kubernetes_version == (1, 35)


def test_require_kind_label_reaches_the_core_context() -> None:
    assert build_context(parse_config({"requireKindLabel": True})).require_kind_label is True
    assert build_context(parse_config({})).require_kind_label is False


def test_serve_refuses_to_start_with_an_invalid_configuration(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    f.write_text("mode: block\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(f)])
    assert result.exit_code == 2
    assert "invalid configuration" in result.output and "mode: 'block' is not one of" in result.output


def test_serve_check_config_validates_and_prints_the_summary_without_serving(tmp_path: Path) -> None:
    f = tmp_path / "config.yaml"
    f.write_text("mode: ratchet\ntargets: {mirrorPods: {mode: warn}}\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(f), "--check-config"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["mode"] == "ratchet" and summary["targets"] == {"configMaps": "ratchet", "mirrorPods": "warn"}
    f.write_text("mode: block\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(f), "--check-config"])
    assert result.exit_code == 2 and "mode: 'block' is not one of" in result.output


def test_serve_refuses_a_bad_environment_override(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve"], env={"AUDITWARDEN_PROFILE": "nope", "AUDITWARDEN_CONFIG": ""})
    assert result.exit_code == 2
    assert "$AUDITWARDEN_PROFILE: 'nope'" in result.output


def test_serve_refuses_half_tls_options(tmp_path: Path) -> None:
    args = ["serve", "--tls-cert", str(tmp_path / "tls.crt")]
    result = CliRunner().invoke(main, args, env={"AUDITWARDEN_CONFIG": ""})
    assert result.exit_code == 2
    assert "--tls-cert and --tls-key go together" in result.output


def test_serve_refuses_unusable_certificate_files(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("not a certificate\n")
    (tmp_path / "tls.key").write_text("not a key\n")
    result = CliRunner().invoke(
        main, ["serve", "--tls-cert", str(tmp_path / "tls.crt"), "--tls-key", str(tmp_path / "tls.key")],
        env={"AUDITWARDEN_CONFIG": ""},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "cannot use the TLS certificate" in result.output
