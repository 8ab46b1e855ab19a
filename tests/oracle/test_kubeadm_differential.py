"""Differential test: a ClusterConfiguration is read and rendered as the real kubeadm does it.

Hypothesis writes ClusterConfigurations by hand — API versions (``v1beta2``, ``v1beta3``,
``v1beta4``, the experimental ``v1``), ``extraArgs`` with duplicates in every order, empty and
missing values, values of the wrong type (``30``, ``0x1e``, ``yes``, ``~``, a map), names that are
kubeadm's own flags (``authorization-mode``, ``secure-port``), ``mergeMethod``, the wrong shape
(a map in v1beta4, a list in v1beta3), unknown fields; ``extraVolumes`` whose names collide with
each other and with kubeadm's defaults (``k8s-certs``, ``ca-certs``), shared mount paths,
``readOnly`` and ``pathType`` (also ``Bogus``); ``certificatesDir`` and ``networking``.  Each is
given to every built kubeadm release (tests/support/kubeadm_oracle.py: v1.37.2 and the older
v1.36.3 and v1.34.0) as ``kubeadm config validate`` and ``kubeadm init phase control-plane
apiserver --rootfs``; auditwarden (``webhook.core.kubeadm.render`` on the text read by its
go-yaml-compatible loader) must agree on both validities and, where kubeadm writes the static
Pod, on its command line, volumes and volume mounts — zero disagreements.

CI runs ``AUDITWARDEN_KUBEADM_DIFF_CASES`` (default 500) configurations, each against every
release, under the ``e2e`` marker; a 20-case sample runs in the fast loop.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import kubeadm_oracle
from tests.support.kubeadm_examples import EXAMPLES, Example
from webhook.core import kubeadm, staticpod, yamlsafe
from webhook.core.versions import parse_version

CASES = int(os.environ.get("AUDITWARDEN_KUBEADM_DIFF_CASES", "500"))
FAST_CASES = min(CASES, 20)
RELEASES = (kubeadm_oracle.NEWEST_RELEASE, *kubeadm_oracle.OLD_RELEASES)

ARG_NAMES = ["audit-log-maxage", "audit-log-maxsize", "audit-policy-file", "audit-log-path", "authorization-mode",
             "secure-port", "etcd-servers", ""]  # fmt: skip
# YAML scalars as written: quoted strings, and plain scalars go-yaml reads as numbers, booleans, null.
STRING_VALUES = ['"30"', '"0"', '"7"', '"100"', '""', '"/etc/kubernetes/audit/policy.yaml"', '"/var/log/audit.log"',
                 '"Node,RBAC"', '"Webhook,,RBAC"', '"x"', "'0x1e'", "abc"]  # fmt: skip
WRONG_VALUES = ["30", "0x1e", "yes", "1.5", "{}", "[a]"]
NULL_VALUES = ["~", ""]
VOLUME_NAMES = ["audit-log", "audit-policy", "k8s-certs", "ca-certs", "etc-pki", "Audit_Log"]
PATHS = ["/var/log/kubernetes/audit", "/etc/kubernetes/audit", "/etc/kubernetes/pki", "/etc/ssl/certs", "/srv/a",
         "/var/log/kubernetes/audit/", "", "/srv/../etc"]  # fmt: skip
PATH_TYPES = ["", "DirectoryOrCreate", "File", "Bogus", "FileOrCreate"]


@st.composite
def scalar(draw: st.DrawFn, *, wrong: float = 0.1) -> str:
    roll = draw(st.floats(0, 1))
    if roll < wrong:
        return draw(st.sampled_from(WRONG_VALUES))
    if roll < wrong + 0.05:
        return draw(st.sampled_from(NULL_VALUES))
    return draw(st.sampled_from(STRING_VALUES))


@st.composite
def extra_args(draw: st.DrawFn, version: str) -> list[str]:
    """YAML lines (indented under ``apiServer:``) for extraArgs."""
    as_map = version in ("v1beta2", "v1beta3")
    if draw(st.integers(0, 19)) == 0:
        as_map = not as_map  # the other API's shape
    names = draw(st.lists(st.sampled_from(ARG_NAMES[:-1] if as_map else ARG_NAMES), max_size=6, unique=as_map))
    if not names:
        return draw(st.sampled_from([[], ["  extraArgs: []"], ["  extraArgs: {}"], ["  extraArgs: ~"]]))
    lines = ["  extraArgs:"]
    for name in names:
        value = draw(scalar())
        if as_map:
            lines.append(f"    {name}: {value}")
            continue
        lines.append(f'  - name: "{name}"')
        if draw(st.integers(0, 9)) > 0:
            lines.append(f"    value: {value}")
        if draw(st.integers(0, 3)) == 0:
            lines.append(f"    mergeMethod: {draw(st.sampled_from(['append', 'prepend', '', 'bogus']))}")
        if draw(st.integers(0, 29)) == 0:
            lines.append('    Value: "1"')  # unknown (field names are case-sensitive)
    return lines


@st.composite
def extra_volumes(draw: st.DrawFn) -> list[str]:
    count = draw(st.integers(0, 4))
    if count == 0:
        return []
    lines = ["  extraVolumes:"]
    for _ in range(count):
        lines.append(f"  - name: {draw(st.sampled_from(VOLUME_NAMES))}")
        lines.append(f'    hostPath: "{draw(st.sampled_from(PATHS))}"')
        lines.append(f'    mountPath: "{draw(st.sampled_from(PATHS))}"')
        read_only = draw(st.sampled_from([None, "true", "false", "yes", '"true"']))
        if read_only is not None:
            lines.append(f"    readOnly: {read_only}")
        path_type = draw(st.sampled_from([None, *PATH_TYPES]))
        if path_type is not None:
            lines.append(f'    pathType: "{path_type}"')
    return lines


@st.composite
def cluster_configurations(draw: st.DrawFn) -> tuple[str, bool]:
    """(the ClusterConfiguration's YAML text, whether validate gets --allow-experimental-api)."""
    version = draw(st.sampled_from(["v1beta4"] * 5 + ["v1beta3"] * 2 + ["v1", "v1beta2"]))
    lines = [f"apiVersion: kubeadm.k8s.io/{version}", "kind: ClusterConfiguration", 'kubernetesVersion: "v1.36.0"']
    certificates = draw(st.sampled_from([None, None, "/etc/kubernetes/pki", "/etc/k8s/pki/", "pki"]))
    if certificates is not None:
        lines.append(f'certificatesDir: "{certificates}"')
    if draw(st.booleans()):
        lines += ["networking:", f'  dnsDomain: "{draw(st.sampled_from(["cluster.local", "corp.example"]))}"',
                  f'  serviceSubnet: "{draw(st.sampled_from(["10.96.0.0/12", "10.128.0.0/16"]))}"']  # fmt: skip
    api = [*draw(extra_args(version)), *draw(extra_volumes())]
    if draw(st.integers(0, 29)) == 0:
        api.append("  extraArgz: []")  # unknown field
    if api:
        lines += ["apiServer:", *api]
    return "\n".join(lines) + "\n", draw(st.booleans())


_counter = itertools.count()


def _compare(
    text: str, experimental: bool, release: str, root: Path, kubelet: kubeadm_oracle.StaticPodOracle
) -> list[str]:
    """The disagreements between auditwarden and one kubeadm release on one configuration."""
    outcome = kubeadm_oracle.run(kubeadm_oracle.binary(release), text, root, experimental=experimental)
    cc = yamlsafe.load_first(text)
    version = parse_version(release)
    init = kubeadm.render(cc, version, advertise_address=kubeadm_oracle.ADVERTISE_ADDRESS)
    validated = kubeadm.render(cc, version, allow_experimental=experimental,
                               advertise_address=kubeadm_oracle.ADVERTISE_ADDRESS)  # fmt: skip
    problems = []
    ours_init = not init.errors
    ours_validate = not validated.errors and not validated.strict
    if ours_init != outcome.init_ok:
        problems.append(f"init: kubeadm ok={outcome.init_ok} ({outcome.init_output.strip()[-400:]}), "
                        f"auditwarden ok={ours_init} ({init.errors})")  # fmt: skip
    if ours_validate != outcome.validate_ok:
        said = outcome.validate_output.strip()[-400:]
        problems.append(f"config validate: kubeadm ok={outcome.validate_ok} ({said}), "
                        f"auditwarden ok={ours_validate} ({validated.errors + validated.strict})")  # fmt: skip
    if outcome.pod is not None and ours_init:
        command, volumes, mounts = kubeadm_oracle.pod_parts(outcome.pod)
        if command != init.command:
            problems.append(f"command: kubeadm {command}, auditwarden {init.command}")
        ours_volumes = [(v.name, v.host_path, v.type) for v in init.volumes]
        if volumes != ours_volumes:
            problems.append(f"volumes: kubeadm {volumes}, auditwarden {ours_volumes}")
        ours_mounts = [(m.name, m.mount_path, m.read_only) for m in init.mounts]
        if mounts != ours_mounts:
            problems.append(f"volumeMounts: kubeadm {mounts}, auditwarden {ours_mounts}")
        # the kubelet's verdict on the Pod kubeadm wrote, and its message
        runs, refusal = kubelet.check(outcome.manifest)
        errors = staticpod.kubelet_errors(outcome.pod)
        ours = staticpod.kubelet_refusal(errors) if errors else ""
        if (runs, refusal) != (not errors, ours):
            problems.append(f"kubelet: runs={runs} {refusal!r}, auditwarden runs={not errors} {ours!r}")
    return [f"kubeadm {release}: {p}" for p in problems]


def _check(case: tuple[str, bool], workdir: Path, kubelet: kubeadm_oracle.StaticPodOracle) -> None:
    text, experimental = case
    n = next(_counter)
    with ThreadPoolExecutor(max_workers=len(RELEASES)) as pool:
        results = pool.map(lambda r: _compare(text, experimental, r, workdir / f"{n}-{r}", kubelet), RELEASES)
        problems = [p for found in results for p in found]
    assert problems == [], "\n".join([json.dumps(text), *problems])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    for release in RELEASES:
        kubeadm_oracle.binary(release)  # fail early, with the build command, when one is missing
    yield tmp_path_factory.mktemp("kubeadm-oracle")


@pytest.fixture(scope="module")
def kubelet() -> Iterator[kubeadm_oracle.StaticPodOracle]:
    oracle = kubeadm_oracle.StaticPodOracle()
    yield oracle
    oracle.close()


_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
             "phases": [Phase.explicit, Phase.generate, Phase.shrink]}  # fmt: skip


