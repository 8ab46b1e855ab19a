"""kube-apiserver audit configuration: where the flags are, and whether auditing is on.

Sources of flags:

* a kube-apiserver Pod (static-pod manifest or its mirror Pod): the container's
  ``command`` + ``args``, parsed as pflag does (:mod:`webhook.core.pflag`);
* a kubeadm ``ClusterConfiguration``: rendered into the static Pod kubeadm writes
  (:mod:`webhook.core.kubeadm`: the API versions the release reads, strict typing,
  ``ArgumentsToCommand``'s order of duplicates, ``extraVolumes`` merged by name over kubeadm's
  own volumes), which is then read like any static Pod.

A static Pod the kubelet would refuse (:mod:`webhook.core.staticpod`: duplicate mount paths, an
unsupported hostPath type, a mount without its volume) runs no kube-apiserver at all.

The rules (README "How a verdict is reached"): a policy file, a backend, retention per the CIS
Kubernetes Benchmark 1.2.16-1.2.19 and DISA STIG CNTR-K8-003290..003310, hostPath mounts for the
policy and the log, and valid values (an invalid value stops kube-apiserver).  Flag meanings,
defaults per target version and start-up validation come from kube-apiserver's
``staging/src/k8s.io/apiserver/pkg/server/options/audit.go``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.core import goflags, kubeadm, pflag, staticpod
from webhook.core.findings import Code, Finding
from webhook.core.versions import NEWEST, RETENTION_DEFAULTS, KubeVersion, format_version, parse_version

# CIS 1.2.17-1.2.19 (1.27+ numbering) and STIG CNTR-K8-003290..003310.
RETENTION: tuple[tuple[str, int, str], ...] = (
    ("audit-log-maxage", 30, "days"),
    ("audit-log-maxbackup", 10, "files"),
    ("audit-log-maxsize", 100, "MB"),
)
# The finding codes of a retention flag that is not set, and one set below its minimum.
RETENTION_UNSET: Mapping[str, Code] = {
    "audit-log-maxage": "audit-log-maxage-unset",
    "audit-log-maxbackup": "audit-log-maxbackup-unset",
    "audit-log-maxsize": "audit-log-maxsize-unset",
}
RETENTION_TOO_LOW: Mapping[str, Code] = {
    "audit-log-maxage": "audit-log-maxage-too-low",
    "audit-log-maxbackup": "audit-log-maxbackup-too-low",
    "audit-log-maxsize": "audit-log-maxsize-too-low",
}
_MODES = ("batch", "blocking", "blocking-strict")


@dataclass(frozen=True)
class Mount:
    host_path: str
    mount_path: str
    read_only: bool


@dataclass
class ApiserverConfig:
    """The effective audit-relevant configuration of one kube-apiserver."""

    flags: dict[str, str]
    mounts: list[Mount] | None  # None: the source cannot tell (no volume information)
    errors: list[str] = field(default_factory=list)  # kube-apiserver would refuse to start
    notes: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # flags not in the flag set of release `table` (pflag.parse)
    table: KubeVersion = NEWEST  # the release whose flag set judged the flags (goflags.table_version)
    # Flags a shell wrapper may set in a way that cannot be determined statically ("*": any).
    uncertain: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # kubeadm refuses the configuration (its messages)
    kubelet: list[str] = field(default_factory=list)  # the kubelet refuses the static Pod (its field errors)
    version: KubeVersion | None = None  # the target version the source names itself (kubeadm)


# ------------------------------------------------------------------ extraction: Pods


def find_apiserver_container(
    pod: Mapping[str, Any], notes: list[str] | None = None, uncertain: list[str] | None = None
) -> tuple[Mapping[str, Any], list[str]] | None:
    """The kube-apiserver container of a Pod and its flags, or None (``notes``: what a shell
    wrapper left undetermined)."""
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        return None
    containers = spec.get("containers")
    if not isinstance(containers, list):
        return None
    labelled = _labels(pod).get("component") == "kube-apiserver"
    fallback = None
    for c in containers:
        if not isinstance(c, Mapping):
            continue
        env = _env(c)
        command = [expand(a, env) for a in _str_list(c.get("command"))]
        args = [expand(a, env) for a in _str_list(c.get("args"))]
        # With no command the image's entrypoint runs: only trust args as kube-apiserver
        # flags when the container is recognisably kube-apiserver.
        identified = labelled or c.get("name") == "kube-apiserver" or _is_apiserver_image(c.get("image"))
        shell_env: dict[str, str | None] = {**_value_from_names(c), **env}
        argv = pflag.apiserver_argv(command, args, shell_env, notes, uncertain) if command or identified else None
        if argv is not None:
            return c, argv
        if labelled and (c.get("name") == "kube-apiserver" or fallback is None):
            fallback = (c, [*command[1:], *args] if command else args)
    return fallback


def _is_apiserver_image(image: Any) -> bool:
    if not isinstance(image, str):
        return False
    repo = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return repo in ("kube-apiserver", "hyperkube") or repo.startswith("kube-apiserver-")


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    """Literal env values, in order; later entries may refer to earlier ones (kubelet rules)."""
    out: dict[str, str] = {}
    for e in container.get("env") or []:
        if isinstance(e, Mapping) and isinstance(e.get("name"), str) and isinstance(e.get("value"), str):
            out[e["name"]] = expand(e["value"], out)
    return out


def _value_from_names(container: Mapping[str, Any]) -> dict[str, str | None]:
    """Env entries whose value comes from elsewhere (``valueFrom``): known to exist, value unknown."""
    return {
        e["name"]: None
        for e in container.get("env") or []
        if isinstance(e, Mapping) and isinstance(e.get("name"), str) and not isinstance(e.get("value"), str)
    }


def expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion (third_party/forked/golang/expansion/expand.go):
    ``$(NAME)`` becomes the value when NAME is defined, ``$$`` is an escaped ``$``, and an
    undefined reference stays as written."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env[name] if name in env else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _labels(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v if isinstance(v, str) else str(v) for v in value]


def from_pod(pod: Mapping[str, Any], version: KubeVersion = NEWEST) -> ApiserverConfig | None:
    """The configuration of a Pod's kube-apiserver container, its flags read with the flag set
    of release ``version`` (the target)."""
    shell_notes: list[str] = []
    uncertain: list[str] = []
    found = find_apiserver_container(pod, shell_notes, uncertain)
    if found is None:
        return None
    container, argv = found
    parsed = pflag.parse(argv, version)
    parsed.notes[:0] = shell_notes
    volumes: dict[str, str] = {}
    spec = pod.get("spec")
    for v in spec.get("volumes") or [] if isinstance(spec, Mapping) else []:
        if isinstance(v, Mapping) and isinstance(v.get("hostPath"), Mapping):
            volumes[str(v.get("name"))] = str(v["hostPath"].get("path", ""))
    mounts = []
    for m in container.get("volumeMounts") or []:
        if isinstance(m, Mapping) and str(m.get("name")) in volumes:
            mounts.append(
                Mount(volumes[str(m.get("name"))], str(m.get("mountPath", "")), m.get("readOnly") is True)
            )
    return ApiserverConfig(dict(parsed.values), mounts, list(parsed.errors), list(parsed.notes),
                           unknown=list(parsed.unknown), table=parsed.table, uncertain=uncertain,
                           kubelet=staticpod.kubelet_errors(pod))  # fmt: skip


# --------------------------------------------------------------- extraction: kubeadm

# The node's address is not in a ClusterConfiguration (it is the node's InitConfiguration); the
# rendering stands in this one so that the flag parses.
NODE_ADDRESS_STANDIN = "0.0.0.0"


def kubeadm_version(cc: Mapping[str, Any], target: KubeVersion) -> KubeVersion:
    """The kubeadm release that reads ``cc``: the one of its own ``kubernetesVersion`` when it names
    a release auditwarden models (kubeadm deploys its own minor), else the target version."""
    named = cc.get("kubernetesVersion")
    if isinstance(named, str):
        try:
            return parse_version(named)
        except ValueError:
            pass
    return target


def from_cluster_configuration(cc: Mapping[str, Any], target: KubeVersion = NEWEST) -> ApiserverConfig:
    """The kube-apiserver static Pod kubeadm renders from ``cc``, read like any static Pod."""
    version = kubeadm_version(cc, target)
    notes = []
    if "apiVersion" not in cc:
        # Embedded in a Cluster API KubeadmControlPlane or a kind patch: the tool that writes the
        # file kubeadm reads gives it the release's own API version.
        cc = {**cc, "apiVersion": kubeadm.preferred_api_version(version)}
        api = cc.get("apiServer")
        if isinstance(api, Mapping) and isinstance(api.get("extraArgs"), Mapping) and version >= kubeadm.ARGS_AS_LIST:
            # Their own APIs (Cluster API v1beta1, kind) keep extraArgs a map and write it as kubeadm's
            # list, sorted by name.
            args = [{"name": k, "value": v} for k, v in sorted(api["extraArgs"].items(), key=lambda kv: str(kv[0]))]
            cc["apiServer"] = {**api, "extraArgs": args}
        notes.append(f"no apiVersion: read as {cc['apiVersion']}, the version kubeadm {format_version(version)} writes")
    rendering = kubeadm.render(cc, version, advertise_address=NODE_ADDRESS_STANDIN)
    notes += [f"kubeadm {format_version(version)}: {w}" for w in rendering.warnings + rendering.strict]
    if rendering.errors:
        return ApiserverConfig({}, None, notes=notes, refused=list(rendering.errors), version=version)
    cfg = from_pod(rendering.pod(), version)
    if cfg is None:  # pragma: no cover - the rendering always has the container
        raise AssertionError("kubeadm rendering without kube-apiserver")
    cfg.notes[:0] = notes
    cfg.version = version
    return cfg


def from_k3s_config(cfg: Mapping[str, Any], version: KubeVersion = NEWEST) -> ApiserverConfig:
    """k3s/RKE2 ``config.yaml``: ``kube-apiserver-arg`` entries are ``name=value`` flags."""
    raw = cfg.get("kube-apiserver-arg")
    entries = [raw] if isinstance(raw, str) else [_scalar(e) for e in raw] if isinstance(raw, list) else []
    parsed = pflag.parse(["--" + e.lstrip("-") for e in entries], version)
    return ApiserverConfig(dict(parsed.values), None, list(parsed.errors), list(parsed.notes),
                           unknown=list(parsed.unknown), table=parsed.table)  # fmt: skip


# kops ClusterSpec.kubeAPIServer field names (pkg/apis/kops/componentconfig.go) -> flags
_KOPS_FLAGS = {
    "auditLogPath": "audit-log-path",
    "auditLogMaxAge": "audit-log-maxage",
    "auditLogMaxBackups": "audit-log-maxbackup",
    "auditLogMaxSize": "audit-log-maxsize",
    "auditLogFormat": "audit-log-format",
    "auditPolicyFile": "audit-policy-file",
    "auditWebhookConfigFile": "audit-webhook-config-file",
    "auditWebhookBatchBufferSize": "audit-webhook-batch-buffer-size",
    "auditWebhookBatchMaxSize": "audit-webhook-batch-max-size",
    "auditWebhookBatchMaxWait": "audit-webhook-batch-max-wait",
    "auditWebhookBatchThrottleBurst": "audit-webhook-batch-throttle-burst",
    "auditWebhookBatchThrottleEnable": "audit-webhook-batch-throttle-enable",
    "auditWebhookBatchThrottleQps": "audit-webhook-batch-throttle-qps",
    "auditWebhookInitialBackoff": "audit-webhook-initial-backoff",
    "auditWebhookMode": "audit-webhook-mode",
}


def from_kops_cluster(cluster: Mapping[str, Any]) -> ApiserverConfig:
    """kops ``Cluster``: ``spec.kubeAPIServer.audit*`` fields become kube-apiserver flags."""
    spec = cluster.get("spec")
    kas = spec.get("kubeAPIServer") if isinstance(spec, Mapping) else None
    flags: dict[str, str] = {}
    notes: list[str] = []
    for field_name, value in (kas or {}).items() if isinstance(kas, Mapping) else ():
        if isinstance(field_name, str) and field_name.startswith("audit"):
            flag = _KOPS_FLAGS.get(field_name)
            if flag is None:
                notes.append(f"kubeAPIServer.{field_name} is not an audit field auditwarden knows; ignored")
                continue
            flags[flag] = _scalar(value)
    return ApiserverConfig(flags, None, [], notes)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


# ------------------------------------------------------------------------- analysis


@dataclass
class FlagAnalysis:
    violations: list[Finding]
    warnings: list[Finding]
    policy_path: str | None
    summary: str


def _covering_mount(path: str, mounts: Sequence[Mount]) -> Mount | None:
    path = posixpath.normpath(path)
    best: Mount | None = None
    for m in mounts:
        mp = posixpath.normpath(m.mount_path)
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and (
            best is None or len(mp) > len(posixpath.normpath(best.mount_path))
        ):
            best = m
    return best


def analyse_flags(cfg: ApiserverConfig, *, strict_retention: bool, version: KubeVersion) -> FlagAnalysis:
    """Check one apiserver configuration against the rules in this module's docstring."""
    v: list[Finding] = []
    w: list[Finding] = []
    f = cfg.flags
    if cfg.refused:
        who = f"kubeadm {format_version(version)}"
        for err in cfg.refused:
            v.append(Finding("kubeadm-config-invalid", f"{who} refuses this ClusterConfiguration: {err}"))
        w += [Finding("apiserver-flag-note", note) for note in cfg.notes]
        return FlagAnalysis(v, w, None, f"{who} refuses this configuration: no kube-apiserver is deployed from it.")
    if cfg.kubelet:
        v.append(
            Finding(
                "static-pod-invalid",
                "the kubelet refuses this static Pod, so kube-apiserver would not run: "
                + staticpod.kubelet_refusal(cfg.kubelet),
            )
        )
    for err in cfg.errors:
        v.append(Finding("apiserver-flags-invalid", f"kube-apiserver would refuse to start: {err}"))
    for err in cfg.unknown:
        if cfg.table == version:
            v.append(Finding("apiserver-flags-invalid", f"kube-apiserver would refuse to start: {err}"))
        else:  # judged with another release's flag set (goflags.table_version): the target may have it
            w.append(Finding("apiserver-flag-note", f"{err} in kube-apiserver {format_version(cfg.table)} (the nearest "
                             f"release whose flag set auditwarden has); check that kube-apiserver "
                             f"{format_version(version)} has it"))  # fmt: skip
    for note in cfg.notes:
        w.append(Finding("apiserver-flag-note", note))

    policy_path = f.get("audit-policy-file", "")
    log_path = f.get("audit-log-path", "")
    webhook = f.get("audit-webhook-config-file", "")
    if not policy_path:
        v.append(
            Finding(
                "audit-policy-file-missing",
                "--audit-policy-file is not set: kube-apiserver audits nothing without a policy. "
                "Fix: set --audit-policy-file=/etc/kubernetes/audit-policy.yaml (and mount it).",
            )
        )
    if not log_path and not webhook:
        v.append(
            Finding(
                "audit-backend-missing",
                "neither --audit-log-path nor --audit-webhook-config-file is set: no audit event is written "
                "anywhere. Fix: set --audit-log-path=/var/log/kubernetes/audit/audit.log.",
            )
        )
    v += _value_errors(f, log_enabled=bool(log_path), webhook_enabled=bool(webhook),
                       version=goflags.table_version(version))
    if log_path and log_path != "-":
        _retention(f, v, w, strict_retention, version)
    elif log_path == "-":
        w.append(
            Finding(
                "audit-log-stdout",
                "--audit-log-path=- writes audit events to standard output: they are kept only as long as "
                "the container log; retention flags do not apply.",
            )
        )
    if cfg.mounts is not None:
        mounts = list(cfg.mounts)
        if policy_path and not _covering_mount(policy_path, mounts):
            v.append(
                Finding(
                    "audit-policy-not-mounted",
                    f"--audit-policy-file={policy_path} is not inside any hostPath volume mounted into the "
                    "apiserver container: kube-apiserver cannot read it and will not start. Fix: add a "
                    "hostPath volume and mount covering it.",
                )
            )
        if log_path and log_path != "-":
            m = _covering_mount(posixpath.dirname(posixpath.normpath(log_path)) or "/", mounts)
            if m is None:
                v.append(
                    Finding(
                        "audit-log-not-mounted",
                        f"--audit-log-path={log_path}: its directory is not inside a hostPath volume, so the "
                        "audit log is lost whenever the container restarts. Fix: mount a hostPath "
                        "directory (readOnly: false) at the log directory.",
                    )
                )
            elif m.read_only:
                v.append(
                    Finding(
                        "audit-log-mount-read-only",
                        f"--audit-log-path={log_path} lies in the read-only mount {m.mount_path}: kube-apiserver "
                        "cannot write its audit log. Fix: mount the log directory with readOnly: false.",
                    )
                )
    summary = _summary(policy_path, log_path, webhook, v)
    if cfg.uncertain:
        v, w = _demote_uncertain(v, w, cfg.uncertain)
    return FlagAnalysis(v, w, policy_path or None, summary)


