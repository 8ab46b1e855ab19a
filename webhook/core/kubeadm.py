"""A kubeadm ``ClusterConfiguration`` read and rendered exactly as kubeadm does it.

kubeadm turns ``apiServer.extraArgs`` and ``apiServer.extraVolumes`` into the kube-apiserver
static Pod it writes (``kubeadm init phase control-plane apiserver``).  What that manifest holds
depends on the kubeadm release, which is the one of the target Kubernetes version (kubeadm
deploys its own minor, or one below):

**Which API versions a release reads** (``cmd/kubeadm/app/util/config/common.go``
``validateSupportedVersion`` and the scheme of each release): ``kubeadm.k8s.io/v1beta2`` up to
1.26, ``v1beta3`` from 1.22 to 1.36 (deprecated from 1.31, removed in 1.37: "Please use kubeadm
v1.36"), ``v1beta4`` from 1.31, ``v1`` only as an experimental API in 1.37, behind
``--allow-experimental-api``.

**Strict typing** (the scheme's JSON decoding): every field has its Go type; a number, a
boolean or an object where a string belongs (``value: 30``, ``value: 0x1e``, ``yes``) is
refused ("cannot unmarshal number into Go struct field …"); ``null`` leaves a field empty.
Unknown fields are refused by ``kubeadm config validate`` (strict decoding) and only warned
about by ``kubeadm init`` (``documentMapToInitConfiguration``).

**Arguments** (``cmd/kubeadm/app/util/arguments.go`` ``ArgumentsToCommand`` and
``phases/controlplane/manifests.go`` ``getAPIServerCommand``): kubeadm's own base arguments
(sorted by name) and the user's ``extraArgs``:

* 1.37: base arguments without a "replace" override, then every override without
  ``mergeMethod`` in the order written — duplicates kept, so pflag's last one wins; an override
  with ``mergeMethod: append|prepend`` (API ``v1`` only) merges the *last* override of that
  name into the base argument, and is ignored when there is no base argument of that name;
* 1.35-1.36: base arguments without an override, then the overrides in the order written;
* 1.31-1.34: base arguments without an override and the overrides, all sorted by name and
  then value — among duplicates the greatest value (as a string) comes last and wins;
* up to 1.30: a map (no duplicates), sorted by name.

``v1beta3``'s map is turned into a list sorted by name (``convertToArgs``).

**Volumes** (``phases/controlplane/volumes.go``): kubeadm's own read-only ``k8s-certs``
(``certificatesDir``) and ``ca-certs`` (``/etc/ssl/certs``), directories of an external etcd's
certificates, the CA directories that exist on the node, then ``extraVolumes`` merged *by name*
(a later one replaces an earlier one, and one named like a default replaces the default);
volumes and mounts are written sorted by name.
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.core.jsontypes import json_type
from webhook.core.versions import KubeVersion, format_version

GROUP = "kubeadm.k8s.io"

#: Releases that read each API version (first, last), from ``validateSupportedVersion``'s
#: history in ``cmd/kubeadm/app/util/config/common.go``.
READ_BY: Mapping[str, tuple[KubeVersion, KubeVersion | None]] = {
    "v1beta1": ((1, 13), (1, 21)),
    "v1beta2": ((1, 15), (1, 26)),
    "v1beta3": ((1, 22), (1, 36)),
    "v1beta4": ((1, 31), None),
}
#: ``oldKnownAPIVersions`` (1.37): the kubeadm release named in the refusal of a removed version.
_OLD_KNOWN = {
    "v1alpha1": "v1.11",
    "v1alpha2": "v1.12",
    "v1alpha3": "v1.14",
    "v1beta1": "v1.15",
    "v1beta2": "v1.22",
    "v1beta3": "v1.36",
}
#: ``kubeadm.k8s.io/v1`` is registered, as experimental, from this release.
EXPERIMENTAL_V1: KubeVersion = (1, 37)
#: ``mergeMethod`` of an ``Arg`` (API v1 only) and the 1.37 ``ArgumentsToCommand``.
MERGE_METHOD: KubeVersion = (1, 37)
#: Overrides appended in the order written (1.35+); before: everything sorted (1.31-1.34).
OVERRIDES_IN_ORDER: KubeVersion = (1, 35)
#: ``extraArgs`` became a list of ``{name, value}`` in the internal API (v1beta4).
ARGS_AS_LIST: KubeVersion = (1, 31)

#: The advertise address of a ClusterConfiguration read alone (it belongs to the node's
#: InitConfiguration, which ``kubeadm-config`` does not hold).
NODE_ADDRESS = "<node address>"
DEFAULT_CERTIFICATES_DIR = "/etc/kubernetes/pki"
_AUTHZ_MODES = ("Node", "RBAC", "Webhook", "ABAC", "AlwaysAllow", "AlwaysDeny")
# volumes.go caCertsExtraVolumePaths: mounted when they exist on the node.
CA_EXTRA_PATHS = ("/etc/pki/ca-trust", "/etc/pki/tls/certs", "/etc/ca-certificates",
                  "/usr/share/ca-certificates", "/usr/local/share/ca-certificates")  # fmt: skip


@dataclass(frozen=True)
class Volume:
    name: str
    host_path: str
    type: str


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str
    read_only: bool


@dataclass
class Rendering:
    """What kubeadm makes of a ClusterConfiguration: refusal or the kube-apiserver Pod's parts."""

    kubeadm: KubeVersion
    errors: list[str] = field(default_factory=list)  # kubeadm refuses the configuration
    strict: list[str] = field(default_factory=list)  # only `kubeadm config validate` refuses (unknown fields)
    warnings: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)  # "kube-apiserver", flags...
    volumes: list[Volume] = field(default_factory=list)  # sorted by name
    mounts: list[VolumeMount] = field(default_factory=list)  # sorted by name

    def pod(self) -> dict[str, Any]:
        """The parts of the static Pod kubeadm writes that auditwarden judges."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kube-apiserver", "namespace": "kube-system",
                         "labels": {"component": "kube-apiserver", "tier": "control-plane"}},
            "spec": {
                "containers": [{
                    "name": "kube-apiserver",
                    "command": list(self.command),
                    "volumeMounts": [{"name": m.name, "mountPath": m.mount_path, "readOnly": m.read_only}
                                     for m in self.mounts],
                }],
                "volumes": [{"name": v.name, "hostPath": {"path": v.host_path, "type": v.type}} for v in self.volumes],
            },
        }  # fmt: skip


@dataclass(frozen=True)
class _Arg:
    name: str
    value: str
    merge: str = ""


# ----------------------------------------------------------------------------- decoding


class _Decoder:
    """The scheme's JSON decoding of the fields auditwarden renders: Go types, strict fields.

    Like Go's ``encoding/json`` it keeps decoding after a type error and reports the first one.
    """

    def __init__(self, version: str) -> None:
        self.version = version
        self.type_error: str | None = None
        self.unknown: list[str] = []

    def fail(self, got: Any, struct: str, path: str, go_type: str) -> None:
        if self.type_error is None:
            # Go's path names the embedded struct the component fields come from.
            if path.startswith("apiServer.extra"):
                path = "apiServer.ControlPlaneComponent." + path.removeprefix("apiServer.")
            self.type_error = (
                f"json: cannot unmarshal {json_type(got)} into Go struct field {struct}.{path} of type {go_type}"
            )

    def string(self, value: Any, struct: str, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(value, struct, path, "string")
            return ""
        return value

    def boolean(self, value: Any, struct: str, path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(value, struct, path, "bool")
            return False
        return value

    def obj(self, value: Any, struct: str, path: str, go_type: str, known: Sequence[str]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(value, struct, path, go_type)
            return {}
        for key in value:
            if key not in known:
                self.unknown.append(f'unknown field "{path}.{key}"' if path else f'unknown field "{key}"')
        return value

    def array(self, value: Any, struct: str, path: str, go_type: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(value, struct, path, go_type)
            return []
        return value


# Fields of the decoded types (the ones not rendered are only checked for being known).
_CLUSTER_FIELDS = ("apiVersion", "kind", "etcd", "networking", "kubernetesVersion", "controlPlaneEndpoint", "apiServer",
                   "controllerManager", "scheduler", "dns", "proxy", "certificatesDir", "imageRepository",
                   "featureGates", "clusterName", "encryptionAlgorithm", "certificateValidityPeriod",
                   "caCertificateValidityPeriod")  # fmt: skip
_API_SERVER_FIELDS = ("extraArgs", "extraVolumes", "extraEnvs", "certSANs")
_VOLUME_FIELDS = ("name", "hostPath", "mountPath", "readOnly", "pathType")
_NETWORKING_FIELDS = ("serviceSubnet", "podSubnet", "dnsDomain")


def _api_fields(version: str) -> tuple[str, ...]:
    # v1beta3: no extraEnvs, and timeoutForControlPlane (v1beta4 moved it to InitConfiguration.timeouts).
    if version == "v1beta3":
        return ("extraArgs", "extraVolumes", "certSANs", "timeoutForControlPlane")
    return _API_SERVER_FIELDS


_V1BETA4_ADDED = ("proxy", "encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod")


def _cluster_fields(version: str) -> tuple[str, ...]:
    if version == "v1beta3":
        return tuple(f for f in _CLUSTER_FIELDS if f not in _V1BETA4_ADDED)
    return _CLUSTER_FIELDS


@dataclass
class _Decoded:
    args: list[_Arg]
    volumes: list[tuple[str, str, str, bool, str]]  # name, hostPath, mountPath, readOnly, pathType
    certificates_dir: str
    service_subnet: str
    dns_domain: str
    external_etcd: tuple[list[str], str, str, str] | None  # endpoints, caFile, certFile, keyFile
    local_etcd_args: list[_Arg]


def _decode(cc: Mapping[str, Any], version: str, kubeadm: KubeVersion) -> tuple[_Decoded, _Decoder]:
    # sigs.k8s.io/yaml turns the YAML into JSON with sorted keys, so fields decode (and the first
    # type error is found) in alphabetical order at every level.
    d = _Decoder(version)
    struct = "ClusterConfiguration"
    d.obj(cc, struct, "", "ClusterConfiguration", _cluster_fields(version))
    api = d.obj(cc.get("apiServer"), struct, "apiServer", "APIServer", _api_fields(version))
    args = _decode_args(d, api.get("extraArgs"), "apiServer.extraArgs", "APIServer", version)
    volumes = []
    for v in d.array(api.get("extraVolumes"), "APIServer", "apiServer.extraVolumes", f"[]{version}.HostPathMount"):
        p = "apiServer.extraVolumes"
        m = d.obj(v, "APIServer", p, f"{version}.HostPathMount", _VOLUME_FIELDS)
        host = d.string(m.get("hostPath"), "HostPathMount", f"{p}.hostPath")
        mount = d.string(m.get("mountPath"), "HostPathMount", f"{p}.mountPath")
        name = d.string(m.get("name"), "HostPathMount", f"{p}.name")
        kind = d.string(m.get("pathType"), "HostPathMount", f"{p}.pathType")
        read_only = d.boolean(m.get("readOnly"), "HostPathMount", f"{p}.readOnly")
        volumes.append((name, host, mount, read_only, kind))
    certificates_dir = d.string(cc.get("certificatesDir"), struct, "certificatesDir")
    d.string(cc.get("kubernetesVersion"), struct, "kubernetesVersion")
    net = d.obj(cc.get("networking"), struct, "networking", "Networking", _NETWORKING_FIELDS)
    dns_domain = d.string(net.get("dnsDomain"), "Networking", "networking.dnsDomain")
    d.string(net.get("podSubnet"), "Networking", "networking.podSubnet")
    service_subnet = d.string(net.get("serviceSubnet"), "Networking", "networking.serviceSubnet")
    etcd = cc.get("etcd")
    etcd = etcd if isinstance(etcd, Mapping) else {}
    external = None
    ext = etcd.get("external")
    if isinstance(ext, Mapping):
        endpoints = [e for e in ext.get("endpoints") or [] if isinstance(e, str)]
        external = (endpoints, _plain(ext.get("caFile")), _plain(ext.get("certFile")), _plain(ext.get("keyFile")))
    local = etcd.get("local")
    local_args: list[_Arg] = []
    if isinstance(local, Mapping):
        local_args = _decode_args(
            _Decoder(version), local.get("extraArgs"), "etcd.local.extraArgs", "LocalEtcd", version
        )
    return _Decoded(args, volumes, certificates_dir, service_subnet, dns_domain, external, local_args), d


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _decode_args(d: _Decoder, raw: Any, path: str, struct: str, version: str) -> list[_Arg]:
    if version in ("v1beta1", "v1beta2", "v1beta3"):  # map[string]string
        m = d.obj(raw, struct, path, "map[string]string", ()) if isinstance(raw, Mapping) or raw is None else None
        if m is None:
            d.fail(raw, struct, path, "map[string]string")
            return []
        d.unknown = [u for u in d.unknown if not u.startswith(f'unknown field "{path}.')]
        out = [_Arg(str(k), d.string(m[k], struct, path)) for k in sorted(m)]
        return sorted(out, key=lambda a: (a.name, a.value))  # convertToArgs
    out = []
    fields = ("name", "value", "mergeMethod") if version == "v1" else ("name", "value")
    for item in d.array(raw, struct, path, f"[]{version}.Arg"):
        m = d.obj(item, struct, path, f"{version}.Arg", fields)
        merge = d.string(m.get("mergeMethod"), "Arg", f"{path}.mergeMethod") if version == "v1" else ""
        name = d.string(m.get("name"), "Arg", f"{path}.name")
        value = d.string(m.get("value"), "Arg", f"{path}.value")
        out.append(_Arg(name, value, merge))
    return out


# ----------------------------------------------------------------------------- reading


def preferred_api_version(kubeadm: KubeVersion) -> str:
    """The API version a release writes (``kubeadm config print``): what an embedded
    ClusterConfiguration without ``apiVersion`` becomes (Cluster API, kind's patches)."""
    if kubeadm >= READ_BY["v1beta4"][0]:
        return f"{GROUP}/v1beta4"
    if kubeadm >= READ_BY["v1beta3"][0]:
        return f"{GROUP}/v1beta3"
    return f"{GROUP}/v1beta2"


def read_error(api_version: Any, kubeadm: KubeVersion, *, allow_experimental: bool = False) -> str | None:
    """kubeadm's refusal of a ClusterConfiguration's ``apiVersion``, or None when it reads it."""
    if not isinstance(api_version, str) or "/" not in api_version:
        return f"couldn't get version/kind: apiVersion {api_version!r} is not a kubeadm API version"
    group, version = api_version.split("/", 1)
    if group != GROUP:
        return f'no kind "ClusterConfiguration" is registered for version "{api_version}"'
    span = READ_BY.get(version)
    last = span[1] if span is not None else None
    if version in _OLD_KNOWN and (span is None or (last is not None and kubeadm > last)):
        return (
            f'your configuration file uses an old API spec: "{api_version}" (kind: "ClusterConfiguration"). '
            f"Please use kubeadm {_OLD_KNOWN[version]} instead and run 'kubeadm config migrate --old-config "
            "old-config-file --new-config new-config-file', which will write the new, similar spec using a newer "
            "API version."
        )
    if version == "v1" and kubeadm >= EXPERIMENTAL_V1:
        if allow_experimental:
            return None
        return (f'experimental API spec: "{api_version}" (kind: "ClusterConfiguration") is not allowed. '
                "You can use the --allow-experimental-api flag if the command supports it.")  # fmt: skip
    if version not in READ_BY or kubeadm < READ_BY[version][0]:
        return f'no kind "ClusterConfiguration" is registered for version "{api_version}" in scheme'
    return None


def render(
    cc: Mapping[str, Any],
    kubeadm: KubeVersion,
    *,
    allow_experimental: bool = False,
    advertise_address: str = NODE_ADDRESS,
    bind_port: int = 6443,
    node_paths: frozenset[str] = frozenset(),
) -> Rendering:
    """The kube-apiserver static Pod kubeadm ``kubeadm`` writes for ``cc``, or its refusal.

    ``node_paths``: which of :data:`CA_EXTRA_PATHS` exist on the node (kubeadm mounts those).
    """
    out = Rendering(kubeadm)
    api_version = cc.get("apiVersion")
    refusal = read_error(api_version, kubeadm, allow_experimental=allow_experimental)
    if refusal is not None:
        out.errors.append(refusal)
        return out
    version = str(api_version).split("/", 1)[1]
    if version == "v1beta3" and kubeadm >= ARGS_AS_LIST:
        out.warnings.append(f'your configuration file uses a deprecated API spec: "{api_version}"')
    dec, d = _decode(cc, version, kubeadm)
    if d.type_error is not None:
        out.errors.append(d.type_error)
        return out
    out.strict += [f"strict decoding error: {u}" for u in d.unknown]
    # ValidateClusterConfiguration (validation.go), the parts about what is rendered.
    certificates_dir = dec.certificates_dir or DEFAULT_CERTIFICATES_DIR
    if not certificates_dir.startswith("/"):
        out.errors.append(f'certificatesDir: Invalid value: "{certificates_dir}": path is not absolute')
    for i, a in enumerate(dec.args):
        if not a.name:
            out.errors.append(f'apiServer.extraArgs: Invalid value: "index {i}": argument has no name')
        if a.merge and a.merge not in ("append", "prepend"):
            out.errors.append(f'apiServer.extraArgs: Invalid value: "index {i}": argument has an invalid merge method')
    if out.errors:
        return out
    base = _base_args(dec, certificates_dir, advertise_address, bind_port, kubeadm)
    out.command = ["kube-apiserver", *arguments_to_command(base, dec.args, kubeadm)]
    out.volumes, out.mounts = _volumes(dec, certificates_dir, node_paths)
    return out


def _join(directory: str, name: str) -> str:
    return posixpath.normpath(posixpath.join(directory, name))


def _base_args(dec: _Decoded, certs: str, address: str, port: int, kubeadm: KubeVersion) -> list[_Arg]:
    """getAPIServerCommand's defaultArguments (manifests.go)."""
    subnet = dec.service_subnet or "10.96.0.0/12"
    domain = dec.dns_domain or "cluster.local"
    base = [
        _Arg("advertise-address", address),
        _Arg("enable-admission-plugins", "NodeRestriction"),
        _Arg("service-cluster-ip-range", subnet),
        _Arg("service-account-key-file", _join(certs, "sa.pub")),
        _Arg("service-account-signing-key-file", _join(certs, "sa.key")),
        _Arg("service-account-issuer", f"https://kubernetes.default.svc.{domain}"),
        _Arg("client-ca-file", _join(certs, "ca.crt")),
        _Arg("tls-cert-file", _join(certs, "apiserver.crt")),
        _Arg("tls-private-key-file", _join(certs, "apiserver.key")),
        _Arg("kubelet-client-certificate", _join(certs, "apiserver-kubelet-client.crt")),
        _Arg("kubelet-client-key", _join(certs, "apiserver-kubelet-client.key")),
        _Arg("enable-bootstrap-token-auth", "true"),
        _Arg("secure-port", str(port)),
        _Arg("allow-privileged", "true"),
        _Arg("kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname"),
        _Arg("requestheader-username-headers", "X-Remote-User"),
        _Arg("requestheader-group-headers", "X-Remote-Group"),
        _Arg("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        _Arg("requestheader-client-ca-file", _join(certs, "front-proxy-ca.crt")),
        _Arg("requestheader-allowed-names", "front-proxy-client"),
        _Arg("proxy-client-cert-file", _join(certs, "front-proxy-client.crt")),
        _Arg("proxy-client-key-file", _join(certs, "front-proxy-client.key")),
    ]
    if dec.external_etcd is not None:
        endpoints, ca, cert, key = dec.external_etcd
        base.append(_Arg("etcd-servers", ",".join(endpoints)))
        if ca:
            base.append(_Arg("etcd-cafile", ca))
        if cert and key:
            base += [_Arg("etcd-certfile", cert), _Arg("etcd-keyfile", key)]
    else:
        host = "[::1]" if _is_ipv6(address) else "127.0.0.1"
        servers = f"https://{host}:2379"
        override = next((a for a in reversed(dec.local_etcd_args) if a.name == "advertise-client-urls"), None)
        if override is not None:
            servers = _merge(servers, override) if kubeadm >= MERGE_METHOD else override.value
        base += [
            _Arg("etcd-servers", servers),
            _Arg("etcd-cafile", _join(certs, "etcd/ca.crt")),
            _Arg("etcd-certfile", _join(certs, "apiserver-etcd-client.crt")),
            _Arg("etcd-keyfile", _join(certs, "apiserver-etcd-client.key")),
        ]
    if not any(a.name == "authorization-config" for a in dec.args):
        authz = next((a for a in reversed(dec.args) if a.name == "authorization-mode"), None)
        base.append(_Arg("authorization-mode", _authz_modes(authz)))
    return base


def _is_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def _authz_modes(arg: _Arg | None) -> str:
    """getAuthzModes: the user's valid modes, or Node,RBAC (also when a merge method is set)."""
    default = "Node,RBAC"
    if arg is None or not arg.value:
        return default
    modes = [m for m in arg.value.split(",") if m in _AUTHZ_MODES]
    if not modes or arg.merge:
        return default
    return ",".join(modes)


def _merge(base: str, arg: _Arg) -> str:
    """MergeArgWithBase (apis/kubeadm/argument.go)."""
    if arg.merge == "append":
        return base + arg.value
    if arg.merge == "prepend":
        return arg.value + base
    return arg.value


def arguments_to_command(base: Sequence[_Arg], overrides: Sequence[_Arg], kubeadm: KubeVersion) -> list[str]:
    """ArgumentsToCommand of kubeadm ``kubeadm`` (see the module docstring for its history)."""
    base = sorted(base, key=lambda a: (a.name, a.value))
    if kubeadm >= MERGE_METHOD:
        last = {a.name: a for a in overrides}
        command = []
        for a in base:
            ov = last.get(a.name)
            if ov is not None and not ov.merge:
                continue
            value = _merge(a.value, ov) if ov is not None else a.value
            command.append(f"--{a.name}={value}")
        return command + [f"--{a.name}={a.value}" for a in overrides if not a.merge]
    names = {a.name for a in overrides}
    kept = [a for a in base if a.name not in names]
    if kubeadm >= OVERRIDES_IN_ORDER:
        args = [*kept, *overrides]
    elif kubeadm >= ARGS_AS_LIST:
        args = sorted([*overrides, *kept], key=lambda a: (a.name, a.value))
    else:  # a map: one value per name, the last one written
        merged = {a.name: a.value for a in [*kept, *overrides]}
        args = [_Arg(k, merged[k]) for k in sorted(merged)]
    return [f"--{a.name}={a.value}" for a in args]


def _volumes(dec: _Decoded, certs: str, node_paths: frozenset[str]) -> tuple[list[Volume], list[VolumeMount]]:
    """getHostPathVolumesForTheControlPlane for kube-apiserver: defaults, then extraVolumes by name."""
    volumes: dict[str, Volume] = {}
    mounts: dict[str, VolumeMount] = {}

    def add(name: str, host: str, path: str, read_only: bool, kind: str) -> None:
        volumes[name] = Volume(name, host, kind)
        mounts[name] = VolumeMount(name, path, read_only)

    add("k8s-certs", certs, certs, True, "DirectoryOrCreate")
    add("ca-certs", "/etc/ssl/certs", "/etc/ssl/certs", True, "DirectoryOrCreate")
    if dec.external_etcd is not None:
        for i, d in enumerate(_etcd_cert_dirs(dec.external_etcd[1:], certs)):
            add(f"etcd-certs-{i}", d, d, True, "DirectoryOrCreate")
    for p in CA_EXTRA_PATHS:
        if p in node_paths:
            add(p.replace("/", "-")[1:], p, p, True, "DirectoryOrCreate")
    for name, host, path, read_only, kind in dec.volumes:
        add(name, host, path, read_only, kind)
    return [volumes[k] for k in sorted(volumes)], [mounts[k] for k in sorted(mounts)]


def _etcd_cert_dirs(files: Sequence[str], certs: str) -> list[str]:
    """getEtcdCertVolumes: the directories of an external etcd's certificates not mounted already."""
    dirs: set[str] = set()
    for f in files:
        d = posixpath.dirname(f) or "."
        if (
            d == "."
            or d.startswith("/etc/ssl/certs")
            or d.startswith(certs)
            or any(d.startswith(p) for p in CA_EXTRA_PATHS)
        ):
            continue
        exists = False
        for e in sorted(dirs):
            if e.startswith(d):
                dirs.discard(e)
            elif d.startswith(e):
                exists = True
        if not exists:
            dirs.add(d)
    return sorted(dirs)


def describe(kubeadm: KubeVersion) -> str:
    return f"kubeadm {format_version(kubeadm)}"
