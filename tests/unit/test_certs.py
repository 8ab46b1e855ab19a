"""`auditwarden certs`: what it writes is verified by real TLS handshakes, as the kube-apiserver would.

The apiserver dials a Service webhook as ``NAME.NS.svc`` (SNI) and trusts only the ``caBundle``;
here a Python ``ssl`` server serves tls.crt/tls.key on loopback and a client that trusts only
ca.crt connects with that server name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support import tls
from webhook import certs
from webhook.cli import main

SERVICE, NAMESPACE = "auditwarden", "auditwarden-system"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def handshake(cert: Path, key: Path, ca: Path, server_name: str, *, connect_ip: bool = False) -> str:
    """Complete a TLS handshake on 127.0.0.1; return what the server sent. Raises on failure."""
    client_ctx = ssl.create_default_context(cafile=str(ca))  # trusts only ca.crt
    assert client_ctx.check_hostname and client_ctx.verify_mode == ssl.CERT_REQUIRED
    done = tls.handshake(tls.server_context(cert, key), client_ctx, server_name)
    assert done.version in {"TLSv1.2", "TLSv1.3"}
    if not connect_ip:
        assert done.sni == [server_name]
    return done.received.decode()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs") / "certs"
    code, stdout, stderr = run(
        "certs", "generate", "--service", SERVICE, "--namespace", NAMESPACE, "--out", str(out), "--san", "10.96.0.42"
    )
    assert code == 0, stdout + stderr
    return out


# ------------------------------------------------------------------------------------------
# The handshake


@pytest.mark.parametrize(
    "name",
    [f"{SERVICE}.{NAMESPACE}.svc", SERVICE, f"{SERVICE}.{NAMESPACE}", f"{SERVICE}.{NAMESPACE}.svc.cluster.local"],
)
def test_handshake_succeeds_for_every_service_name(generated: Path, name: str) -> None:
    assert handshake(generated / "tls.crt", generated / "tls.key", generated / "ca.crt", name) == "hello over TLS"


def test_handshake_succeeds_for_an_ip_san(generated: Path) -> None:
    assert handshake(generated / "tls.crt", generated / "tls.key", generated / "ca.crt", "10.96.0.42", connect_ip=True)


@pytest.mark.parametrize(
    "name", [f"{SERVICE}.other.svc", f"evil.{NAMESPACE}.svc", "localhost", f"x.{SERVICE}.{NAMESPACE}.svc"]
)
def test_handshake_fails_for_a_name_not_in_the_sans(generated: Path, name: str) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|IP address mismatch"):
        handshake(generated / "tls.crt", generated / "tls.key", generated / "ca.crt", name)


def test_handshake_fails_against_another_ca(generated: Path, tmp_path: Path) -> None:
    other = certs.generate(tmp_path / "other", service=SERVICE, namespace=NAMESPACE)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        handshake(generated / "tls.crt", generated / "tls.key", other.ca, f"{SERVICE}.{NAMESPACE}.svc")


def test_rsa_keys_handshake_too(tmp_path: Path) -> None:
    code, out, err = run(
        "certs", "generate", "--service", "w", "--namespace", "n", "--out", str(tmp_path), "--key-type", "rsa-2048"
    )
    assert code == 0, out + err
    assert handshake(tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt", "w.n.svc")
    leaf = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey)
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment


# ------------------------------------------------------------------------------------------
# What is written


def test_files_are_named_like_a_tls_secret_and_keys_are_private(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    for key in ("tls.key", "ca.key"):
        assert stat.S_IMODE(os.stat(generated / key).st_mode) == 0o600, key
    for cert in ("tls.crt", "ca.crt"):
        assert stat.S_IMODE(os.stat(generated / cert).st_mode) == 0o644, cert
    assert (generated / "tls.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_key_permissions_hold_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        paths = certs.generate(tmp_path, sans=["localhost"])
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.ca_key.stat().st_mode) == 0o600


def test_serving_certificate_extensions(generated: Path) -> None:
    leaf = x509.load_pem_x509_certificate((generated / "tls.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((generated / "ca.crt").read_bytes())
    ext = leaf.extensions
    sans = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        SERVICE,
        f"{SERVICE}.{NAMESPACE}",
        f"{SERVICE}.{NAMESPACE}.svc",
        f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
    ]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.96.0.42")]
    assert ext.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH]
    )
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert not ku.value.key_encipherment  # ECDSA
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    leaf.verify_directly_issued_by(ca)

    ca_bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_bc.critical and ca_bc.value.ca is True and ca_bc.value.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    days = (leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)).days
    assert 363 <= days <= 365


def test_generate_again_renews_under_the_same_ca(tmp_path: Path) -> None:
    first = certs.generate(tmp_path, service="w", namespace="n")
    ca_before, leaf_before = first.ca.read_bytes(), first.cert.read_bytes()
    code, out, _ = run("certs", "generate", "--service", "w", "--namespace", "n", "--out", str(tmp_path))
    assert code == 0 and "Reused the CA" in out
    assert first.ca.read_bytes() == ca_before
    assert first.cert.read_bytes() != leaf_before
    handshake(first.cert, first.key, first.ca, "w.n.svc")
    code, out, _ = run("certs", "generate", "--service", "w", "--namespace", "n", "--out", str(tmp_path), "--new-ca")
    assert code == 0 and "Created a new CA" in out
    assert first.ca.read_bytes() != ca_before


def test_days_option_and_ca_bound(tmp_path: Path) -> None:
    paths = certs.generate(tmp_path, sans=["x.example"], days=30, ca_days=10)
    [leaf] = certs.inspect(paths.cert)
    [ca] = certs.inspect(paths.ca)
    assert leaf.not_after <= ca.not_after  # never outlives its CA
    code, _, _ = run("certs", "generate", "--service", "w", "--namespace", "n", "--out", str(tmp_path), "--days", "7")
    assert code == 0
    assert 6 <= certs.inspect(tmp_path / "tls.crt")[0].days_left() <= 7


def test_ca_bundle_is_base64_of_the_pem(generated: Path) -> None:
    import base64

    bundle = certs.ca_bundle_b64(generated / "ca.crt")
    assert base64.b64decode(bundle) == (generated / "ca.crt").read_bytes()
    with pytest.raises(certs.CertError):
        certs.ca_bundle_b64(generated / "tls.key")


def test_key_matches(generated: Path, tmp_path: Path) -> None:
    assert certs.key_matches(generated / "tls.crt", generated / "tls.key")
    assert not certs.key_matches(generated / "tls.crt", generated / "ca.key")


# ------------------------------------------------------------------------------------------
# Usage errors exit 2


@pytest.mark.parametrize(
    "args",
    [
        ["--service", "w"],
        ["--namespace", "n"],
        [],
        ["--service", "W_rong", "--namespace", "n"],
        ["--service", "w", "--namespace", "n", "--days", "0"],
        ["--service", "w", "--namespace", "n", "--key-type", "dsa"],
        ["--service", "w", "--namespace", "n", "--san", "has space"],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    code, _, _ = run("certs", "generate", "--out", str(tmp_path / "c"), *args)
    assert code == 2
    assert not (tmp_path / "c" / "tls.key").exists()


# ------------------------------------------------------------------------------------------
# inspect


def test_inspect_shows_subjects_sans_and_expiry(generated: Path) -> None:
    code, out, _ = run("certs", "inspect", str(generated / "tls.crt"), str(generated / "ca.crt"))
    assert code == 0, out
    assert f"CN={SERVICE}.{NAMESPACE}.svc" in out
    assert f"{SERVICE}.{NAMESPACE}.svc.cluster.local" in out
    assert "10.96.0.42" in out
    assert "not after:" in out and "days left:" in out
    assert "CA:          yes" in out and "CA:          no" in out
    assert "ECDSA P-256" in out
    assert f"{generated / 'tls.crt'} is signed by the CA in {generated / 'ca.crt'}" in out


def test_inspect_defaults_to_the_certs_directory(
    generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("certs", "inspect")
    assert code == 1 and "certs/tls.crt" in err and "auditwarden certs generate" in err
    (tmp_path / "certs").mkdir()
    for name in ("tls.crt", "ca.crt"):
        (tmp_path / "certs" / name).write_bytes((generated / name).read_bytes())
    code, out, _ = run("certs", "inspect")
    assert code == 0
    assert "certs/tls.crt:" in out and "certs/ca.crt:" in out


def test_inspect_json(generated: Path) -> None:
    code, out, _ = run("certs", "inspect", "--format", "json", str(generated / "tls.crt"), str(generated / "ca.crt"))
    assert code == 0
    doc = json.loads(out)
    leaf = doc["files"][0]["certificates"][0]
    assert leaf["sans"][:1] == [SERVICE] and leaf["isCA"] is False and leaf["keyType"] == "ECDSA P-256"
    assert 363 <= leaf["daysLeft"] <= 365 and leaf["expired"] is False
    assert doc["signedBy"] == [{"certificate": str(generated / "tls.crt"), "issuer": str(generated / "ca.crt")}]


def test_inspect_flags_an_expired_certificate(tmp_path: Path) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    paths = certs.generate(tmp_path, sans=["old.example"], days=30, now=past)
    code, out, _ = run("certs", "inspect", str(paths.cert))
    assert code == 1
    assert "EXPIRED" in out


def test_inspect_refuses_a_non_certificate(generated: Path) -> None:
    code, _, err = run("certs", "inspect", str(generated / "tls.key"))
    assert code == 1 and "no PEM certificate" in err


# ------------------------------------------------------------------------------------------
# Local development certificates (`auditwarden serve` with no TLS options)


def test_local_dev_certs_are_made_once_and_reused(tmp_path: Path) -> None:
    paths = certs.ensure_local_dev_certs(tmp_path / "certs")
    [leaf] = certs.inspect(paths.cert)
    assert leaf.sans == ["localhost", "127.0.0.1"]
    handshake(paths.cert, paths.key, paths.ca, "localhost")
    handshake(paths.cert, paths.key, paths.ca, "127.0.0.1", connect_ip=True)
    before = paths.cert.read_bytes()
    again = certs.ensure_local_dev_certs(tmp_path / "certs")
    assert again.cert.read_bytes() == before


def test_local_dev_certs_are_renewed_when_expired(tmp_path: Path) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    old = certs.generate(tmp_path, sans=certs.LOCAL_DEV_SANS, days=30, now=past)
    expired = old.cert.read_bytes()
    fresh = certs.ensure_local_dev_certs(tmp_path)
    assert fresh.cert.read_bytes() != expired
    assert not certs.inspect(fresh.cert)[0].expired()


def test_certs_module_is_not_imported_by_other_commands() -> None:
    import subprocess
    import sys

    code = "import sys; from webhook.cli import main; assert 'cryptography' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_client_certificate_names_the_user_in_cn_and_each_group_in_o() -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = certs.Authority.new("test CA", days=2)
    issued = ca.client("jane", ["system:masters", "ops"], days=1)
    subject = issued.cert.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["jane"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters", "ops"]
    usage = issued.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    issued.cert.verify_directly_issued_by(ca.ca.cert)


def test_a_client_certificate_is_accepted_by_a_server_that_requires_one(tmp_path: Path) -> None:
    ca = certs.Authority.new("test CA", days=2)
    ca.ca.write(tmp_path / "ca.crt", tmp_path / "ca.key")
    ca.server("localhost", ["localhost", "127.0.0.1"], days=1).write(tmp_path / "s.crt", tmp_path / "s.key")
    ca.client("jane", ["ops"], days=1).write(tmp_path / "c.crt", tmp_path / "c.key")
    server = tls.server_context(tmp_path / "s.crt", tmp_path / "s.key")
    server.load_verify_locations(tmp_path / "ca.crt")
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    client.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    peer = tls.handshake(server, client, "localhost").client_cert
    assert peer is not None
    subject = [attr for rdn in peer["subject"] for attr in rdn]
    assert ("commonName", "jane") in subject and ("organizationName", "ops") in subject