def _demote_uncertain(v: list[Finding], w: list[Finding], uncertain: list[str]) -> tuple[list[Finding], list[Finding]]:
    """A violation about a flag the shell wrapper may set undeterminably is only a warning:
    auditwarden neither refuses nor guesses on what it cannot know (issue 11)."""
    keep: list[Finding] = []
    for finding in v:
        if "*" in uncertain or any(f"--{name}" in finding.message for name in uncertain):
            w.append(Finding(finding.code, f"not determinable statically, so only a warning: {finding.message}"))
        else:
            keep.append(finding)
    return keep, w


def _summary(policy: str, log: str, webhook: str, violations: list[Finding]) -> str:
    backend = " and ".join(
        x for x in ((f"log file {log}" if log else ""), ("webhook backend" if webhook else "")) if x
    )
    state = "on" if policy and backend else "OFF"
    text = f"kube-apiserver auditing is {state}"
    if policy:
        text += f" (policy {policy}"
        text += f", {backend})" if backend else ", no backend)"
    if violations:
        text += f"; {len(violations)} problem{'s' if len(violations) != 1 else ''}"
    return text + "."


def _value_errors(
    f: Mapping[str, str], *, log_enabled: bool, webhook_enabled: bool, version: KubeVersion = NEWEST
) -> list[Finding]:
    """Values kube-apiserver rejects at start-up (options/audit.go Validate + flag parsing), the
    flags typed by the flag set of release ``version``."""
    out: list[Finding] = []
    table = goflags.flag_table(version)
    for name, value in f.items():
        # Audit flags only: pflag.parse reports the other flags' bad values itself.
        if not name.startswith("audit-") or name not in table:
            continue
        try:
            goflags.check_value(table[name]["type"], value, name)
        except ValueError as exc:
            out.append(
                Finding(
                    "audit-flag-invalid",
                    f"kube-apiserver would refuse to start: invalid argument {goflags.go_quote(value)} "
                    f'for "--{name}" flag: {exc}',
                )
            )
    enabled = [("log", log_enabled), ("webhook", webhook_enabled)]
    for backend, on in enabled:
        if not on:
            continue
        mode = f.get(f"audit-{backend}-mode")
        if mode is not None and mode not in _MODES:
            out.append(_invalid(f"audit-{backend}-mode", mode, f"must be one of {', '.join(_MODES)}"))
        out += _batch_and_truncate_errors(f, backend)
        api_version = f.get(f"audit-{backend}-version")
        if api_version is not None and api_version != "audit.k8s.io/v1":
            out.append(_invalid(f"audit-{backend}-version", api_version, "only audit.k8s.io/v1 is supported"))
    if log_enabled:
        fmt = f.get("audit-log-format")
        if fmt is not None and fmt not in ("json", "legacy"):
            out.append(_invalid("audit-log-format", fmt, "must be json or legacy"))
        for name, _, _ in RETENTION:
            n = _int(f.get(name))
            if n is not None and n < 0:
                out.append(_invalid(name, f[name], "must not be negative"))
    return out


