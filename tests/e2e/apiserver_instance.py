"""A second, short-lived kube-apiserver on the session cluster's etcd, with a free-form argv.

:meth:`tests.e2e.cluster.Cluster.restart` only takes ``--key=value`` flags (it merges them by
key), but the kube-bench comparison needs command lines exactly as an operator might write
them: space syntax (``--audit-log-maxage 30``), repeated flags, ``_`` for ``-``.  This helper
starts the same ``kube-apiserver`` binary with the cluster's own flags (same etcd, PKI and
users; its own secure port) plus the flags under test, verbatim, and reports what the process
actually did: whether it became ready, the flag values it logged (``FLAG: --name="value"`` at
``--v=1``), and what it printed.

The binary is started through a symlink named :data:`PROCESS_NAME`, so ``ps -C`` (which
matches the kernel's 15-character ``comm``) finds this process and not the session apiserver:
kube-bench can be pointed at it alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.cluster import Cluster, flag_key, free_port
from tests.support.tools import tool

#: comm (<= 15 characters) of the extra apiserver and of its stand-in
PROCESS_NAME = "awapiserver"

#: flags of the session cluster the extra apiserver must not inherit (the tests set them)
AUDIT_FLAG_KEYS = (
    "--audit-policy-file",
    "--audit-log-path",
    "--audit-log-maxage",
    "--audit-log-maxbackup",
    "--audit-log-maxsize",
)

_FLAG_LINE = re.compile(r'FLAG: --([a-z0-9-]+)="(.*)"$', re.M)


def _own_group_and_die_with_parent() -> None:  # pragma: no cover - runs between fork and exec
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def kill_group(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Run:
    """What one extra kube-apiserver run did."""

    argv: list[str]
    started: bool
    log_path: Path
    exit_code: int | None = None
    flags: dict[str, str] = field(default_factory=dict)  # FLAG: lines (effective values)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class ExtraApiserver:
    """One extra kube-apiserver process at a time, sharing ``cluster``'s etcd and certificates."""

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        real = tool("kube-apiserver")  # the binary Cluster() runs by default
        if real is None:
            raise RuntimeError("kube-apiserver not found; run tests/e2e/build.sh")
        self.binary = workdir / PROCESS_NAME
        if not self.binary.exists():
            self.binary.symlink_to(real)
        self.stand_in = workdir / "stand-in" / PROCESS_NAME
        self.stand_in.parent.mkdir(exist_ok=True)
        if not self.stand_in.exists():
            self.stand_in.symlink_to("/usr/bin/tail")
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._runs = 0

    # ---------------------------------------------------------------- flags

    def base_flags(self) -> list[str]:
        """The session cluster's flags without its audit settings, on a port of our own."""
        self.port = free_port()
        flags = [f for f in self.cluster.apiserver_flags if flag_key(f) not in (*AUDIT_FLAG_KEYS, "--secure-port")]
        return [*flags, f"--secure-port={self.port}"]

    # ---------------------------------------------------------------- lifecycle

    def start(self, flags: Sequence[str], *, timeout: float = 60.0) -> Run:
        """Start kube-apiserver with the base flags then ``flags`` verbatim; wait for ready or exit."""
        self.stop()
        self._runs += 1
        argv = [str(self.binary), *self.base_flags(), *flags]
        log_path = self.workdir / f"run-{self._runs}.log"
        with log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=_own_group_and_die_with_parent,
            )
        run = Run(argv=argv, started=False, log_path=log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                run.exit_code = self.proc.returncode
                break
            try:
                status, _ = self.request("/readyz", timeout=2)
                if status == 200:
                    run.started = True
                    break
            except (OSError, ssl.SSLError):
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"extra kube-apiserver neither ready nor exited after {timeout:.0f}s: {log_path}")
        run.flags = {m.group(1): m.group(2) for m in _FLAG_LINE.finditer(run.log)}
        return run

    def start_stand_in(self, flags: Sequence[str]) -> subprocess.Popen[bytes]:
        """A process named like the apiserver, with the same flags on its command line, that stays up.

        kube-bench reads nothing but ``ps`` output, so for a command line the real apiserver
        refuses (it exits within a second) this lets it judge the very same flags.  It is
        ``tail -f /dev/null -- FLAGS...`` (tail complains about each "file" and keeps following
        /dev/null).
        """
        self.stop()
        argv = [str(self.stand_in), "-f", "/dev/null", "--", *self.base_flags(), *flags]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_own_group_and_die_with_parent,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ps = subprocess.run(["ps", "-C", PROCESS_NAME, "-o", "pid", "--no-headers"], capture_output=True, text=True)
            if str(self.proc.pid) in ps.stdout.split():
                return self.proc
            time.sleep(0.05)
        raise RuntimeError("stand-in process did not show up in ps")

    def stop(self) -> None:
        kill_group(self.proc, grace=20)
        self.proc = None

    # ---------------------------------------------------------------- requests

    def request(self, path: str, *, user: str = "admin", timeout: float = 5.0) -> tuple[int, bytes]:
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}")
        try:
            with urllib.request.urlopen(req, context=self.cluster.ssl_context(user), timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())