@pytest.mark.e2e
@settings(max_examples=CASES, **_SETTINGS)  # type: ignore[arg-type]
@given(case=cluster_configurations())
def test_kubeadm_reads_and_renders_like_auditwarden(
    case: tuple[str, bool], workdir: Path, kubelet: kubeadm_oracle.StaticPodOracle
) -> None:
    _check(case, workdir, kubelet)


@settings(max_examples=FAST_CASES, **_SETTINGS)  # type: ignore[arg-type]
@given(case=cluster_configurations())
def test_kubeadm_reads_and_renders_like_auditwarden_sample(
    case: tuple[str, bool], workdir: Path, kubelet: kubeadm_oracle.StaticPodOracle
) -> None:
    _check(case, workdir, kubelet)



@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_verified_example_is_what_kubeadm_does(example: Example, workdir: Path) -> None:
    """The outcomes pinned in tests/support/kubeadm_examples.py (and held against auditwarden by
    tests/unit/test_kubeadm.py) are the real kubeadm's."""
    root = workdir / f"example-{next(_counter)}"
    outcome = kubeadm_oracle.run(kubeadm_oracle.binary(example.release), example.text, root)
    if example.refused is not None:
        assert not outcome.init_ok
        assert example.refused in outcome.init_output, outcome.init_output
        assert not outcome.validate_ok
        return
    assert outcome.init_ok, outcome.init_output
    assert outcome.pod is not None
    command, volumes, _ = kubeadm_oracle.pod_parts(outcome.pod)
    assert tuple(a for a in command if a.startswith("--audit-")) == example.audit_args
    assert set(example.volumes) <= set(volumes)
    assert not {path for _, path, _ in volumes} & set(example.absent_volumes)