@dataclass(frozen=True)
class _BackendDefaults:
    """options/audit.go defaults of one backend."""

    mode: str
    buffer: int
    max_batch: int
    throttle: bool
    qps: float
    burst: int


_BACKEND_DEFAULTS = {
    "log": _BackendDefaults("blocking", 10000, 1, False, 0.0, 0),
    "webhook": _BackendDefaults("batch", 10000, 400, True, 10.0, 15),
}


def _batch_and_truncate_errors(f: Mapping[str, str], backend: str) -> list[Finding]:
    """options/audit.go validateBackendBatchOptions and AuditTruncateOptions.Validate."""
    d = _BACKEND_DEFAULTS[backend]
    out: list[Finding] = []
    p = f"audit-{backend}"
    if f.get(f"{p}-mode", d.mode) == "batch":
        for name, default in ((f"{p}-batch-buffer-size", d.buffer), (f"{p}-batch-max-size", d.max_batch)):
            n = _int(f[name]) if name in f else default
            if n is not None and n <= 0:
                out.append(_invalid(name, f.get(name, str(default)), "must be positive in batch mode"))
        raw_throttle = f.get(f"{p}-batch-throttle-enable")
        try:
            throttle = d.throttle if raw_throttle is None else pflag.parse_go_bool(raw_throttle)
        except ValueError:
            throttle = False  # reported as an invalid value
        if throttle:
            for name, fallback in ((f"{p}-batch-throttle-qps", d.qps), (f"{p}-batch-throttle-burst", float(d.burst))):
                try:
                    value = goflags.parse_float(f[name], 32) if name in f else fallback
                except ValueError:
                    continue  # reported as an invalid value
                if value <= 0:
                    out.append(
                        _invalid(name, f.get(name, str(fallback)), "must be positive when batch throttling is enabled")
                    )
    event = _int(f[f"{p}-truncate-max-event-size"]) if f"{p}-truncate-max-event-size" in f else 102400
    batch = _int(f[f"{p}-truncate-max-batch-size"]) if f"{p}-truncate-max-batch-size" in f else 10485760
    if event is not None and event <= 0:
        out.append(_invalid(f"{p}-truncate-max-event-size", str(event), "must be positive"))
    elif event is not None and batch is not None and batch < event:
        out.append(
            _invalid(f"{p}-truncate-max-batch-size", str(batch),
                     f"must not be smaller than --{p}-truncate-max-event-size ({event})")
        )  # fmt: skip
    return out


