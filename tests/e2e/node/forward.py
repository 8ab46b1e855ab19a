"""A TCP forwarder from the host's loopback into a network namespace: the tests' way in to the node.

The test node's control plane listens on 127.0.0.1 *inside* its network namespace, so the host's
network is never touched (no veth, no route, no address).  kubectl, helm and the prober run on
the host; this process is their door: it binds ``127.0.0.1:PORT`` in the host's namespace first,
then enters the node's namespace with ``setns(2)`` and connects every accepted connection to
``127.0.0.1:TARGET`` there.  A listening socket stays in the namespace it was made in, and the
threads started after ``setns`` (one pair per connection) connect from the node's side.

    python -m tests.e2e.node.forward /run/netns/NAME LISTEN_PORT TARGET_PORT
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def enter_netns(path: str) -> None:
    """setns(2) of the calling process (single-threaded here) into the network namespace at ``path``."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy until EOF, then half-close the other side (TLS close_notify and HTTP/2 need both halves)."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def handle(client: socket.socket, target_port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", target_port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    t = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    t.start()
    pump(client, upstream)
    t.join()
    client.close()
    upstream.close()


def main(argv: list[str]) -> int:
    netns, listen_port, target_port = argv[0], int(argv[1]), int(argv[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(128)
    enter_netns(netns)
    print(f"forward: 127.0.0.1:{listen_port} -> {netns} 127.0.0.1:{target_port}", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=handle, args=(client, target_port), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
