"""The webhook's configuration file, validated once at start.

One YAML file (``auditwarden serve --config FILE`` or ``AUDITWARDEN_CONFIG``); every key is
optional.  Anything the service would not understand is refused with the key's path, so a
typo never silently falls back to a default (``targets.configMap.mode`` is an error, not
"enforce").  Environment overrides: ``AUDITWARDEN_MODE``, ``AUDITWARDEN_PROFILE``,
``AUDITWARDEN_KUBERNETES_VERSION`` (an empty value is ignored).

.. code-block:: yaml

    mode: enforce                  # enforce | ratchet | warn
    profile: baseline              # baseline | strict | stig
    kubernetesVersion: "1.35"      # "" = newest known (1.37); quote it (1.30 is a float in YAML)
    exemptions: {users: [], groups: []}
    policySources:                 # --audit-policy-file path -> "namespace/name" or "namespace/name#key"
      /etc/kubernetes/audit-policy.yaml: kube-system/audit-policy
    policySourceTTLSeconds: 60
    denyOnPolicySourceError: false
    maxRequestBytes: 3145728       # 3 MiB, kube-apiserver's own request limit
    categoriesFile: ""             # your own category catalog; "" = the packaged one
    targets:
      configMaps: {mode: ""}       # "" = mode
      mirrorPods: {mode: ""}
    logLevel: info                 # debug | info | warning | error
    analysisTimeoutSeconds: 8      # cap on the time one object's analysis may take
    isolateAboveBytes: 16384       # bodies larger than this are analysed in a child process
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import yaml

from webhook.core.jsontypes import described
from webhook.core.verdict import Context, Exemptions, Mode, Profile
from webhook.core.versions import NEWEST, KubeVersion, format_version, parse_version

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "ENV_CONFIG",
    "ConfigError",
    "PolicySource",
    "ServiceConfig",
    "build_context",
    "load_config",
    "parse_config",
]

ENV_CONFIG = "AUDITWARDEN_CONFIG"
ENV_MODE = "AUDITWARDEN_MODE"
ENV_PROFILE = "AUDITWARDEN_PROFILE"
ENV_KUBERNETES_VERSION = "AUDITWARDEN_KUBERNETES_VERSION"

MODES: tuple[Mode, ...] = ("enforce", "ratchet", "warn")
PROFILES: tuple[Profile, ...] = ("baseline", "strict", "stig")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_MAX_REQUEST_BYTES = 3 * 1024 * 1024
# Far above anything kube-apiserver sends (its own limit is 3 MiB); keeps a typo from
# letting a client make a worker buffer gigabytes.
MAX_MAX_REQUEST_BYTES = 64 * 1024 * 1024
MAX_CONFIG_FILE_BYTES = 1024 * 1024

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")

_TOP_KEYS = (
    "mode",
    "profile",
    "kubernetesVersion",
    "exemptions",
    "policySources",
    "policySourceTTLSeconds",
    "denyOnPolicySourceError",
    "maxRequestBytes",
    "categoriesFile",
    "targets",
    "logLevel",
    "analysisTimeoutSeconds",
    "isolateAboveBytes",
)


class ConfigError(ValueError):
    """The configuration is unusable; ``str()`` names the file, the key path and the reason."""


@dataclass(frozen=True)
class PolicySource:
    """Where the content of a kube-apiserver ``--audit-policy-file`` can be read."""

    namespace: str
    name: str
    key: str | None = None  # None: the first data value that is an audit policy

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" + (f"#{self.key}" if self.key else "")


@dataclass(frozen=True)
class ServiceConfig:
    """The validated configuration.  Build it with :func:`load_config` or :func:`parse_config`."""

    mode: Mode = "enforce"
    profile: Profile = "baseline"
    kubernetes_version: KubeVersion = NEWEST
    exemptions: Exemptions = field(default_factory=Exemptions)
    policy_sources: Mapping[str, PolicySource] = field(default_factory=lambda: MappingProxyType({}))
    policy_source_ttl_seconds: float = 60.0
    deny_on_policy_source_error: bool = False
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    categories_file: str | None = None
    config_maps_mode: Mode = "enforce"
    mirror_pods_mode: Mode = "enforce"
    log_level: str = "info"
    analysis_timeout_seconds: float = 8.0
    isolate_above_bytes: int = 16 * 1024
    source: str = "<defaults>"  # the file it came from, for messages

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for the start-up log line and /readyz."""
        return {
            "config": self.source,
            "mode": self.mode,
            "profile": self.profile,
            "kubernetesVersion": format_version(self.kubernetes_version),
            "targets": {"configMaps": self.config_maps_mode, "mirrorPods": self.mirror_pods_mode},
            "exemptions": {"users": len(self.exemptions.users), "groups": len(self.exemptions.groups)},
            "policySources": {k: str(v) for k, v in self.policy_sources.items()},
            "maxRequestBytes": self.max_request_bytes,
            "categoriesFile": self.categories_file or "(packaged)",
        }


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read and validate the configuration file (``path``, else ``$AUDITWARDEN_CONFIG``, else defaults).

    Raises :class:`ConfigError` with a precise reason.
    """
    env = os.environ if env is None else env
    where: str | None = os.fspath(path) if path is not None else (env.get(ENV_CONFIG) or None)
    raw: Any = {}
    if where is not None:
        p = Path(where)
        try:
            with p.open("rb") as fh:
                data = fh.read(MAX_CONFIG_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the configuration file: {exc.strerror or exc}") from None
        if len(data) > MAX_CONFIG_FILE_BYTES:
            raise ConfigError(f"{where}: the configuration file is larger than {MAX_CONFIG_FILE_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: not valid UTF-8 (byte {exc.start})") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None
        if raw is None:
            raw = {}
    return parse_config(raw, env=env, source=where or "<defaults>")


def parse_config(raw: Any, *, env: Mapping[str, str] | None = None, source: str = "<config>") -> ServiceConfig:
    """Validate an already-parsed configuration document (plus environment overrides)."""
    env = {} if env is None else env
    v = _Validator(source)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the configuration must be a mapping of keys, got {_type(raw)}")
    v.unknown(raw, _TOP_KEYS, "")

    mode: Mode = v.enum(raw, "mode", MODES, "enforce")
    profile: Profile = v.enum(raw, "profile", PROFILES, "baseline")
    version = v.version(raw.get("kubernetesVersion"), "kubernetesVersion")

    # Environment overrides (validated the same way, named by the variable).
    if env.get(ENV_MODE, "").strip():
        mode = v.enum_value(env[ENV_MODE], MODES, f"${ENV_MODE}")
    if env.get(ENV_PROFILE, "").strip():
        profile = v.enum_value(env[ENV_PROFILE], PROFILES, f"${ENV_PROFILE}")
    if env.get(ENV_KUBERNETES_VERSION, "").strip():
        version = v.version(env[ENV_KUBERNETES_VERSION], f"${ENV_KUBERNETES_VERSION}")

    exemptions = v.exemptions(raw.get("exemptions"))
    sources = v.policy_sources(raw.get("policySources"))
    ttl = v.number(raw, "policySourceTTLSeconds", 60.0, minimum=0.0, maximum=86400.0)
    deny_on_error = v.boolean(raw, "denyOnPolicySourceError", False)
    max_bytes = v.integer(raw, "maxRequestBytes", DEFAULT_MAX_REQUEST_BYTES, minimum=1024,
                          maximum=MAX_MAX_REQUEST_BYTES)  # fmt: skip
    categories_file = v.optional_path(raw, "categoriesFile")
    cm_mode, pod_mode = v.targets(raw.get("targets"), mode)
    log_level = v.enum(raw, "logLevel", LOG_LEVELS, "info", fold_case=True)
    timeout = v.number(raw, "analysisTimeoutSeconds", 8.0, minimum=0.5, maximum=300.0)
    isolate = v.integer(raw, "isolateAboveBytes", 16 * 1024, minimum=0, maximum=MAX_MAX_REQUEST_BYTES)
    return ServiceConfig(
        mode=mode,
        profile=profile,
        kubernetes_version=version,
        exemptions=exemptions,
        policy_sources=MappingProxyType(sources),
        policy_source_ttl_seconds=ttl,
        deny_on_policy_source_error=deny_on_error,
        max_request_bytes=max_bytes,
        categories_file=categories_file,
        config_maps_mode=cm_mode,
        mirror_pods_mode=pod_mode,
        log_level=log_level,
        analysis_timeout_seconds=timeout,
        isolate_above_bytes=isolate,
        source=source,
    )


def build_context(config: ServiceConfig) -> Context:
    """The core's Context for this configuration (reads ``categoriesFile`` once, at start).

    Raises :class:`ConfigError` when the category catalog cannot be used.
    """
    from webhook.context import build_context as _build
    from webhook.core.categories import CatalogError

    try:
        return _build(
            profile=config.profile,
            kubernetes_version=config.kubernetes_version,
            categories_file=config.categories_file,
        )
    except OSError as exc:
        raise ConfigError(
            f"{config.source}: categoriesFile: cannot read {config.categories_file}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config.source}: categoriesFile: {config.categories_file} is not UTF-8: {exc}") from None
    except (CatalogError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{config.source}: categoriesFile: {' '.join(str(exc).split())}") from None


def _type(value: Any) -> str:
    return described(value, yaml=True)


class _Validator:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {message}")

    def unknown(self, raw: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in raw:
            if not isinstance(key, str) or key not in allowed:
                hint = _closest(str(key), allowed)
                raise self.fail(
                    f"{prefix}{key}",
                    "unknown key" + (f" (did you mean {prefix}{hint}?)" if hint else "")
                    + f"; allowed here: {', '.join(allowed)}",
                )  # fmt: skip

    def enum_value(self, value: Any, allowed: tuple[str, ...], key: str, fold_case: bool = False) -> Any:
        if not isinstance(value, str):
            raise self.fail(key, f"expected one of {', '.join(allowed)}, got {_type(value)} {value!r}")
        text = value.strip().lower() if fold_case else value.strip()
        if text not in allowed:
            raise self.fail(key, f"{value!r} is not one of {', '.join(allowed)}")
        return text

    def enum(self, raw: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, *,
             fold_case: bool = False) -> Any:  # fmt: skip
        value = raw.get(key)
        if value is None:
            return default
        return self.enum_value(value, allowed, key, fold_case)

    def version(self, value: Any, key: str) -> KubeVersion:
        if value is None or value == "":
            return NEWEST
        if isinstance(value, float):
            raise self.fail(key, f"YAML reads {value!r} as a number (1.30 would become 1.3): "
                                 "quote the version, e.g. \"1.30\"")  # fmt: skip
        if not isinstance(value, str):
            raise self.fail(key, f'expected a string like "1.35", got {_type(value)}')
        try:
            return parse_version(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def boolean(self, raw: Mapping[str, Any], key: str, default: bool) -> bool:
        value = raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_type(value)} {value!r}")
        return value

    def integer(self, raw: Mapping[str, Any], key: str, default: int, *, minimum: int, maximum: int) -> int:
        value = raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_type(value)} {value!r}")
        if not minimum <= value <= maximum:
            raise self.fail(key, f"{value} is outside the allowed range {minimum}..{maximum}")
        return value

    def number(self, raw: Mapping[str, Any], key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, f"expected a number of seconds, got {_type(value)} {value!r}")
        if not minimum <= value <= maximum:
            raise self.fail(key, f"{value} is outside the allowed range {minimum:g}..{maximum:g}")
        return float(value)

    def optional_path(self, raw: Mapping[str, Any], key: str) -> str | None:
        value = raw.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"expected a file path, got {_type(value)}")
        return value

    def string_list(self, value: Any, key: str) -> frozenset[str]:
        if value is None:
            return frozenset()
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of strings, got {_type(value)}")
        out = set()
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{key}[{i}]", f"expected a non-empty string, got {_type(item)} {item!r}")
            out.add(item)
        return frozenset(out)

    def exemptions(self, value: Any) -> Exemptions:
        if value is None:
            return Exemptions()
        if not isinstance(value, Mapping):
            raise self.fail("exemptions", f"expected a mapping with users and groups, got {_type(value)}")
        self.unknown(value, ("users", "groups"), "exemptions.")
        return Exemptions(
            users=self.string_list(value.get("users"), "exemptions.users"),
            groups=self.string_list(value.get("groups"), "exemptions.groups"),
        )

    def policy_sources(self, value: Any) -> dict[str, PolicySource]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail("policySources",
                            f"expected a mapping of file path to \"namespace/name\", got {_type(value)}")  # fmt: skip
        out: dict[str, PolicySource] = {}
        for path, ref in value.items():
            key = f"policySources[{path!r}]"
            if not isinstance(path, str) or not path.startswith("/"):
                raise self.fail(key, "the key must be the absolute --audit-policy-file path of kube-apiserver")
            out[path] = self.policy_source(ref, key)
        return out

    def policy_source(self, ref: Any, key: str) -> PolicySource:
        if not isinstance(ref, str):
            raise self.fail(key, f'expected "namespace/name" or "namespace/name#key", got {_type(ref)}')
        target, hash_sign, data_key = ref.partition("#")
        namespace, sep, name = target.partition("/")
        if not sep or not namespace or not name:
            raise self.fail(key, f'{ref!r}: expected "namespace/name" or "namespace/name#key"')
        if not _DNS_LABEL.match(namespace):
            raise self.fail(key, f"{ref!r}: {namespace!r} is not a valid namespace name")
        if not _DNS_SUBDOMAIN.match(name):
            raise self.fail(key, f"{ref!r}: {name!r} is not a valid ConfigMap name")
        if hash_sign and not _CONFIGMAP_KEY.match(data_key):
            raise self.fail(key, f"{ref!r}: {data_key!r} is not a valid ConfigMap data key")
        return PolicySource(namespace, name, data_key or None)

    def targets(self, value: Any, default: Mode) -> tuple[Mode, Mode]:
        if value is None:
            return default, default
        if not isinstance(value, Mapping):
            raise self.fail("targets", f"expected a mapping with configMaps and mirrorPods, got {_type(value)}")
        self.unknown(value, ("configMaps", "mirrorPods"), "targets.")
        modes: list[Mode] = []
        for name in ("configMaps", "mirrorPods"):
            target = value.get(name)
            if target is None:
                modes.append(default)
                continue
            if not isinstance(target, Mapping):
                raise self.fail(f"targets.{name}", f"expected a mapping like {{mode: warn}}, got {_type(target)}")
            self.unknown(target, ("mode",), f"targets.{name}.")
            mode = target.get("mode")
            if mode is None or mode == "":
                modes.append(default)
            else:
                modes.append(cast(Mode, self.enum_value(mode, MODES, f"targets.{name}.mode")))
        return modes[0], modes[1]


def _closest(key: str, allowed: tuple[str, ...]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if matches:
        return matches[0]
    lowered = {a.lower(): a for a in allowed}
    return lowered.get(key.lower())
