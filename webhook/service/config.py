"""The webhook's configuration file, validated once at start against its JSON Schema.

One YAML file (``auditwarden serve --config FILE`` or ``AUDITWARDEN_CONFIG``); every key is
optional.  ``webhook/data/config.schema.json`` is the one description of it: every key, its type,
range, pattern and default.  The chart's ``values.schema.json``, the chart's ``values.yaml``
``config:`` block and the configuration tables of README.md and docs/webhook.md are generated from
it (``scripts/gen_config_docs.py``), and this module reads the defaults from it, so they are kept in
that one place.  Anything the schema does not allow is refused with the key's path, so a typo never
silently falls back to a default (``targets.configMap.mode`` is an error, not "enforce").

The file is parsed by the project's bounded loader (:mod:`webhook.core.yamlsafe`: size, UTF-8,
nesting and alias limits), then validated with ``jsonschema``.  What a schema cannot say is checked
here after it: a number that is not finite, and a ``kubernetesVersion`` outside the releases
auditwarden models.  Environment overrides: ``AUDITWARDEN_MODE``, ``AUDITWARDEN_PROFILE``,
``AUDITWARDEN_KUBERNETES_VERSION`` (an empty value is ignored), validated against the same schema.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import jsonschema
import yaml

from webhook.core import yamlsafe
from webhook.core.jsontypes import described
from webhook.core.verdict import Context, Exemptions, Mode, Profile
from webhook.core.versions import NEWEST, KubeVersion, format_version, parse_version

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "ENV_CONFIG",
    "SCHEMA",
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

#: The configuration file's JSON Schema (draft 2020-12), shipped as package data.
SCHEMA: Mapping[str, Any] = json.loads(
    resources.files("webhook.data").joinpath("config.schema.json").read_text(encoding="utf-8")
)
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _schema_at(*path: str) -> Mapping[str, Any]:
    node: Mapping[str, Any] = SCHEMA
    for key in path:
        node = node["properties"][key]
    return node


def _default(*path: str) -> Any:
    return _schema_at(*path)["default"]


MODES: tuple[Mode, ...] = tuple(_schema_at("mode")["enum"])
PROFILES: tuple[Profile, ...] = tuple(_schema_at("profile")["enum"])
DEFAULT_MAX_REQUEST_BYTES: int = _default("maxRequestBytes")
# The schema's defaults, as the typed fields of ServiceConfig hold them.
_MODE: Mode = _default("mode")
_PROFILE: Profile = _default("profile")
_TTL = float(_default("policySourceTTLSeconds"))
_DENY_ON_ERROR: bool = _default("denyOnPolicySourceError")
_REQUIRE_KIND_LABEL: bool = _default("requireKindLabel")
_CATEGORIES_FILE: str | None = _default("categoriesFile") or None
_CONFIG_MAPS_MODE: Mode = _default("targets", "configMaps", "mode") or _MODE
_MIRROR_PODS_MODE: Mode = _default("targets", "mirrorPods", "mode") or _MODE
_LOG_LEVEL = str(_default("logLevel")).lower()
_TIMEOUT = float(_default("analysisTimeoutSeconds"))
_ISOLATE_ABOVE: int = _default("isolateAboveBytes")


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
    """The validated configuration.  Build it with :func:`load_config` or :func:`parse_config`.

    The field defaults are the schema's (``ServiceConfig()`` equals ``parse_config({})``).
    """

    mode: Mode = _MODE
    profile: Profile = _PROFILE
    kubernetes_version: KubeVersion = NEWEST  # the schema's default "" means the newest release
    exemptions: Exemptions = field(default_factory=Exemptions)
    policy_sources: Mapping[str, PolicySource] = field(default_factory=lambda: MappingProxyType({}))
    policy_source_ttl_seconds: float = _TTL
    deny_on_policy_source_error: bool = _DENY_ON_ERROR
    require_kind_label: bool = _REQUIRE_KIND_LABEL
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    categories_file: str | None = _CATEGORIES_FILE
    config_maps_mode: Mode = _CONFIG_MAPS_MODE
    mirror_pods_mode: Mode = _MIRROR_PODS_MODE
    log_level: str = _LOG_LEVEL
    analysis_timeout_seconds: float = _TIMEOUT
    isolate_above_bytes: int = _ISOLATE_ABOVE
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
            "requireKindLabel": self.require_kind_label,
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
        try:
            with Path(where).open("rb") as fh:
                # One byte more than the loader accepts, so that it can say the file is too large.
                data = fh.read(yamlsafe.MAX_TEXT_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the configuration file: {exc.strerror or exc}") from None
        try:
            raw = yamlsafe.load_one(data)
        except yamlsafe.DocumentError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if raw is None:
            raw = {}
    return parse_config(raw, env=env, source=where or "<defaults>")


def parse_config(raw: Any, *, env: Mapping[str, str] | None = None, source: str = "<config>") -> ServiceConfig:
    """Validate an already-parsed configuration document (plus environment overrides)."""
    env = {} if env is None else env
    problems = schema_problems(raw)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    conf: Mapping[str, Any] = _without_nulls(raw)

    def get(*path: str) -> Any:
        node: Any = conf
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return _default(*path) if node is None else node

    mode = cast(Mode, get("mode"))
    profile = cast(Profile, get("profile"))
    version = _version(get("kubernetesVersion"), "kubernetesVersion", source)

    # Environment overrides, validated by the same schema and named by the variable.
    if env.get(ENV_MODE, "").strip():
        mode = cast(Mode, _env_value(env[ENV_MODE], "mode", ENV_MODE, source))
    if env.get(ENV_PROFILE, "").strip():
        profile = cast(Profile, _env_value(env[ENV_PROFILE], "profile", ENV_PROFILE, source))
    if env.get(ENV_KUBERNETES_VERSION, "").strip():
        text = _env_value(env[ENV_KUBERNETES_VERSION], "kubernetesVersion", ENV_KUBERNETES_VERSION, source)
        version = _version(text, f"${ENV_KUBERNETES_VERSION}", source)

    sources = {path: _policy_source(ref) for path, ref in get("policySources").items()}
    return ServiceConfig(
        mode=mode,
        profile=profile,
        kubernetes_version=version,
        exemptions=Exemptions(
            users=frozenset(get("exemptions", "users")), groups=frozenset(get("exemptions", "groups"))
        ),
        policy_sources=MappingProxyType(sources),
        policy_source_ttl_seconds=float(get("policySourceTTLSeconds")),
        deny_on_policy_source_error=get("denyOnPolicySourceError"),
        require_kind_label=get("requireKindLabel"),
        max_request_bytes=int(get("maxRequestBytes")),
        categories_file=get("categoriesFile") or None,
        config_maps_mode=cast(Mode, get("targets", "configMaps", "mode") or mode),
        mirror_pods_mode=cast(Mode, get("targets", "mirrorPods", "mode") or mode),
        log_level=str(get("logLevel")).lower(),
        analysis_timeout_seconds=float(get("analysisTimeoutSeconds")),
        isolate_above_bytes=int(get("isolateAboveBytes")),
        source=source,
    )


def schema_problems(raw: Any) -> list[str]:
    """Everything wrong with ``raw`` as a configuration document, one ``path: reason`` per key.

    A key the schema names whose value is null counts as absent (it takes the default).
    """
    doc = _without_nulls(raw)
    best: dict[tuple[str, ...], jsonschema.ValidationError] = {}
    for error in _VALIDATOR.iter_errors(doc):
        where = tuple(str(p) for p in error.absolute_path)
        kept = best.get(where)
        if kept is None or _RANK.get(error.validator, 9) < _RANK.get(kept.validator, 9):  # type: ignore[arg-type]
            best[where] = error
    problems = [_describe(best[where]) for where in sorted(best)]
    problems += [f"{path}: {value!r} is not a number" for path, value in _nans(doc, ())]
    return problems


def _without_nulls(value: Any, schema: Mapping[str, Any] = SCHEMA) -> Any:
    """``value`` without the null values of named keys (those take their default).

    Only keys the schema names: a null where a free-form mapping expects a value (a
    ``policySources`` entry without its ConfigMap) stays, and is refused.
    """
    named = schema.get("properties")
    if not isinstance(value, Mapping) or not named:
        return value
    return {
        k: _without_nulls(v, named[k]) if k in named else v for k, v in value.items() if not (v is None and k in named)
    }


def _nans(value: Any, where: tuple[Any, ...]) -> Iterable[tuple[str, float]]:
    """jsonschema's range checks let NaN through (every comparison with it is false); ``.inf`` is out of range."""
    if isinstance(value, float) and math.isnan(value):
        yield _path(where), value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _nans(v, (*where, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nans(v, (*where, i))


# Which error to report when one key has several: the one that says most plainly what is wrong.
_RANK = {"additionalProperties": 0, "type": 1, "propertyNames": 2, "enum": 3, "pattern": 3}


def _path(where: Iterable[Any]) -> str:
    """``targets.mirrorPods.mode``, ``exemptions.groups[1]``, ``policySources['/etc/a.yaml']``."""
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _describe(error: jsonschema.ValidationError) -> str:
    """One ``path: reason`` line, in the words of the schema's titles and constraints."""
    where = list(error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    value: Any = error.instance
    kind = error.validator
    if kind == "additionalProperties":
        allowed = tuple(schema.get("properties", {}))
        prefix = _path(where) + "." if where else ""
        lines = []
        for key in value:
            if key in allowed:
                continue
            hint = _closest(str(key), allowed)
            lines.append(f"{prefix}{key}: unknown key" + (f" (did you mean {prefix}{hint}?)" if hint else "")
                         + f"; allowed here: {', '.join(allowed)}")  # fmt: skip
        return "; ".join(lines)
    if "propertyNames" in error.schema_path:
        return f"{_path([*where, value])}: the key must be {schema.get('title', 'a string')}"
    path = _path(where)
    if kind == "type":
        if not where:
            return f"the configuration must be {schema.get('title', 'a mapping')}, got {_type(value)}"
        if isinstance(value, float) and schema.get("type") == "string":
            example = json.dumps(schema.get("examples", ["1.30"])[0])
            return f"{path}: YAML reads {value!r} as a number (1.30 would become 1.3): quote it, e.g. {example}"
        return f"{path}: expected {_expected(schema)}, got {_type(value)} {_show(value)}"
    if kind == "enum":
        return f"{path}: {value!r} is not one of {_choices(schema['enum'])}"
    if kind == "pattern":
        title = schema.get("title")
        return f"{path}: {value!r} is not {title} (pattern {schema['pattern']})" if title else (
            f"{path}: {value!r} does not match the pattern {schema['pattern']}")  # fmt: skip
    if kind in ("minimum", "maximum"):
        low, high = _num(schema["minimum"]), _num(schema["maximum"])
        return f"{path}: {_num(value)} is outside the allowed range {low}..{high}"
    return f"{path}: {' '.join(error.message.split())}"


def _expected(schema: Mapping[str, Any]) -> str:
    if "title" in schema:
        return str(schema["title"])
    if "enum" in schema:
        return f"one of {_choices(schema['enum'])}"
    names = {"boolean": "true or false", "integer": "an integer", "number": "a number", "string": "a string"}
    return names.get(schema.get("type", ""), "a value")


def _choices(values: Iterable[Any]) -> str:
    return ", ".join('""' if v == "" else str(v) for v in values)


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, int | float) and float(value).is_integer() else f"{value:g}"


def _show(value: Any) -> str:
    return "" if isinstance(value, Mapping | list) else repr(value)


def _env_value(text: str, key: str, variable: str, source: str) -> str:
    value = text.strip()
    for error in _VALIDATOR.evolve(schema=_schema_at(key)).iter_errors(value):
        reason = _describe(error).partition(": ")[2]
        raise ConfigError(f"{source}: ${variable}: {reason}")
    return value


def _version(value: str, key: str, source: str) -> KubeVersion:
    if value == "":
        return NEWEST
    try:
        return parse_version(value)
    except ValueError as exc:
        raise ConfigError(f"{source}: {key}: {exc}") from None


def _policy_source(ref: str) -> PolicySource:
    """Split a reference the schema's pattern has already accepted."""
    target, _, data_key = ref.partition("#")
    namespace, _, name = target.partition("/")
    return PolicySource(namespace, name, data_key or None)


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
            require_kind_label=config.require_kind_label,
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


def _closest(key: str, allowed: tuple[str, ...]) -> str | None:
    matches = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    if matches:
        return matches[0]
    lowered = {a.lower(): a for a in allowed}
    return lowered.get(key.lower())
