"""Certificate hot reload: a changed pair is picked up after the interval, a broken one never is."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from webhook.certs import generate
from webhook.service.tls import CertReloader, TLSError, check_files


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fingerprint(reloader: CertReloader) -> str:
    return reloader.status().fingerprint


def make_pair(directory: Path) -> tuple[Path, Path]:
    paths = generate(directory, sans=["localhost", "127.0.0.1"])
    return paths.cert, paths.key


def test_reload_after_the_interval_only(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    a_cert, a_key = make_pair(tmp_path / "a")
    b_cert, b_key = make_pair(tmp_path / "b")
    shutil.copy(a_cert, live / "tls.crt")
    shutil.copy(a_key, live / "tls.key")
    clock = Clock()
    loads: list[str] = []
    r = CertReloader(str(live / "tls.crt"), str(live / "tls.key"), interval=10, clock=clock,
                     on_load=lambda status, error: loads.append("ok" if status else f"failed: {error}"))  # fmt: skip
    first = r.context()
    fp_a = fingerprint(r)
    assert loads == ["ok"]
    shutil.copy(b_cert, live / "tls.crt")
    shutil.copy(b_key, live / "tls.key")
    clock.now += 5
    assert r.context() is first  # not checked again yet
    clock.now += 6
    second = r.context()
    assert second is not first and fingerprint(r) != fp_a
    assert loads == ["ok", "ok"]
    clock.now += 11
    assert r.context() is second  # unchanged content: no new context


def test_a_half_written_rotation_keeps_the_old_context(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    a_cert, a_key = make_pair(tmp_path / "a")
    b_cert, _ = make_pair(tmp_path / "b")
    shutil.copy(a_cert, live / "tls.crt")
    shutil.copy(a_key, live / "tls.key")
    clock = Clock()
    r = CertReloader(str(live / "tls.crt"), str(live / "tls.key"), interval=1, clock=clock)
    ctx = r.context()
    fp = fingerprint(r)
    shutil.copy(b_cert, live / "tls.crt")  # new certificate, old key: they do not match
    clock.now += 2
    assert r.context() is ctx
    status = r.status()
    assert status.loaded and status.fingerprint == fp and status.last_error
    (live / "tls.key").write_text("garbage")
    clock.now += 2
    assert r.context() is ctx
    (live / "tls.key").unlink()
    clock.now += 2
    assert r.context() is ctx and "no such file" in r.status().last_error.lower()


def test_status_reports_expiry(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path)
    r = CertReloader(str(cert), str(key), interval=60)
    status = r.status()
    assert status.loaded and status.not_after is not None
    assert status.problem() is None
    later = status.not_after + dt.timedelta(seconds=1)
    assert status.problem(later) == f"the serving certificate expired at {status.not_after.isoformat()}"


def test_nothing_loadable(tmp_path: Path) -> None:
    r = CertReloader(str(tmp_path / "x.crt"), str(tmp_path / "x.key"))
    with pytest.raises(TLSError):
        r.context()
    assert "no serving certificate loaded" in (r.status().problem() or "")
    with pytest.raises(TLSError):
        check_files(str(tmp_path / "x.crt"), str(tmp_path / "x.key"))


def test_check_files_accepts_a_good_pair(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path)
    status = check_files(str(cert), str(key))
    assert status.loaded and "localhost" in status.subject
