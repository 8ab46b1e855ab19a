"""Every key of the service's configuration can be set through the chart, and what the chart renders
is a configuration file `auditwarden serve` accepts.

For each key of ``webhook/data/config.schema.json`` a real ``helm template`` sets a valid,
non-default value (``--set`` for scalars, ``--set-json`` for lists and mappings); the ConfigMap's
``config.yaml`` is then checked by ``auditwarden serve --config FILE --check-config`` (the same
validation the pods run at start) and loaded to see that the value arrived.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import test_chart as chart
from webhook.service.config import SCHEMA, ServiceConfig, load_config

helm = chart.helm  # the session fixture: a real helm, or a failure saying how to install it

PACKAGED_CATALOG = str(Path(__file__).resolve().parents[2] / "webhook" / "data" / "categories.yaml")

# A valid value other than the default for every key, and how to read it back from ServiceConfig.
NON_DEFAULT: dict[str, tuple[Any, Callable[[ServiceConfig], Any]]] = {
    "mode": ("ratchet", lambda c: c.mode),
    "profile": ("stig", lambda c: c.profile),
    "kubernetesVersion": ("1.33", lambda c: "{}.{}".format(*c.kubernetes_version)),
    "exemptions.users": (["sre-oncall"], lambda c: sorted(c.exemptions.users)),
    "exemptions.groups": (["platform", "sre:break-glass"], lambda c: sorted(c.exemptions.groups)),
    "policySources": (
        {"/etc/kubernetes/audit-policy.yaml": "kube-system/audit-policy", "/etc/k8s/b.yaml": "ops/policies#b.yaml"},
        lambda c: {path: str(ref) for path, ref in c.policy_sources.items()},
    ),
    "policySourceTTLSeconds": (30, lambda c: c.policy_source_ttl_seconds),
    "denyOnPolicySourceError": (True, lambda c: c.deny_on_policy_source_error),
    "requireKindLabel": (True, lambda c: c.require_kind_label),
    "maxRequestBytes": (1048576, lambda c: c.max_request_bytes),
    "categoriesFile": (PACKAGED_CATALOG, lambda c: c.categories_file),
    "targets.configMaps.mode": ("warn", lambda c: c.config_maps_mode),
    "targets.mirrorPods.mode": ("enforce", lambda c: c.mirror_pods_mode),
    "logLevel": ("debug", lambda c: c.log_level),
    "analysisTimeoutSeconds": (4, lambda c: c.analysis_timeout_seconds),
    "isolateAboveBytes": (0, lambda c: c.isolate_above_bytes),
}


def schema_keys(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for key, sub in node["properties"].items():
        where = f"{path}.{key}" if path else key
        if sub.get("type") == "object" and "properties" in sub:
            yield from schema_keys(sub, where)
        else:
            yield where, sub


KEYS = dict(schema_keys(dict(SCHEMA)))


def set_args(key: str, value: Any) -> list[str]:
    if isinstance(value, dict | list):
        return ["--set-json", f"config.{key}={json.dumps(value)}"]
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    return ["--set", f"config.{key}={text}"]


def rendered_config(helm: Path, *args: str) -> dict[str, Any]:
    configmap = chart.one(chart.render(helm, None, *args), "ConfigMap")
    config: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    return config


def check_config(path: Path) -> dict[str, Any]:
    """``auditwarden serve --config FILE --check-config``, as a user would run it."""
    result = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--config", str(path), "--check-config"],
        capture_output=True, text=True, timeout=60, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def test_every_schema_key_has_a_non_default_test_value() -> None:
    assert set(NON_DEFAULT) == set(KEYS)
    for key, (value, _) in NON_DEFAULT.items():
        assert value != KEYS[key]["default"], key


@pytest.mark.parametrize("key", sorted(NON_DEFAULT))
def test_each_key_set_through_helm_reaches_the_service(helm: Path, key: str, tmp_path: Path) -> None:
    value, read_back = NON_DEFAULT[key]
    config = rendered_config(helm, *set_args(key, value))
    node: Any = config
    for part in key.split("."):
        node = node[part]
    assert node == value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    check_config(path)
    assert read_back(load_config(path, env={})) == value


def test_all_keys_at_once_and_fractional_seconds_through_set_json(helm: Path, tmp_path: Path) -> None:
    # `--set 2.5` would be the string "2.5" (helm parses only integers), which the schema refuses.
    fractional = {"analysisTimeoutSeconds": 2.5, "policySourceTTLSeconds": 0.5}
    args = [arg for key, (value, _) in NON_DEFAULT.items() if key not in fractional for arg in set_args(key, value)]
    args += [arg for key, value in fractional.items() for arg in ("--set-json", f"config.{key}={value}")]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(rendered_config(helm, *args)))
    summary = check_config(path)
    assert summary["mode"] == "ratchet" and summary["targets"] == {"configMaps": "warn", "mirrorPods": "enforce"}
    loaded = load_config(path, env={})
    assert (loaded.analysis_timeout_seconds, loaded.policy_source_ttl_seconds) == (2.5, 0.5)


def test_the_default_render_is_the_services_defaults(helm: Path, tmp_path: Path) -> None:
    config = rendered_config(helm)
    assert set(config) == set(SCHEMA["properties"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    check_config(path)
    assert load_config(path, env={}) == ServiceConfig(source=str(path))


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--set", "config.logLevel=verbose"], "/config/logLevel"),
        (["--set", "config.isolateAboveBytes=-1"], "/config/isolateAboveBytes"),
        (["--set", "config.denyOnPolicySourceError=maybe"], "/config/denyOnPolicySourceError"),
        (["--set", "config.analysisTimeoutSeconds=1000"], "/config/analysisTimeoutSeconds"),
        (["--set-json", 'config.policySources={"/a.yaml":"Kube_System/p"}'], "/config/policySources"),
        # helm names no location for a bad property name, but quotes it.
        (["--set-json", 'config.policySources={"a.yaml":"kube-system/p"}'], "invalid propertyName 'a.yaml'"),
        (["--set", "config.targets.mirrorPods.mode=off"], "/config/targets/mirrorPods/mode"),
        (["--set", "config.logLevle=debug"], "logLevle"),
    ],
)
def test_what_the_service_would_refuse_the_chart_refuses_with_the_path(helm: Path, args: list[str], where: str) -> None:
    _, result = chart.template(helm, None, *args, check=False)
    assert result.returncode != 0
    assert where in result.stderr
