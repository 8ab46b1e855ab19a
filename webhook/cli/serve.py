"""``auditwarden serve``: the admission webhook over TLS, served by gunicorn.

With no TLS options it uses ``certs/tls.crt`` and ``certs/tls.key`` under the current
directory, creating a self-signed CA and a serving certificate for ``localhost`` and
``127.0.0.1`` there first when they are missing, prints where they are and the caBundle,
and serves — so ``curl --cacert certs/ca.crt https://127.0.0.1:8443/healthz`` answers.

An invalid configuration (or unusable certificate files) stops it before it serves, with
the reason on stderr and exit code 2.  Flask, gunicorn, cryptography and the kubernetes
client are imported inside the command only, so other commands start fast.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

DEFAULT_BIND = "127.0.0.1:8443"
DEV_CERT_DIR = "certs"


def _fail(message: str) -> None:
    click.echo(f"auditwarden serve: {message}", err=True)
    sys.exit(2)


def _check_bind(bind: str) -> str:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(
            f"{bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443", param_hint="--bind"
        )
    return bind


_F = TypeVar("_F", bound=Callable[..., Any])
_SECONDS = click.FloatRange(0.1, 60)


def _limit(name: str, kind: click.ParamType[Any], default: float, help: str) -> Callable[[_F], _F]:
    """A connection cap or deadline of the worker against hostile clients (docs/webhook.md)."""
    metavar = "SECONDS" if kind is _SECONDS else None
    return click.option(name, type=kind, default=default, show_default=True, metavar=metavar, help=help)


@click.command()
@click.option("--bind", default=DEFAULT_BIND, show_default=True, metavar="HOST:PORT", help="Address to listen on.")
@click.option(
    "--tls-cert", type=click.Path(dir_okay=False), help="Serving certificate (PEM); reloaded when it changes."
)
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Its private key (PEM).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Configuration file (YAML). Default: $AUDITWARDEN_CONFIG, else built-in defaults.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    help="gunicorn worker processes (more than 1 switches metrics to prometheus multiprocess mode).",
)
@click.option(
    "--check-config",
    is_flag=True,
    help="Only validate the configuration (and read categoriesFile), print its summary as JSON, exit 0 if usable.",
)
@_limit(
    "--max-connections",
    click.IntRange(16, 100_000),
    1000,
    "Open connections per worker; more are refused at once (TCP reset) and counted.",
)
@_limit(
    "--max-connections-per-peer",
    click.IntRange(1, 100_000),
    500,
    "Open connections per worker from one client address; more are refused the same way.",
)
@_limit(
    "--new-connections-per-peer-per-second",
    click.FloatRange(0, 100_000),
    100.0,
    "New connections one client address may open a second, after a burst (0: no limit); more are refused.",
)
@_limit(
    "--new-connections-per-peer-burst",
    click.IntRange(1, 100_000),
    1000,
    "The burst of new connections one client address may open at once (kube-apiserver: one per request).",
)
@_limit(
    "--handshake-timeout",
    _SECONDS,
    3.0,
    "A new connection must complete its TLS handshake within this, or it is closed.",
)
@_limit(
    "--header-timeout",
    _SECONDS,
    5.0,
    "A request's line and headers must arrive within this (also the keep-alive idle time).",
)
@_limit(
    "--body-timeout",
    _SECONDS,
    10.0,
    "A request's body must arrive within this, or the answer is 408 and the connection is closed.",
)
@click.option("--threads", type=int, default=None, hidden=True, help="Ignored (the gthread worker's setting).")
def serve(
    bind: str,
    tls_cert: str | None,
    tls_key: str | None,
    config_path: str | None,
    workers: int,
    max_connections: int,
    max_connections_per_peer: int,
    new_connections_per_peer_per_second: float,
    new_connections_per_peer_burst: int,
    handshake_timeout: float,
    header_timeout: float,
    body_timeout: float,
    threads: int | None,
    check_config: bool,
) -> None:
    """Run the admission webhook (POST /validate; GET /healthz, /readyz, /metrics) over HTTPS."""
    from webhook.service.config import ConfigError, build_context, load_config

    _check_bind(bind)
    try:
        config = load_config(config_path)
        build_context(config)  # reads categoriesFile: refuse to start when it is unusable
    except ConfigError as exc:
        _fail(f"invalid configuration: {exc}")
        return
    if check_config:
        click.echo(json.dumps(config.describe(), sort_keys=True))
        return

    if (tls_cert is None) != (tls_key is None):
        _fail("--tls-cert and --tls-key go together: give both, or neither for local development certificates")
    if tls_cert is None or tls_key is None:
        tls_cert, tls_key = _dev_certs(bind)

    from webhook.service.tls import TLSError, check_files

    try:
        status = check_files(tls_cert, tls_key)
    except TLSError as exc:
        _fail(f"cannot use the TLS certificate: {exc}")
        return
    problem = status.problem()
    if problem:  # serve anyway (a rotation may be on its way); /readyz reports it
        click.echo(f"auditwarden serve: warning: {problem}; /readyz answers 503 until it is replaced", err=True)

    if workers > 1:
        _multiprocess_metrics_dir()

    if threads is not None:
        click.echo("auditwarden serve: warning: --threads is ignored: the worker serves every connection in a "
                   "greenlet and judges in its own threads", err=True)  # fmt: skip

    from webhook.service.logs import access_log_enabled, logconfig_dict
    from webhook.service.server import WebhookServer
    from webhook.service.worker import ConnectionLimits

    limits = ConnectionLimits(max_connections=max_connections, max_connections_per_peer=max_connections_per_peer,
                              new_connections_per_peer_rate=new_connections_per_peer_per_second,
                              new_connections_per_peer_burst=new_connections_per_peer_burst,
                              handshake_timeout=handshake_timeout, header_timeout=header_timeout,
                              body_timeout=body_timeout)  # fmt: skip

    access_log = access_log_enabled()
    options: dict[str, Any] = {
        "bind": [bind],
        "workers": workers,
        "worker_connections": max_connections,
        "certfile": tls_cert,
        "keyfile": tls_key,
        "loglevel": config.log_level,
        "logconfig_dict": logconfig_dict(config.log_level, access_log=access_log),
    }
    start = {"msg": "starting auditwarden", "bind": bind, "workers": workers, **limits.describe(),
             "certificate": tls_cert, **config.describe()}  # fmt: skip
    click.echo(json.dumps(start), err=True)
    WebhookServer(config, options, limits).run()


def _dev_certs(bind: str) -> tuple[str, str]:
    from webhook.certs import CertError, ca_bundle_b64, ensure_local_dev_certs

    directory = Path(DEV_CERT_DIR)
    try:
        paths = ensure_local_dev_certs(directory)
        bundle = ca_bundle_b64(paths.ca)
    except (CertError, OSError) as exc:
        _fail(f"cannot prepare local development certificates in {directory.resolve()}: {exc}")
        raise AssertionError("unreachable") from None
    click.echo(f"TLS certificate: {paths.cert.resolve()}")
    click.echo(f"TLS key:         {paths.key.resolve()}")
    click.echo(f"CA certificate:  {paths.ca.resolve()}")
    click.echo(f"caBundle: {bundle}")
    host, _, port = bind.rpartition(":")
    if host in ("0.0.0.0", "[::]", "localhost"):
        host = "127.0.0.1"
    click.echo(f"Try: curl --cacert {paths.ca} https://{host}:{port}/healthz")
    return str(paths.cert), str(paths.key)


def _multiprocess_metrics_dir() -> None:
    """A private, empty PROMETHEUS_MULTIPROC_DIR for this server (removed when it exits)."""
    existing = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if existing:
        Path(existing).mkdir(parents=True, exist_ok=True)
        for stale in Path(existing).glob("*.db"):
            stale.unlink(missing_ok=True)
        return
    directory = tempfile.mkdtemp(prefix="auditwarden-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    master = os.getpid()

    def cleanup() -> None:
        if os.getpid() == master:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(cleanup)
