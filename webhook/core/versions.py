"""Kubernetes releases whose audit behaviour auditwarden emulates.

Behaviour that changed between releases follows a *target version* (CLI
``--kubernetes-version``, configuration ``kubernetesVersion``).  The landmarks below come
from the history of kube-apiserver's source (``git log`` of ``staging/src/k8s.io/apiserver`` in
kubernetes/kubernetes, notably ``pkg/server/options/audit.go`` and ``pkg/audit/policy/``).
"""

from __future__ import annotations

import re

KubeVersion = tuple[int, int]

NEWEST: KubeVersion = (1, 37)
"""The newest release the project knows, and the default target."""

OLDEST: KubeVersion = (1, 19)
"""Older targets are refused: auditwarden does not model their audit code."""

# audit.k8s.io/v1alpha1 and v1beta1 removed from the policy reader and scheme (871a4b72).
V1BETA1_REMOVED: KubeVersion = (1, 24)
# v1alpha1/v1beta1 deprecated: loaded with a warning (146083d0).
V1BETA1_DEPRECATED: KubeVersion = (1, 21)
# Policy rules may name group "*" (Kubernetes commit ea3bfd9e).
GROUP_WILDCARD: KubeVersion = (1, 36)
# --audit-log-maxage/maxbackup/maxsize default to 366/100/100 and maxsize=0 disables
# rotation (Kubernetes commit b753a2af).
RETENTION_DEFAULTS: KubeVersion = (1, 36)

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$")


def parse_version(text: str) -> KubeVersion:
    """Parse ``1.35``, ``v1.35.2`` or ``1.35.0-rc.1``; raise ValueError otherwise."""
    m = _VERSION_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a Kubernetes version: {text!r} (expected MAJOR.MINOR, e.g. 1.35)")
    version = (int(m.group(1)), int(m.group(2)))
    if version < OLDEST or version > NEWEST:
        raise ValueError(
            f"Kubernetes {version[0]}.{version[1]} is outside the releases auditwarden models "
            f"({OLDEST[0]}.{OLDEST[1]} to {NEWEST[0]}.{NEWEST[1]})"
        )
    return version


def format_version(version: KubeVersion) -> str:
    return f"{version[0]}.{version[1]}"
