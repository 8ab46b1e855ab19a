"""Where the test suite finds its data (``tests/data/``) and the external tools that scripts/test.sh
installs or builds.

Everything built from Go (the oracle, kube-apiserver, the etcd runner, helm, kube-bench)
lands in ``$AUDITWARDEN_TOOLS/bin`` (default ``~/.cache/auditwarden/tools/bin``), so that
repeated runs on the same machine reuse the builds.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The upstream conformance data, the category spec and the real-world corpus (see tests/data/README.md).
DATA = REPO / "tests" / "data"


def tools_dir() -> Path:
    return Path(os.environ.get("AUDITWARDEN_TOOLS", Path.home() / ".cache" / "auditwarden" / "tools"))


def tool(name: str) -> Path | None:
    """Path of an installed tool: the tools dir first, then PATH; None when absent."""
    candidate = tools_dir() / "bin" / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None
