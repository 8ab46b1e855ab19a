#!/usr/bin/env python3
"""Write ``webhook/data/kube-apiserver-flags-v1.MINOR.json``: every flag of each kube-apiserver
release auditwarden judges command lines of.

The tables are not typed by hand.  Each one is the ``dump`` of the flag oracle of that release
(``tests/e2e/harness/cmd/flag-oracle``, built by ``tests/e2e/build.sh flag-oracle`` against the
``k8s.io/kubernetes`` module of ``tests/e2e/harness/go.mod`` and of each alternate
``tests/e2e/harness/versions/v1.MINOR.mod``): kube-apiserver's own ``FlagSet``, built as
``NewAPIServerCommand`` builds it.  The dump records its provenance: the module version and its
go.sum ``h1:`` checksum, read from the oracle binary's build info.

Usage: ``python scripts/gen_flag_tables.py`` (re)writes every table from the built oracles;
``--check`` writes nothing and exits 1 when a checked-in table differs from its oracle's dump
(``tests/e2e/test_flag_tables.py`` asserts the same).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.tools import tool  # noqa: E402

HARNESS = REPO / "tests" / "e2e" / "harness"
DATA = REPO / "webhook" / "data"


def releases() -> dict[str, str]:
    """``v1.MINOR`` -> the ``k8s.io/kubernetes`` version its oracle is built with."""
    out: dict[str, str] = {}
    for modfile in [HARNESS / "go.mod", *sorted((HARNESS / "versions").glob("v1.*.mod"))]:
        m = re.search(r"^\s*k8s\.io/kubernetes (v1\.(\d+)\.\d+\S*)", modfile.read_text(), re.MULTILINE)
        if m is None:
            raise SystemExit(f"{modfile}: no k8s.io/kubernetes requirement")
        out[f"v1.{m.group(2)}"] = m.group(1)
    return out


def oracle_dump(minor: str) -> dict[str, Any]:
    binary = tool(f"flag-oracle-{minor}")
    if binary is None:
        raise SystemExit(f"flag-oracle-{minor} is not built: run `bash tests/e2e/build.sh flag-oracle`")
    out = subprocess.run([str(binary), "dump"], capture_output=True, text=True, check=True, timeout=120)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def table_path(minor: str) -> Path:
    return DATA / f"kube-apiserver-flags-{minor}.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a table is stale")
    args = parser.parse_args()
    stale = []
    for minor, version in releases().items():
        dump = oracle_dump(minor)
        if dump["kubernetes"]["version"] != version:
            raise SystemExit(f"flag-oracle-{minor} was built with {dump['kubernetes']['version']}, not {version}: "
                             "rebuild it (tests/e2e/build.sh flag-oracle)")  # fmt: skip
        path = table_path(minor)
        if args.check:
            if not path.is_file() or json.loads(path.read_text(encoding="utf-8")) != dump:
                stale.append(path.name)
            continue
        path.write_text(json.dumps(dump, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{path.relative_to(REPO)}: {len(dump['flags'])} flags of k8s.io/kubernetes {version}")
    if stale:
        print(f"stale: {', '.join(stale)} (run scripts/gen_flag_tables.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
