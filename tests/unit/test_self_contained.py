"""The repository stands on its own: a fresh clone needs no folder beside it.

The test data once lived in a team folder next to the checkout; it is now in ``tests/data/``
(see tests/data/README.md).  No tracked file may point back at that folder, or a clone made
anywhere else breaks again.  The needles are built from parts so this file does not match itself.
"""

from __future__ import annotations

import subprocess

from tests.support.tools import DATA, REPO

_TEAM = "sha" + "red"
NEEDLES = (f"../{_TEAM}", f"{_TEAM}/spec", f"{_TEAM}/corpus", f"{_TEAM}/conformance")


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True, timeout=60).stdout
    return [p for p in out.decode().split("\0") if p]


def test_no_tracked_file_points_at_a_folder_beside_the_checkout() -> None:
    hits: list[str] = []
    files = tracked_files()
    assert files, "git ls-files listed nothing"
    for rel in files:
        path = REPO / rel
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            hits.extend(f"{rel}:{lineno}: {needle}" for needle in NEEDLES if needle in line)
    assert not hits, "tracked files refer to data outside the repository:\n" + "\n".join(hits)


def test_the_data_the_tests_read_is_in_the_repository() -> None:
    for rel in (
        "README.md",
        "conformance/checker-conformance.yaml",
        "spec/categories.yaml",
        "corpus/INDEX.yaml",
        "corpus/EXPECTED-categories.yaml",
    ):
        assert (DATA / rel).is_file(), rel
    assert DATA.resolve().is_relative_to(REPO.resolve())
