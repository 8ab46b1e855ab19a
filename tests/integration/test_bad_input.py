"""Bad input never hurts: each gets a 400/413/415 with a reason or a denial with a reason, in
bounded time and memory, and the same worker answers the next request."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Server, read_reply
from tests.support.reviews import (
    alias_bomb,
    body,
    deeply_nested_yaml,
    huge_policy,
    many_keys_configmap,
    policy_configmap,
    review,
)

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(start_server: Any) -> Server:
    s: Server = start_server({"mode": "enforce"})
    return s


@pytest.fixture
def survives(server: Server) -> Iterator[Callable[[], None]]:
    """After the test: the same worker(s) still answer (no restart), with bounded memory."""
    workers = server.workers()
    assert workers

    def check() -> None:
        assert server.answer(review(policy_configmap()))["allowed"] is True
        assert server.workers() == workers, "a worker was replaced"

    yield check
    check()
    for pid in workers:
        rss_kib = rss(pid)
        assert rss_kib < 400 * 1024, f"worker {pid} uses {rss_kib // 1024} MiB"


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


# --------------------------------------------------------------- malformed reviews: HTTP 4xx


def raw_exchange(server: Server, head: bytes, payload: Iterator[bytes] | None = None) -> tuple[bytes, float]:
    """Send ``head`` and ``payload`` over a fresh TLS connection; return the first reply bytes and the time.

    A raw socket, because an HTTP library that is still sending a body does not read an
    early answer (the server answers 413 without reading the rest, then closes).
    """
    ctx = ssl.create_default_context(cafile=server.ca)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # fmt: skip
        tls.sendall(head)
        for chunk in payload or ():
            tls.sendall(chunk)
        reply = read_reply(tls)
    return reply, time.monotonic() - started


def test_body_over_the_limit_by_content_length(server: Server, survives: Any) -> None:
    size = 3 * MIB + 1
    head = (f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()  # fmt: skip
    reply, seconds = raw_exchange(server, head)  # the body is never sent: the answer comes from the header
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    error = json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
    assert error == f"request body of {size} bytes is larger than the limit of 3145728 bytes (maxRequestBytes)"
    assert seconds < 5


def test_body_over_the_limit_without_content_length(server: Server, survives: Any) -> None:
    head = b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
           b"Transfer-Encoding: chunked\r\n\r\n"  # fmt: skip

    def chunks() -> Iterator[bytes]:
        piece = b"x" * (64 * 1024)
        for _ in range(3 * 16 + 1):  # 3 MiB + 64 KiB, and no final chunk: the server must stop by itself
            yield b"%x\r\n" % len(piece) + piece + b"\r\n"

    reply, seconds = raw_exchange(server, head, chunks())
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert b"larger than the limit of 3145728 bytes" in reply
    assert seconds < 10


def test_a_slow_lying_client_cannot_make_the_server_read_past_the_limit(server: Server, survives: Any) -> None:
    # Announce a small body, then send far more: only the announced bytes are read as this
    # request; the rest is not a valid next request and the connection is closed.
    ctx = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # fmt: skip
        payload = body(review(policy_configmap()))
        head = (f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode()  # fmt: skip
        tls.sendall(head + payload + b"GARBAGE" * 1000)
        reply = tls.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200")


def test_wrong_content_type(server: Server, survives: Any) -> None:
    r = server.post(review(policy_configmap()), headers={"Content-Type": "application/yaml"})
    assert r.status_code == 415
    assert r.json() == {"error": "content type must be application/json, got 'application/yaml'"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": ', "body is not valid JSON"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}).encode(),
         "apiVersion must be 'admission.k8s.io/v1', got 'admission.k8s.io/v1beta1'"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "Admission", "request": {"uid": "u"}}).encode(),
         "kind must be 'AdmissionReview', got 'Admission'"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "request is missing"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"kind": {}}}).encode(),
         "request.uid is missing"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Admission\xffReview"}', "body is not valid UTF-8 (byte 56)"),
        (b"[" * 500_000 + b"]" * 500_000, "body is not valid JSON: nested too deeply"),
        (b"[1, 2, 3]", "body must be a JSON object (an AdmissionReview), got an array"),
    ],
    ids=["malformed-json", "wrong-api-version", "wrong-kind", "missing-request", "missing-uid", "non-utf8",
         "deeply-nested-json", "not-an-object"],
)  # fmt: skip
def test_malformed_reviews_are_400_with_the_reason(server: Server, survives: Any, raw: bytes, reason: str) -> None:
    r, seconds = timed(lambda: server.post(raw))
    assert r.status_code == 400
    assert r.json()["error"].startswith(reason), r.json()
    assert seconds < 5


# ------------------------------------------------------- malformed content: a denial with reason


def deny_reason(server: Server, doc: dict[str, Any], **kw: Any) -> tuple[str, float]:
    resp, seconds = timed(lambda: server.answer(doc, **kw))
    assert resp["allowed"] is False, resp
    assert resp["status"]["code"] == 403
    return str(resp["status"]["message"]), seconds


def test_yaml_alias_bomb(server: Server, survives: Any) -> None:
    message, seconds = deny_reason(server, review(policy_configmap(alias_bomb(9))))
    assert "cannot be analysed: document expands to more than 1000000 nodes (excessive YAML aliasing?)" in message
    assert seconds < 5


def test_deeply_nested_yaml_document(server: Server, survives: Any) -> None:
    message, seconds = deny_reason(server, review(policy_configmap(deeply_nested_yaml(200_000))))
    assert "nested deeper than 100 levels" in message
    assert seconds < 5


def test_ten_thousand_keys(server: Server, survives: Any) -> None:
    resp, seconds = timed(lambda: server.answer(review(many_keys_configmap(10_000))))
    assert resp["allowed"] is True  # judged in full: the one policy among them is compliant
    assert seconds < 5
    unrelated = many_keys_configmap(10_000, with_policy=False)
    resp, seconds = timed(lambda: server.answer(review(unrelated)))
    assert resp == {"uid": resp["uid"], "allowed": True, "auditAnnotations": {"verdict": "skip"}}
    assert seconds < 2


def test_ten_thousand_policies(server: Server, survives: Any) -> None:
    cm = many_keys_configmap(0, with_policy=False)
    cm["data"] = {f"p{i}": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n" for i in range(10_000)}
    message, seconds = deny_reason(server, review(cm), params={"timeout": "10s"})
    assert "categories-below-minimum" in message or "did not finish within" in message
    assert seconds < 10


def test_huge_policy_hits_the_deadline(server: Server, survives: Any) -> None:
    # ~1.7 MB: its analysis takes 3.5-7.5 s on the 2-core CI machine (idle or busy), far more
    # than the 0.5 s left of the apiserver's ?timeout=1s after the answer margin.  The margin
    # must be wide: this test once asked for 4.5 s and failed when an idle machine finished.
    policy = huge_policy(30_000)
    assert len(policy) < 3 * MIB
    message, seconds = deny_reason(server, review(policy_configmap(policy)), params={"timeout": "1s"})
    # The budget printed is what was left when the child started (0.5 s less the time to read the body).
    assert re.search(r"did not finish within 0\.\d s: the content is too large or complex to vouch for", message)
    assert seconds < 3


def test_huge_flat_yaml_hits_a_limit(server: Server, survives: Any) -> None:
    flat = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\nx: [" + "a," * 1_300_000 + "a]\n"
    message, seconds = deny_reason(server, review(policy_configmap(flat)), params={"timeout": "10s"})
    assert any(reason in message for reason in ("more than 512 MiB of memory", "did not finish within",
                                                "expands to more than 1000000 nodes"))  # fmt: skip
    assert seconds < 10


def test_garbage_in_a_labelled_policy_configmap(server: Server, survives: Any) -> None:
    cm = policy_configmap("{{{ not: yaml", labels={"auditwarden.io/kind": "audit-policy"})
    message, _ = deny_reason(server, review(cm))
    # A text that starts with "{" is JSON to kube-apiserver's decoder, so that is what is refused.
    assert "cannot be analysed: couldn't get version/kind; json parse error" in message
    cm = policy_configmap("rules: [[[ not: yaml", labels={"auditwarden.io/kind": "audit-policy"})
    message, _ = deny_reason(server, review(cm))
    assert "cannot be analysed: invalid YAML" in message


def test_wrongly_typed_content(server: Server, survives: Any) -> None:
    cm = policy_configmap()
    cm["data"] = {"policy.yaml": 42, "other": ["audit.k8s.io"]}
    message, _ = deny_reason(server, review(cm))
    assert "value is not a string" in message
