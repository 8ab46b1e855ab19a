"""The chart as users run it: ``helm install`` with default values on a real node, pods from the built image.

Only the image settings differ from the defaults (``localhost/auditwarden:e2e``, imported into the
node's containerd).  The apiserver reaches the pods through the chart's Service (no
``webhook.url``), on the endpoints' pod IPs.  The tests run in file order on one release:
install, what runs inside a pod, verdicts through the Service, disruptions under a continuous
prober (rolling upgrade, pod deletion, eviction against the PDB), certificate rotation in place,
logs and metrics, and last the uninstall.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import policies as P
from tests.e2e.node.node import IMAGE, Node
from tests.e2e.node.prober import Prober
from tests.e2e.webhook_server import (
    WEBHOOK_CONFIGMAPS,
    HelmRelease,
    denial_message,
    ensure_namespace,
    exists,
    kubectl_apply,
    policy_configmap,
)
from webhook.certs import generate

RELEASE = "auditwarden"
NAMESPACE = "auditwarden"
TEST_NS = "aw-node-tests"  # policies are judged here (the release namespace is exempt)
IMAGE_VALUES = {"image": {"repository": IMAGE.rsplit(":", 1)[0], "tag": IMAGE.rsplit(":", 1)[1]}}
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"

#: figures the tests measured, printed at the end of the module (bench/README.md quotes a run)
FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def release(node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRelease]:
    helm = HelmRelease(node.cluster, RELEASE, NAMESPACE, tmp_path_factory.mktemp("helm-node"))
    try:
        with helm.installed_release(IMAGE_VALUES, "--wait", "--timeout", "240s"):
            FIGURES["helm install --wait (s)"] = helm.install_seconds
            ensure_namespace(node.cluster, TEST_NS)
            yield helm
    finally:
        print("\nnode figures: " + json.dumps(FIGURES))


# --------------------------------------------------------------------------- helpers


def pods(node: Node) -> list[dict[str, Any]]:
    out = node.kubectl("get", "pods", "-n", NAMESPACE, "-l", SELECTOR, "-o", "json", check=True)
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conds = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def ready_pods(node: Node) -> list[dict[str, Any]]:
    return [p for p in pods(node) if is_ready(p)]


def wait_for(cond: Any, what: str, timeout: float = 180, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"{what}: not after {timeout:.0f}s")


def exec_python(node: Node, pod: str, code: str) -> subprocess.CompletedProcess[str]:
    return node.kubectl("exec", "-n", NAMESPACE, pod, "-c", "auditwarden", "--", "python3", "-c", code, timeout=60)


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def tls_secret_name(helm: HelmRelease) -> str:
    docs = [d for d in helm.manifest() if d["kind"] == "Secret" and d.get("type") == "kubernetes.io/tls"]
    assert len(docs) == 1, docs
    return str(docs[0]["metadata"]["name"])


def service_host(helm: HelmRelease) -> str:
    svc = next(d for d in helm.manifest() if d["kind"] == "Service")["metadata"]["name"]
    return f"{svc}.{NAMESPACE}.svc"


class PortForward:
    """``kubectl port-forward pod/NAME :8443`` on the host, for as long as the ``with`` lasts."""

    def __init__(self, node: Node, pod: str) -> None:
        self.node, self.pod = node, pod
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> PortForward:
        c = self.node.cluster
        exe = c._kubectl or "kubectl"
        self.proc = subprocess.Popen(
            [str(exe), f"--kubeconfig={c.kubeconfig('admin')}", "port-forward", "-n", NAMESPACE, f"pod/{self.pod}",
             ":8443"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert m, f"port-forward said: {line!r}"
        self.port = int(m.group(1))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def get(self, path: str, ca_pem: str, hostname: str) -> tuple[str, bytes]:
        """GET over TLS verified against the chart's CA for the Service's name; (peer cert PEM, body)."""
        ctx = ssl.create_default_context(cadata=ca_pem)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw, ctx.wrap_socket(
            raw, server_hostname=hostname
        ) as s:
            der = s.getpeercert(binary_form=True)
            assert der is not None
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: {hostname}\r\n\r\n".encode())
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head[:200]
        return ssl.DER_cert_to_PEM_cert(der), body


def chart_ca(node: Node, helm: HelmRelease) -> str:
    out = node.kubectl("get", "secret", tls_secret_name(helm), "-n", NAMESPACE, "-o", "json", check=True)
    return base64.b64decode(json.loads(out.stdout)["data"]["ca.crt"]).decode()


def requests_total(metrics_text: str, **labels: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith("auditwarden_admission_requests_total{"):
            continue
        lab = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if all(lab.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def memory_kib(node: Node, pod: str) -> tuple[int, int]:
    """(RSS, PSS) summed over every process in the pod's container (gunicorn master, worker, fork server).

    RSS counts the pages a forked process shares with its parent once per process; PSS shares them
    out, so its sum is the container's real footprint.
    """
    code = (
        "import os\n"
        "rss = pss = 0\n"
        "for p in os.listdir('/proc'):\n"
        "  if p.isdigit():\n"
        "    try:\n"
        "      s = open(f'/proc/{p}/smaps_rollup').read()\n"
        "    except OSError: continue\n"
        "    for l in s.splitlines():\n"
        "      if l.startswith('Rss:'): rss += int(l.split()[1])\n"
        "      if l.startswith('Pss:'): pss += int(l.split()[1])\n"
        "print(rss, pss)"
    )
    out = exec_python(node, pod, code)
    assert out.returncode == 0, out.stderr
    rss, pss = out.stdout.split()
    return int(rss), int(pss)


# --------------------------------------------------------------------------- install


def test_default_install_brings_two_replicas_ready_from_the_built_image(release: HelmRelease, node: Node) -> None:
    ready = wait_for(lambda: len(ready_pods(node)) == 2 and ready_pods(node), "2 ready replicas")
    for pod in ready:
        assert pod["spec"]["containers"][0]["image"] == IMAGE
        assert pod["spec"]["nodeName"] == "cp-1"
        started = parse_time(pod["status"]["startTime"])
        conds = pod["status"]["conditions"]
        ready_at = next(parse_time(c["lastTransitionTime"]) for c in conds if c["type"] == "Ready")
        FIGURES.setdefault("pod start-to-Ready (s)", []).append((ready_at - started).total_seconds())
    FIGURES["node start-to-Ready (s)"] = round(node.ready_after, 1)


def test_pods_run_as_65532_read_only_without_capabilities_under_seccomp_seen_from_inside(
    release: HelmRelease, node: Node
) -> None:
    pod = ready_pods(node)[0]["metadata"]["name"]
    code = (
        "import json, os\n"
        "st = dict(l.split(':\\t', 1) for l in open('/proc/1/status').read().splitlines() if ':\\t' in l)\n"
        "try:\n"
        "    open('/probe-write', 'w'); rootfs = 'writable'\n"
        "except OSError as e:\n"
        "    rootfs = e.strerror\n"
        "tmp = open('/tmp/probe-write', 'w'); tmp.write('x'); tmp.close()\n"
        "print(json.dumps({k: st[k].strip() for k in ('Uid', 'Gid', 'CapEff', 'CapPrm', 'CapBnd', 'CapAmb',"
        " 'NoNewPrivs', 'Seccomp')} | {'rootfs': rootfs, 'uid': os.getuid()}))"
    )
    out = exec_python(node, pod, code)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    # process 1 of the container is the server itself (gunicorn's master)
    assert seen["Uid"].split() == ["65532"] * 4 and seen["Gid"].split() == ["65532"] * 4, seen
    assert seen["uid"] == 65532
    for caps in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(seen[caps], 16) == 0, seen
    assert seen["NoNewPrivs"] == "1", seen
    assert seen["Seccomp"] == "2", seen  # SECCOMP_MODE_FILTER: the runtime's default profile
    assert seen["rootfs"] == "Read-only file system", seen
    cmdline = exec_python(node, pod, "print(open('/proc/1/cmdline').read().replace('\\0', ' '))").stdout
    assert "serve" in cmdline and "/etc/auditwarden/tls/tls.crt" in cmdline, cmdline


# --------------------------------------------------------------------------- through the Service


def test_through_the_service_a_weak_policy_is_refused_with_its_categories_and_a_good_one_admitted(
    release: HelmRelease, node: Node
) -> None:
    c = node.cluster
    vwc = json.loads(
        node.kubectl("get", "validatingwebhookconfiguration", release.webhook_configuration_name(), "-o", "json").stdout
    )
    assert all("service" in h["clientConfig"] and "url" not in h["clientConfig"] for h in vwc["webhooks"])
    weak = policy_configmap("weak-policy", TEST_NS, P.COVERS_2)
    for extra in (("--dry-run=server",), ()):
        out = kubectl_apply(c, weak, *extra, verb="create")
        assert out.returncode != 0, out.stdout
        msg = denial_message(out.stderr)
        assert WEBHOOK_CONFIGMAPS in out.stderr, out.stderr
        for category in P.COVERS_2_MISSING:
            assert category in msg, msg
    assert not exists(c, "configmap", "weak-policy", TEST_NS)

    good = policy_configmap("good-policy", TEST_NS, P.COVERS_ALL)
    dry = kubectl_apply(c, good, "--dry-run=server", verb="create")
    assert dry.returncode == 0, dry.stderr
    assert not exists(c, "configmap", "good-policy", TEST_NS)  # a dry run stores nothing
    real = kubectl_apply(c, good, verb="create")
    assert real.returncode == 0, real.stderr
    assert exists(c, "configmap", "good-policy", TEST_NS)
    # and deleting the cluster's audit policy is judged too: refused
    gone = node.kubectl("delete", "configmap", "good-policy", "-n", TEST_NS)
    assert gone.returncode != 0 and "denied the request" in gone.stderr, gone.stderr


# --------------------------------------------------------------------------- disruptions under load


def test_no_admission_fails_during_a_rolling_upgrade_with_a_config_change(release: HelmRelease, node: Node) -> None:
    before = {p["metadata"]["name"] for p in ready_pods(node)}
    with Prober(node.cluster, TEST_NS, prefix="upgrade") as prober:
        time.sleep(3)
        release.upgrade({**IMAGE_VALUES, "config": {"maxRequestBytes": 3145000}}, "--wait", "--timeout", "240s")
        wait_for(
            lambda: len(ready_pods(node)) == 2 and not ({p["metadata"]["name"] for p in pods(node)} & before),
            "2 new ready replicas, old ones gone",
        )
        time.sleep(3)
    assert prober.sent > 20, prober.summary()
    assert not prober.failures(), prober.summary()
    FIGURES["prober requests during upgrade"] = prober.sent


def test_no_admission_fails_when_a_replica_is_deleted(release: HelmRelease, node: Node) -> None:
    victim = ready_pods(node)[0]["metadata"]["name"]
    with Prober(node.cluster, TEST_NS, prefix="delete") as prober:
        time.sleep(2)
        out = node.kubectl("delete", "pod", victim, "-n", NAMESPACE, "--wait=true", timeout=120)
        assert out.returncode == 0, out.stderr
        wait_for(lambda: len(ready_pods(node)) == 2, "a replacement ready")
        time.sleep(3)
    assert prober.sent > 10, prober.summary()
    assert not prober.failures(), prober.summary()


def evict(node: Node, pod: str) -> subprocess.CompletedProcess[str]:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": NAMESPACE}}
    return node.kubectl(
        "create", "--raw", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/eviction", "-f", "-", input=json.dumps(body)
    )


def test_an_eviction_keeps_admission_working_and_the_pdb_protects_the_last_ready_replica(
    release: HelmRelease, node: Node
) -> None:
    first, second = (p["metadata"]["name"] for p in ready_pods(node)[:2])
    with Prober(node.cluster, TEST_NS, prefix="evict") as prober:
        time.sleep(2)
        out = evict(node, first)
        assert out.returncode == 0, out.stderr
        # while the replacement is not ready, the other replica is the last ready one
        refused = evict(node, second)
        assert refused.returncode != 0, "the PDB let the last ready replica be evicted"
        assert "disruption budget" in refused.stderr, refused.stderr
        wait_for(lambda: len(ready_pods(node)) == 2, "a replacement ready")
        time.sleep(3)
    assert prober.sent > 10, prober.summary()
    assert not prober.failures(), prober.summary()


# --------------------------------------------------------------------------- certificate rotation


def test_a_certificate_rotated_in_the_secret_is_served_without_a_restart(
    release: HelmRelease, node: Node, tmp_path: Path
) -> None:
    c = node.cluster
    secret = tls_secret_name(release)
    host = service_host(release)
    current = json.loads(node.kubectl("get", "secret", secret, "-n", NAMESPACE, "-o", "json", check=True).stdout)
    ca_pem = base64.b64decode(current["data"]["ca.crt"]).decode()
    before = {p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"] for p in ready_pods(node)}
    # a new serving certificate from a new CA, for the same names
    fresh = generate(tmp_path / "rotated", service=host.split(".")[0], namespace=NAMESPACE, days=2, ca_days=3)
    new_ca = Path(fresh.ca).read_text()
    new_cert = Path(fresh.cert).read_text()
    data = {
        "ca.crt": base64.b64encode((ca_pem + new_ca).encode()).decode(),  # both CAs while it rolls
        "tls.crt": base64.b64encode(new_cert.encode()).decode(),
        "tls.key": base64.b64encode(Path(fresh.key).read_bytes()).decode(),
    }
    vwc_name = release.webhook_configuration_name()
    vwc = json.loads(node.kubectl("get", "validatingwebhookconfiguration", vwc_name, "-o", "json", check=True).stdout)
    patch = [
        {"op": "replace", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": data["ca.crt"]}
        for i in range(len(vwc["webhooks"]))
    ]
    with Prober(c, TEST_NS, prefix="rotate") as prober:
        time.sleep(2)
        out = node.kubectl("patch", "validatingwebhookconfiguration", vwc_name, "--type=json", "-p", json.dumps(patch))
        assert out.returncode == 0, out.stderr
        time.sleep(2)
        out = node.kubectl(
            "patch", "secret", secret, "-n", NAMESPACE, "--type=merge", "-p", json.dumps({"data": data})
        )
        assert out.returncode == 0, out.stderr
        patched_at = time.monotonic()

        def serving_new() -> bool:
            for p in ready_pods(node):
                with PortForward(node, p["metadata"]["name"]) as pf:
                    served, _ = pf.get("/healthz", ca_pem + new_ca, host)
                if served.strip() != new_cert.strip():
                    return False
            return True

        wait_for(serving_new, "both pods serving the rotated certificate", timeout=150, interval=3)
        # the kubelet's sync of the Secret volume (its atomic writer) plus the server's check interval
        FIGURES["certificate rotation served after (s)"] = round(time.monotonic() - patched_at, 1)
        time.sleep(2)
    after = {p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"] for p in ready_pods(node)}
    assert after == before, (before, after)  # same pods, no restart
    assert prober.sent > 10, prober.summary()
    assert not prober.failures(), prober.summary()
    FIGURES["prober requests during rotation"] = prober.sent


# --------------------------------------------------------------------------- observability


def test_logs_have_one_json_decision_line_per_request_and_metrics_count_them(release: HelmRelease, node: Node) -> None:
    secret_ca = chart_ca(node, release)
    host = service_host(release)
    names = [p["metadata"]["name"] for p in ready_pods(node)]
    assert len(names) == 2

    def scrape() -> dict[str, str]:
        out = {}
        for n in names:
            with PortForward(node, n) as pf:
                out[n] = pf.get("/metrics", secret_ca, host)[1].decode()
        return out

    idle = {n: memory_kib(node, n) for n in names}
    before = scrape()
    prober = Prober(node.cluster, TEST_NS, prefix="counted", interval=0.02, max_requests=300)
    prober.start()
    time.sleep(4)
    loaded = {n: memory_kib(node, n) for n in names}
    prober._thread.join(timeout=300) if prober._thread else None
    prober.stop()
    assert prober.sent == 300 and not prober.failures(), prober.summary()
    after = scrape()
    counted = sum(
        requests_total(after[n], kind="ConfigMap") - requests_total(before[n], kind="ConfigMap") for n in names
    )
    assert counted == prober.sent, (counted, prober.sent)
    for label, seen in (("idle", idle), ("under prober", loaded)):
        FIGURES[f"RSS per pod {label} (MiB)"] = [round(rss / 1024, 1) for rss, _ in seen.values()]
        FIGURES[f"PSS per pod {label} (MiB)"] = [round(pss / 1024, 1) for _, pss in seen.values()]
        for rss, pss in seen.values():
            assert 0 < pss <= rss < 384 * 1024, (rss, pss)  # within the chart's memory limit

    lines: list[dict[str, Any]] = []
    for n in names:
        out = node.kubectl("logs", "-n", NAMESPACE, n, "-c", "auditwarden", timeout=60)
        assert out.returncode == 0, out.stderr
        for raw in out.stdout.splitlines():
            lines.append(json.loads(raw))  # every line is one JSON object
    decisions = [e for e in lines if e.get("msg") == "admission decision" and e.get("name", "").startswith("counted-")]
    per_name: dict[str, int] = {}
    for e in decisions:
        per_name[e["name"]] = per_name.get(e["name"], 0) + 1
    assert sorted(per_name) == sorted(a.name for a in prober.answers), "a request without exactly one decision line"
    assert set(per_name.values()) == {1}
    weak = next(e for e in decisions if e["name"].endswith("-weak"))
    assert weak["allowed"] is False and weak["dryRun"] is True and weak["kind"] == "ConfigMap", weak


# --------------------------------------------------------------------------- uninstall


def test_uninstall_removes_everything_and_nothing_stays_fail_closed(release: HelmRelease, node: Node) -> None:
    vwc = release.webhook_configuration_name()
    manifest = release.manifest()
    out = release.uninstall()
    assert out.returncode == 0, out.stderr
    assert not exists(node.cluster, "validatingwebhookconfiguration", vwc)
    for doc in manifest:
        kind, name = doc["kind"], doc["metadata"]["name"]
        ns = None if kind == "ValidatingWebhookConfiguration" else NAMESPACE
        assert not exists(node.cluster, kind.lower(), name, ns), (kind, name)
    wait_for(lambda: not pods(node), "the release's pods gone", timeout=120)
    # protected writes work again: nothing fails closed
    out = kubectl_apply(node.cluster, policy_configmap("after-uninstall", TEST_NS, P.COVERS_2), "--dry-run=server",
                        verb="create")  # fmt: skip
    assert out.returncode == 0, out.stderr
