"""Certificates for the webhook's HTTPS endpoint: a small CA and a serving certificate signed by it.

The files are named like the keys of a ``kubernetes.io/tls`` Secret, so a directory written here can
be turned into the Secret the Helm chart mounts (``tls.existingSecret``) without renaming anything:

``tls.crt``  the serving certificate (PEM)
``tls.key``  its private key (PKCS#8 PEM, mode 0600)
``ca.crt``   the CA certificate; base64 of this file is the webhook's ``caBundle``
``ca.key``   the CA's private key (mode 0600), kept so that the serving certificate can be
             renewed without changing the ``caBundle``; it never goes into the Secret

The kube-apiserver verifies a webhook's certificate with Go's ``crypto/x509``: the names it dials
must be subjectAltNames (the Common Name is ignored), the CA needs BasicConstraints CA=true and the
serving certificate an ExtendedKeyUsage of serverAuth. Python's ``ssl`` (OpenSSL 3) additionally
insists on Authority/Subject Key Identifiers. Everything here satisfies both.

This module imports ``cryptography``; the CLI imports it only inside the ``certs`` commands and
``serve`` so that other commands start fast.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ecdsa-p256", "rsa-2048"]
KEY_TYPES: tuple[KeyType, ...] = ("ecdsa-p256", "rsa-2048")

#: Names of the files, as in a kubernetes.io/tls Secret (plus the CA key, which stays local).
TLS_CRT = "tls.crt"
TLS_KEY = "tls.key"
CA_CRT = "ca.crt"
CA_KEY = "ca.key"

#: SANs of the certificate ``auditwarden serve`` creates for local development.
LOCAL_DEV_SANS: tuple[str, ...] = ("localhost", "127.0.0.1")

#: Backdate ``notBefore`` a little so that a peer whose clock lags still accepts a fresh certificate.
CLOCK_SKEW = dt.timedelta(minutes=5)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class CertError(Exception):
    """A certificate or key file is missing, unreadable, or unusable for what was asked."""


@dataclass(frozen=True)
class CertPaths:
    """Where :func:`generate` wrote its files."""

    directory: Path
    cert: Path
    key: Path
    ca: Path
    ca_key: Path
    #: True when an existing CA in the directory was reused (the caBundle did not change).
    ca_reused: bool = False

    @classmethod
    def in_dir(cls, directory: Path, *, ca_reused: bool = False) -> CertPaths:
        return cls(
            directory=directory,
            cert=directory / TLS_CRT,
            key=directory / TLS_KEY,
            ca=directory / CA_CRT,
            ca_key=directory / CA_KEY,
            ca_reused=ca_reused,
        )


@dataclass(frozen=True)
class CertInfo:
    """What :func:`inspect` tells about one certificate."""

    subject: str
    issuer: str
    sans: list[str]
    not_before: dt.datetime
    not_after: dt.datetime
    is_ca: bool
    key_type: str
    fingerprint_sha256: str
    serial: str
    self_signed: bool

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days until ``not_after`` (negative once expired)."""
        now = now or dt.datetime.now(dt.UTC)
        return (self.not_after - now) // dt.timedelta(days=1)

    def expired(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.UTC)
        return now >= self.not_after

    def not_yet_valid(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.UTC)
        return now < self.not_before


# --------------------------------------------------------------------------------------------
# Generating


