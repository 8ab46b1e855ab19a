#!/usr/bin/env python3
"""Write ``webhook/data/builtin-api-v1.37.json``: Kubernetes' built-in API groups, resources and subresources.

The table is not typed by hand.  It is read from upstream's discovery documents,
``api/discovery/api__v1.json`` and ``api/discovery/apis__<group>__<version>.json`` of
kubernetes/kubernetes at the release tag: ``hack/update-openapi-spec.sh`` records them from a
kube-apiserver started with every built-in API group and version enabled, so they list every
resource and subresource (``pods/exec``) that release serves.  The Go module ``k8s.io/kubernetes``
carries that folder, so the source is the Go module cache (``go mod download
k8s.io/kubernetes@v1.37.2``), or any checkout of the tag given with ``--discovery DIR``.

The output records where it came from: the module version, each file read and its SHA-256.
``auditwarden``'s "rule can never match" warnings (``webhook/core/nevermatch.py``) read it.

Usage: ``python scripts/gen_builtin_api.py`` writes the file; ``--check`` writes nothing and exits
1 when the checked-in file differs from what the source gives (``tests/unit/test_never_matches.py``
runs that when the module is in the cache).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODULE = "k8s.io/kubernetes"
VERSION = "v1.37.2"
OUTPUT = REPO / "webhook" / "data" / "builtin-api-v1.37.json"


def module_cache() -> Path:
    env = os.environ.get("GOMODCACHE")
    if env:
        return Path(env)
    try:
        out = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out = ""
    return Path(out) if out else Path.home() / "go" / "pkg" / "mod"


def default_discovery() -> Path:
    return module_cache() / f"{MODULE}@{VERSION}" / "api" / "discovery"


def _group_of(group_version: str) -> str:
    return group_version.rsplit("/", 1)[0] if "/" in group_version else ""


def build(discovery: Path) -> dict[str, Any]:
    """The table: group -> resource -> sorted subresources, with provenance."""
    files = sorted(p for p in discovery.glob("*.json") if p.name == "api__v1.json" or p.name.count("__") == 2)
    if not files:
        raise SystemExit(f"no discovery documents under {discovery}")
    groups: dict[str, dict[str, set[str]]] = {}
    read: dict[str, str] = {}
    for path in files:
        raw = path.read_bytes()
        doc = json.loads(raw)
        if doc.get("kind") != "APIResourceList":
            continue
        read[f"api/discovery/{path.name}"] = hashlib.sha256(raw).hexdigest()
        table = groups.setdefault(_group_of(doc["groupVersion"]), {})
        for resource in doc.get("resources") or []:
            name, _, sub = resource["name"].partition("/")
            subs = table.setdefault(name, set())
            if sub:
                subs.add(sub)
    return {
        "provenance": {
            "source": f"{MODULE}@{VERSION} (Go module; the kubernetes/kubernetes tag {VERSION}), api/discovery/: "
            "the discovery documents hack/update-openapi-spec.sh records from a kube-apiserver serving every "
            "built-in group and version",
            "generator": "scripts/gen_builtin_api.py",
            "files": read,
        },
        "kubernetesVersion": VERSION.lstrip("v").rsplit(".", 1)[0],
        "groups": {
            group: {name: sorted(subs) for name, subs in sorted(table.items())}
            for group, table in sorted(groups.items())
        },
    }


def render(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--discovery", type=Path, default=None, help="api/discovery folder of the release")
    parser.add_argument("--check", action="store_true", help="exit 1 when the checked-in file is stale")
    args = parser.parse_args(argv)
    text = render(build(args.discovery or default_discovery()))
    if args.check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(REPO)} is stale: run python scripts/gen_builtin_api.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