def _invalid(name: str, value: str, why: str) -> Finding:
    return Finding("audit-flag-invalid", f"kube-apiserver would refuse to start: --{name}={value}: {why}")


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return pflag.parse_go_int(text)
    except ValueError:
        return None


def _retention(
    f: Mapping[str, str], v: list[Finding], w: list[Finding], strict: bool, version: KubeVersion
) -> None:
    new_defaults = version >= RETENTION_DEFAULTS
    defaults = {"audit-log-maxage": 366, "audit-log-maxbackup": 100, "audit-log-maxsize": 100}
    for name, minimum, unit in RETENTION:
        raw = f.get(name)
        if raw is None:
            default = defaults[name] if new_defaults else 0
            effect = (
                f"kube-apiserver {format_version(version)} defaults it to {default}"
                if new_defaults
                else f"kube-apiserver {format_version(version)} defaults it to 0"
                + (" (lumberjack then rotates at 100 MB)" if name == "audit-log-maxsize" else " (no limit)")
            )
            message = (
                f"--{name} is not set ({effect}); CIS and the DISA STIG require it set to at least "
                f"{minimum} {unit}. Fix: --{name}={minimum}."
            )
            (v if strict else w).append(Finding(RETENTION_UNSET[name], message))
            continue
        n = _int(raw)
        if n is None or n < 0:
            continue  # reported as invalid
        if n < minimum:
            extra = ""
            if raw.strip() != str(n):
                extra = f" ({raw!r} is read as {n})"
            if name == "audit-log-maxsize" and n == 0 and new_defaults:
                extra += " (0 disables rotation since Kubernetes 1.36)"
            v.append(
                Finding(
                    RETENTION_TOO_LOW[name],
                    f"--{name}={raw}{extra} is below the CIS/STIG minimum of {minimum} {unit}. "
                    f"Fix: --{name}={minimum} or more.",
                )
            )


def retention_values(f: Mapping[str, str]) -> dict[str, int | None]:
    """The effective numeric retention values (None when unset or unparseable)."""
    return {name: _int(f.get(name)) for name, _, _ in RETENTION}