def service_sans(service: str, namespace: str) -> list[str]:
    """The DNS names by which the kube-apiserver (and anything in the cluster) reaches a Service."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def generate(
    out_dir: str | os.PathLike[str],
    *,
    service: str | None = None,
    namespace: str | None = None,
    sans: Iterable[str] = (),
    days: int = 365,
    key_type: KeyType = "ecdsa-p256",
    ca_days: int = 3650,
    reuse_ca: bool = True,
    now: dt.datetime | None = None,
) -> CertPaths:
    """Write a CA and a serving certificate signed by it into ``out_dir``.

    With ``service`` and ``namespace`` the serving certificate's SANs are the Service's DNS names
    (``NAME``, ``NAME.NS``, ``NAME.NS.svc``, ``NAME.NS.svc.cluster.local``), then ``sans``; a SAN
    that parses as an IP address becomes an IP SAN.

    When ``reuse_ca`` is true and ``out_dir`` already holds a usable CA (``ca.crt`` and the
    matching ``ca.key``, a CA certificate that is valid now), that CA signs the new serving
    certificate, so the ``caBundle`` registered with the cluster stays valid: this is how a
    serving certificate is renewed. Otherwise a new CA is created.

    The serving certificate never outlives its CA: its validity is cut at the CA's ``notAfter``.
    Raises ``ValueError`` for bad arguments and :class:`CertError` for an unusable existing CA.
    """
    if (service is None) != (namespace is None):
        raise ValueError("service and namespace go together: give both or neither")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    if ca_days < 1:
        raise ValueError(f"ca_days must be at least 1, not {ca_days}")
    if key_type not in KEY_TYPES:
        raise ValueError(f"key type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")

    names: list[str] = []
    if service is not None and namespace is not None:
        _check_dns_label(service, "service")
        _check_dns_label(namespace, "namespace")
        names.extend(service_sans(service, namespace))
    for san in sans:
        san = san.strip()
        if not san:
            raise ValueError("a SAN must not be empty")
        if san not in names:
            names.append(san)
    if not names:
        raise ValueError("nothing to name the certificate after: give service and namespace, or SANs")
    for n in names:
        _san_entry(n)  # a ValueError before anything is written

    now = now or dt.datetime.now(dt.UTC)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths = CertPaths.in_dir(directory)

    ca_cert: x509.Certificate | None = None
    ca_key: PrivateKey | None = None
    if reuse_ca and paths.ca.exists() and paths.ca_key.exists():
        ca_cert, ca_key = _load_usable_ca(paths.ca, paths.ca_key, now)
    if ca_cert is not None and ca_key is not None:
        authority = Authority(Issued(ca_cert, ca_key))
        ca_reused = True
    else:
        label = f"{service}.{namespace}" if service is not None else names[0]
        authority = Authority.new(f"auditwarden CA for {label}", days=ca_days, key_type=key_type, now=now)
        ca_reused = False

    common_name = f"{service}.{namespace}.svc" if service is not None else names[0]
    leaf = authority.server(common_name, names, days=days, key_type=key_type, now=now)

    if not ca_reused:
        authority.ca.write(paths.ca, paths.ca_key)
    # Key before certificate (Issued.write): a server that reloads on a changed tls.crt then finds the matching key.
    leaf.write(paths.cert, paths.key)
    return CertPaths.in_dir(directory, ca_reused=ca_reused)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, in memory."""

    cert: x509.Certificate
    key: PrivateKey

    def write(self, cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> None:
        """PEM files; the key first and private (0600), each written atomically."""
        _write_private(Path(key_path), _key_pem(self.key))
        _write_public(Path(cert_path), self.cert.public_bytes(serialization.Encoding.PEM))


class Authority:
    """A certificate authority in memory: serving certificates, and client certificates whose
    subject carries the user (CN) and groups (O), as kube-apiserver's x509 authenticator reads
    them.  :func:`generate` writes a CA and one serving certificate to files; this is for
    callers (test clusters) that need more than that."""

    def __init__(self, ca: Issued) -> None:
        self.ca = ca

    @classmethod
    def new(
        cls, common_name: str, *, days: int = 3650, key_type: KeyType = "ecdsa-p256", now: dt.datetime | None = None
    ) -> Authority:
        key = _new_key(key_type)
        return cls(Issued(_make_ca(key, common_name, now or dt.datetime.now(dt.UTC), days), key))

    def server(
        self, common_name: str, sans: Iterable[str], *, days: int = 365, key_type: KeyType = "ecdsa-p256",
        now: dt.datetime | None = None,
    ) -> Issued:  # fmt: skip
        """A serving certificate for ``sans`` (DNS names or IP addresses)."""
        key = _new_key(key_type)
        entries = [_san_entry(n) for n in sans]
        cert = _make_leaf(key, common_name, entries, self.ca.cert, self.ca.key, now or dt.datetime.now(dt.UTC), days)
        return Issued(cert, key)

    def client(
        self, user: str, groups: Sequence[str] = (), *, days: int = 365, key_type: KeyType = "ecdsa-p256",
        now: dt.datetime | None = None,
    ) -> Issued:  # fmt: skip
        """A client certificate for ``user`` (CN) in ``groups`` (one O each, nothing else)."""
        key = _new_key(key_type)
        cert = _make_leaf(key, user, [], self.ca.cert, self.ca.key, now or dt.datetime.now(dt.UTC), days,
                          organizations=groups, usage=ExtendedKeyUsageOID.CLIENT_AUTH)  # fmt: skip
        return Issued(cert, key)


def write_private_key(path: str | os.PathLike[str], key: PrivateKey) -> None:
    """A private key as PKCS#8 PEM, mode 0600, written atomically."""
    _write_private(Path(path), _key_pem(key))


def ensure_local_dev_certs(directory: str | os.PathLike[str]) -> CertPaths:
    """The certificates ``auditwarden serve`` uses when given no TLS options.

    When ``directory/tls.crt`` and ``directory/tls.key`` exist (and the certificate has not
    expired) they are used as they are. Otherwise a CA and a serving certificate for
    ``localhost`` and ``127.0.0.1`` are created there (an existing usable CA is reused).
    """
    d = Path(directory)
    paths = CertPaths.in_dir(d)
    if paths.cert.exists() and paths.key.exists():
        try:
            infos = inspect(paths.cert)
        except CertError:
            infos = []
        if infos and not infos[0].expired():
            return paths
        if infos:  # expired: renew rather than serve something every client refuses
            return generate(d, sans=LOCAL_DEV_SANS)
        raise CertError(f"{paths.cert}: not a PEM certificate; remove it (and {paths.key}) to have new ones made")
    return generate(d, sans=LOCAL_DEV_SANS)


def _check_dns_label(value: str, what: str) -> None:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
        raise ValueError(f"{what} {value!r} is not a DNS-1123 label (lower case letters, digits and '-', at most 63)")


def _san_entry(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    if any(c.isspace() for c in name) or "/" in name or ":" in name:
        raise ValueError(f"SAN {name!r} is neither a DNS name nor an IP address")
    return x509.DNSName(name)


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _key_usage(*, signs_certificates: bool, enciphers_keys: bool) -> x509.KeyUsage:
    """Digital signatures always; a CA signs certificates and CRLs; an RSA leaf enciphers keys (TLS 1.2 RSA kex)."""
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=enciphers_keys, data_encipherment=False,
        key_agreement=False, key_cert_sign=signs_certificates, crl_sign=signs_certificates, encipher_only=False,
        decipher_only=False,
    )  # fmt: skip


def _make_ca(key: PrivateKey, common_name: str, now: dt.datetime, days: int) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "auditwarden"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True, enciphers_keys=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )


