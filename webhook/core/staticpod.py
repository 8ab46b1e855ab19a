"""The kubelet's validation of a static Pod, for the checks that can stop a kube-apiserver.

The kubelet reads a static-pod manifest with ``tryDecodeSinglePod``
(``pkg/kubelet/config/common.go``) and refuses the Pod when
``validation.ValidatePodCreate`` (``pkg/apis/core/validation/validation.go``) returns any
error: ``invalid pod: [ERR ERR ...]``.  The Pod then never runs — for kube-apiserver that is
no apiserver at all.  Ported here, with upstream's field paths and messages
(``k8s.io/apimachinery/pkg/util/validation/field/errors.go``):

* ``ValidateVolumes``: a volume name is required, must be a DNS-1123 label and unique; a
  ``hostPath`` needs a ``path`` without ``..`` elements and a ``type`` among the supported
  ones.  A volume with any of these errors is not known to the containers afterwards.
* ``ValidateVolumeMounts`` (per container): a mount's ``name`` must name a known volume, its
  ``mountPath`` is required and unique within the container (compared as written: ``/a`` and
  ``/a/`` differ).

Other checks of ``ValidatePodCreate`` are not ported (kubeadm never writes what they refuse).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# validation.go supportedHostPathTypes, in sets.List order (sorted).
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL_FMT}(\.{_DNS1123_LABEL_FMT})*$")
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    f"start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    f"'{_DNS1123_LABEL_FMT}')"
)


def _quote(value: str) -> str:
    """Go's ``%q`` of a string, as far as JSON's escaping agrees with it (printable text)."""
    return json.dumps(value, ensure_ascii=False)


def _invalid(path: str, value: str, detail: str) -> str:
    return f"{path}: Invalid value: {_quote(value)}: {detail}"


def _dns1123_label(value: str) -> list[str]:
    """``validation.IsDNS1123Label``."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        errs.append("must not contain dots" if _DNS1123_SUBDOMAIN.match(value) else _DNS1123_LABEL_MSG)
    return errs


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def kubelet_errors(pod: Mapping[str, Any]) -> list[str]:
    """The errors of ``ValidatePodCreate`` that this module ports, in upstream's order."""
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        return []
    errors: list[str] = []
    known: set[str] = set()
    volumes = spec.get("volumes")
    for i, vol in enumerate(volumes if isinstance(volumes, list) else []):
        if not isinstance(vol, Mapping):
            continue
        path = f"spec.volumes[{i}]"
        name = _str(vol.get("name"))
        el: list[str] = []
        host = vol.get("hostPath")
        if isinstance(host, Mapping):
            host_path = _str(host.get("path"))
            if not host_path:
                el.append(f"{path}.hostPath.path: Required value")
            else:
                if ".." in host_path.split("/"):
                    el.append(_invalid(f"{path}.hostPath.path", host_path, "must not contain '..'"))
                kind = host.get("type")
                if isinstance(kind, str) and kind not in HOST_PATH_TYPES:
                    supported = ", ".join(_quote(t) for t in HOST_PATH_TYPES)
                    el.append(f"{path}.hostPath.type: Unsupported value: {_quote(kind)}: supported values: {supported}")
        if not name:
            el.append(f"{path}.name: Required value")
        else:
            el += [_invalid(f"{path}.name", name, msg) for msg in _dns1123_label(name)]
        if name in known:
            el.append(f"{path}.name: Duplicate value: {_quote(name)}")
        if el:
            errors += el
        else:
            known.add(name)
    containers = spec.get("containers")
    for j, c in enumerate(containers if isinstance(containers, list) else []):
        if not isinstance(c, Mapping):
            continue
        mount_paths: set[str] = set()
        mounts = c.get("volumeMounts")
        for i, m in enumerate(mounts if isinstance(mounts, list) else []):
            if not isinstance(m, Mapping):
                continue
            path = f"spec.containers[{j}].volumeMounts[{i}]"
            name = _str(m.get("name"))
            mount_path = _str(m.get("mountPath"))
            if not name:
                errors.append(f"{path}.name: Required value")
            if name not in known:
                errors.append(f"{path}.name: Not found: {_quote(name)}")
            if not mount_path:
                errors.append(f"{path}.mountPath: Required value")
            if mount_path in mount_paths:
                errors.append(_invalid(f"{path}.mountPath", mount_path, "must be unique"))
            mount_paths.add(mount_path)
    return errors


def kubelet_refusal(errors: list[str]) -> str:
    """The kubelet's error for a refused static Pod (``fmt.Errorf("invalid pod: %v", errs)``)."""
    return f"invalid pod: [{' '.join(errors)}]"
