"""Session-wide throw-away cluster for the end-to-end tests under tests/e2e/.

Every test collected here is marked ``e2e``. The binaries come from ``tests/e2e/build.sh``;
when they are missing the session fails with the command to build them, unless
AUDITWARDEN_ALLOW_MISSING_TOOLS=1 (then the e2e tests are skipped).
Set AUDITWARDEN_KEEP_CLUSTER=1 to keep the cluster's temp dir (it is also kept when a test failed).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.cluster import Cluster
from tests.support.tools import tool, tools_dir

if TYPE_CHECKING:
    from tests.e2e.webhook_server import Deployment, DeployWebhook

HERE = Path(__file__).resolve().parent
BUILD_CMD = f"{HERE / 'build.sh'}"
REQUIRED_TOOLS = ("kube-apiserver", "etcd-runner")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def require_tools(*names: str) -> dict[str, Path]:
    """Paths of the named tools; fail (or skip with AUDITWARDEN_ALLOW_MISSING_TOOLS=1) when absent."""
    found = {n: tool(n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        msg = (
            f"e2e tools missing: {', '.join(missing)} (looked in {tools_dir() / 'bin'} and PATH); "
            f"build them with: {BUILD_CMD}"
        )
        if os.environ.get("AUDITWARDEN_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return {n: p for n, p in found.items() if p is not None}


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    require_tools(*REQUIRED_TOOLS)
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        if request.session.testsfailed:
            c.keep_tmpdir = True
        c.stop()
        if c.keep_tmpdir:
            print(f"\ne2e cluster files kept in {c.tmpdir}")


@pytest.fixture(scope="module")
def deploy_webhook(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployWebhook]:
    """A factory: ``deploy_webhook("modes", config)`` starts ``auditwarden serve`` with ``config`` and
    installs the chart as release ``auditwarden-e2e-modes`` in namespace ``aw-e2e-modes``; it is
    torn down when the module that asked for it is done."""
    from tests.e2e import policies as P
    from tests.e2e.webhook_server import deployed_webhook  # imports this module: not at the top

    with contextlib.ExitStack() as stack:

        def deploy(name: str, config: Mapping[str, Any]) -> Deployment:
            workdir = tmp_path_factory.mktemp(f"webhook-{name}")
            deployment = deployed_webhook(
                cluster, workdir, release=f"auditwarden-e2e-{name}", namespace=f"aw-e2e-{name}", config=config,
                probe_policy=P.COVERS_2,
            )  # fmt: skip
            return stack.enter_context(deployment)

        yield deploy
