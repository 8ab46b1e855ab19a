"""The flag tables are kube-apiserver's own, one per release, and say where they come from.

Each ``webhook/data/kube-apiserver-flags-v1.MINOR.json`` is the dump of the flag oracle built
against one ``k8s.io/kubernetes`` release (scripts/gen_flag_tables.py).  Here, without Go: each
table's provenance must be the module version and go.sum checksum its oracle is built from
(tests/e2e/harness/go.mod for the newest, versions/v1.MINOR.mod + .sum for the older ones), so a
bumped pin with an old table fails.  tests/e2e/test_flag_tables.py compares the tables with the
oracles' dumps themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webhook.core import goflags
from webhook.core.versions import NEWEST, RETENTION_DEFAULTS

HARNESS = Path(__file__).resolve().parents[1] / "e2e" / "harness"


def pinned() -> dict[tuple[int, int], tuple[str, str]]:
    """release -> (k8s.io/kubernetes version, h1: checksum) of every oracle's go.mod/go.sum."""
    out = {}
    for modfile in [HARNESS / "go.mod", *sorted((HARNESS / "versions").glob("v1.*.mod"))]:
        m = re.search(r"^\s*k8s\.io/kubernetes (v1\.(\d+)\.\S+)", modfile.read_text(), re.MULTILINE)
        assert m is not None, modfile
        sumfile = modfile.with_name("go.sum") if modfile.name == "go.mod" else modfile.with_suffix(".sum")
        h = re.search(rf"^k8s\.io/kubernetes {re.escape(m.group(1))} (h1:\S+)$", sumfile.read_text(), re.MULTILINE)
        assert h is not None, sumfile
        out[(1, int(m.group(2)))] = (m.group(1), h.group(1))
    return out


def test_there_is_a_table_for_each_release_an_oracle_is_built_for() -> None:
    assert set(goflags.known_versions()) == set(pinned())
    assert NEWEST in goflags.known_versions()
    assert len(goflags.known_versions()) >= 2


@pytest.mark.parametrize("version", goflags.known_versions(), ids=lambda v: f"v{v[0]}.{v[1]}")
def test_each_table_records_the_module_its_oracle_is_built_from(version: tuple[int, int]) -> None:
    source = goflags.provenance(version)
    assert source["module"] == "k8s.io/kubernetes"
    assert (source["version"], source["sum"]) == pinned()[version]
    assert source["version"].startswith(f"v{version[0]}.{version[1]}.")


@pytest.mark.parametrize("version", goflags.known_versions(), ids=lambda v: f"v{v[0]}.{v[1]}")
def test_each_table_is_a_whole_flag_set(version: tuple[int, int]) -> None:
    table = goflags.flag_table(version)
    assert len(table) > 150
    assert table["audit-policy-file"]["type"] == "string"
    assert table["audit-log-batch-throttle-qps"]["type"] == "float32"


def test_a_target_without_a_table_uses_the_nearest_older_one_else_the_oldest() -> None:
    known = goflags.known_versions()
    oldest = known[0]
    assert goflags.table_version((1, 19)) == oldest
    assert goflags.table_version((oldest[0], oldest[1] - 1)) == oldest
    assert goflags.table_version(NEWEST) == NEWEST
    assert goflags.table_version((1, NEWEST[1] + 1)) == NEWEST
    for version in known:
        assert goflags.table_version(version) == version


def test_the_tables_show_the_retention_defaults_change_where_auditwarden_places_it() -> None:
    """versions.RETENTION_DEFAULTS (from the history of options/audit.go) agrees with the flag sets."""
    for version in goflags.known_versions():
        table = goflags.flag_table(version)
        new = version >= RETENTION_DEFAULTS
        assert table["audit-log-maxage"]["default"] == ("366" if new else "0")
        assert table["audit-log-maxbackup"]["default"] == ("100" if new else "0")
        assert table["audit-log-maxsize"]["default"] == ("100" if new else "0")