def _make_leaf(
    key: PrivateKey,
    common_name: str,
    sans: Sequence[x509.GeneralName],
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    now: dt.datetime,
    days: int,
    *,
    organizations: Sequence[str] = ("auditwarden",),
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
) -> x509.Certificate:
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(signs_certificates=False, enciphers_keys=isinstance(key, rsa.RSAPrivateKey)), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _load_usable_ca(
    cert_path: Path, key_path: Path, now: dt.datetime
) -> tuple[x509.Certificate | None, PrivateKey | None]:
    """The CA in ``cert_path``/``key_path``, or (None, None) when it is expired or not a CA."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertError(f"cannot reuse the CA in {cert_path.parent}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertError(f"{key_path}: unsupported CA key type {type(key).__name__}")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise CertError(f"{key_path} does not belong to {cert_path}")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = bc.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertError(f"{cert_path} is not a CA certificate")
    # A CA that is expired, or too close to its end to be worth signing with, is replaced.
    if now + dt.timedelta(days=1) >= cert.not_valid_after_utc:
        return None, None
    return cert, key


def _public_der(public_key: object) -> bytes:
    assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_private(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _write_atomic(path, data, 0o644)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file in the same directory and rename it into place.

    A server watching the file sees either the old or the new content, never half of it; the
    temporary file is created with ``mode`` already set, so a key is never readable by others.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# Reading


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every PEM certificate in a file (a bundle may hold several)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CertError(f"{p}: {exc.strerror or exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise CertError(f"{p}: no PEM certificate in it")
    return certs


def inspect(path: str | os.PathLike[str]) -> list[CertInfo]:
    """Describe every certificate in a PEM file."""
    return [describe(c) for c in load_certificates(path)]


def describe(cert: x509.Certificate) -> CertInfo:
    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in san_ext.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in san_ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=sans,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
        key_type=_key_type_name(cert.public_key()),
        fingerprint_sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        serial=format(cert.serial_number, "x"),
        self_signed=cert.subject == cert.issuer,
    )


def _key_type_name(public_key: object) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(
            public_key.curve.name, public_key.curve.name
        )
        return f"ECDSA {curve}"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(public_key, dsa.DSAPublicKey):
        return f"DSA {public_key.key_size}"
    return type(public_key).__name__


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether ``ca`` signed ``cert`` (names and signature; validity dates are not looked at)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def key_matches(cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> bool:
    """Whether the private key in ``key_path`` belongs to the first certificate in ``cert_path``."""
    cert = load_certificates(cert_path)[0]
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertError(f"{key_path}: {exc}") from None
    pub = key.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return False
    cert_pub = cert.public_key()
    if not isinstance(cert_pub, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return False
    return _public_der(pub) == _public_der(cert_pub)


def ca_bundle_b64(ca_path: str | os.PathLike[str]) -> str:
    """The value for a webhook's ``clientConfig.caBundle`` (or the chart's ``tls.caBundle``).

    That is base64 of the PEM file itself. Fails when the file holds no certificate, so that a
    wrong path never ends up registered as an empty or garbage bundle.
    """
    certs = load_certificates(ca_path)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    return base64.b64encode(pem).decode("ascii")
