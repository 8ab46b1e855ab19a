"""Each committed flag table is exactly what its release's flag oracle dumps.

The oracles (tests/e2e/harness/cmd/flag-oracle, one per release, built by tests/e2e/build.sh
flag-oracle) build kube-apiserver's FlagSet from that release's options code; a table that
differs from its oracle's ``dump`` — a new release pinned, the oracle changed, a table edited by
hand — fails here.  Regenerate with ``python scripts/gen_flag_tables.py``.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.tools import tool
from webhook.core import goflags

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("version", goflags.known_versions(), ids=lambda v: f"v{v[0]}.{v[1]}")
def test_the_table_is_the_oracles_dump(version: tuple[int, int]) -> None:
    name = f"flag-oracle-v{version[0]}.{version[1]}"
    binary = tool(name)
    if binary is None:
        pytest.fail(f"{name} is not built: run `bash tests/e2e/build.sh flag-oracle` (scripts/test.sh does)")
    out = subprocess.run([str(binary), "dump"], capture_output=True, text=True, check=True, timeout=120)
    dump = json.loads(out.stdout)
    assert dump["kubernetes"] == goflags.provenance(version), "stale table: run scripts/gen_flag_tables.py"
    assert {f["name"]: f for f in dump["flags"]} == goflags.flag_table(version), (
        "stale table: run scripts/gen_flag_tables.py"
    )
