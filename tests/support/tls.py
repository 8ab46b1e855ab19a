"""One real TLS handshake on loopback, for the tests of what `auditwarden certs` and the chart issue.

A server thread accepts one connection with ``server_ctx`` and sends a greeting; the client
connects with ``client_ctx`` and the server name given (SNI and hostname check).  A failed
verification raises from the client side, as it would for kube-apiserver dialling a webhook.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GREETING = b"hello over TLS"


@dataclass
class Handshake:
    received: bytes  # what the client read: the greeting
    version: str | None  # the negotiated protocol
    sni: list[str | None] = field(default_factory=list)  # the server names the server was asked for
    client_cert: dict[str, Any] | None = None  # the client certificate, as the server saw it


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_name: str) -> Handshake:
    """Complete a TLS handshake on 127.0.0.1 and return what each side saw.  Raises on failure."""
    sni: list[str | None] = []
    seen_client: list[dict[str, Any] | None] = []

    def remember_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(name)

    server_ctx.sni_callback = remember_sni
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    seen_client.append(tls.getpeercert() or None)
                    tls.sendall(GREETING)
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                client_ctx.wrap_socket(raw, server_hostname=server_name) as tls,
            ):
                received = tls.recv(64)
                version = tls.version()
        finally:
            thread.join(timeout=10)
    return Handshake(received, version, sni, seen_client[0] if seen_client else None)
