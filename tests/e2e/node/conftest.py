"""The ``node`` tests: a real node (containerd + kubelet) beside a control plane of its own.

Every test collected here is marked ``node`` as well as ``e2e`` (``scripts/test.sh -m node``
runs exactly them).  The session's :class:`~tests.e2e.node.node.Node` starts only when one of
them runs.  It needs root (network namespace, mounts, cgroups) and what
``tests/e2e/node/build.sh`` builds; without them the session fails with the command to run,
unless AUDITWARDEN_ALLOW_MISSING_TOOLS=1 (then these tests are skipped).
AUDITWARDEN_KEEP_CLUSTER=1 keeps the node's directory (logs, configs) after the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import REQUIRED_TOOLS, require_tools
from tests.e2e.node.node import BUILD_CMD, Node, host_state, images_dir

HERE = Path(__file__).resolve().parent
NODE_TOOLS = ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "containerd",
              "containerd-shim-runc-v2", "ctr")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.node)


def _unavailable(msg: str) -> None:
    if os.environ.get("AUDITWARDEN_ALLOW_MISSING_TOOLS") == "1":
        pytest.skip(msg)
    pytest.fail(msg, pytrace=False)


@pytest.fixture(scope="session")
def node(request: pytest.FixtureRequest) -> Iterator[Node]:
    if os.geteuid() != 0:
        _unavailable("the node tests need root (network namespace, mounts, cgroups)")
    require_tools(*REQUIRED_TOOLS, "helm", *NODE_TOOLS)
    for archive in ("pause.tar", "standin.tar", "auditwarden.tar"):
        if not (images_dir() / archive).is_file():
            _unavailable(f"image {images_dir() / archive} missing; build it with {BUILD_CMD}")
    before = host_state()
    n = Node(keep_tmpdir=os.environ.get("AUDITWARDEN_KEEP_CLUSTER") == "1")
    n.start()
    try:
        yield n
    finally:
        if request.session.testsfailed:
            n.keep_tmpdir = True
        n.stop()
        if n.keep_tmpdir:
            print(f"\nnode files kept in {n.dir}")
    # what the run changed on the host and did not undo (a second run must start clean)
    after = host_state()
    left = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not left, f"the node run left the host changed: {left}"
    assert not n.leftover_pids(), f"processes of the node run still alive: {n.leftover_pids()}"
