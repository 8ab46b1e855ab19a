"""`auditwarden certs`: make and inspect the webhook's serving certificates.

``webhook.certs`` (and so ``cryptography``) is imported only inside the command functions, so that
the other commands do not pay for it at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from webhook.certs import CertInfo

DEFAULT_DIR = "certs"
F = TypeVar("F", bound=Callable[..., Any])


def _days_option(flag: str, default: int, maximum: int, help_text: str) -> Callable[[F], F]:
    return click.option(flag, type=click.IntRange(min=1, max=maximum), default=default, show_default=True,
                        help=help_text)  # fmt: skip


@click.group()
def certs() -> None:
    """Make and inspect the webhook's TLS certificates (files named like a kubernetes.io/tls Secret)."""


@certs.command()
@click.option("--service", metavar="NAME", help="Name of the webhook's Service (its DNS names become SANs).")
@click.option("--namespace", metavar="NS", help="Namespace of the Service.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Directory to write tls.crt, tls.key, ca.crt and ca.key into.",
)
@_days_option("--days", 365, 3650, "Validity of the serving certificate.")
@_days_option("--ca-days", 3650, 36500, "Validity of a newly created CA.")
@click.option(
    "--san",
    "sans",
    multiple=True,
    metavar="NAME|IP",
    help="Extra subjectAltName (DNS name or IP address). Repeatable.",
)
@click.option(
    "--key-type",
    type=click.Choice(["ecdsa-p256", "rsa-2048"]),
    default="ecdsa-p256",
    show_default=True,
    help="Key algorithm of the CA and the serving certificate.",
)
@click.option(
    "--new-ca",
    is_flag=True,
    help="Always create a new CA. By default a usable ca.crt/ca.key in --out is reused, so the caBundle stays valid.",
)
def generate(
    service: str | None,
    namespace: str | None,
    out_dir: Path,
    days: int,
    ca_days: int,
    sans: tuple[str, ...],
    key_type: str,
    new_ca: bool,
) -> None:
    """Create a CA and a serving certificate for the webhook Service NAME in namespace NS.

    The SANs are NAME, NAME.NS, NAME.NS.svc and NAME.NS.svc.cluster.local plus every --san.
    Run it again to renew the serving certificate under the same CA.
    """
    from webhook.certs import CertError, KeyType, ca_bundle_b64, inspect
    from webhook.certs import generate as generate_certs

    if (service is None) != (namespace is None):
        raise click.UsageError("--service and --namespace go together: give both")
    if service is None and not sans:
        raise click.UsageError("give --service NAME --namespace NS (and optionally --san), or at least one --san")
    key: KeyType = "rsa-2048" if key_type == "rsa-2048" else "ecdsa-p256"
    try:
        paths = generate_certs(
            out_dir,
            service=service,
            namespace=namespace,
            sans=sans,
            days=days,
            key_type=key,
            ca_days=ca_days,
            reuse_ca=not new_ca,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except (CertError, OSError) as exc:
        raise click.ClickException(f"{exc} (use --new-ca to replace the CA)") from None

    leaf = inspect(paths.cert)[0]
    ca = inspect(paths.ca)[0]
    click.echo(f"Wrote {paths.cert}, {paths.key} (mode 0600) in {paths.directory}/")
    if paths.ca_reused:
        click.echo(f"Reused the CA in {paths.ca} (the caBundle is unchanged); expires {_date(ca.not_after)}")
    else:
        click.echo(f"Created a new CA: {paths.ca}, {paths.ca_key} (mode 0600); expires {_date(ca.not_after)}")
    click.echo(f"Serving certificate: {leaf.subject}")
    click.echo(f"  SANs: {', '.join(leaf.sans)}")
    click.echo(f"  key: {leaf.key_type}; expires {_date(leaf.not_after)} ({leaf.days_left()} days)")
    if service is not None and namespace is not None:
        secret = f"{service}-tls"
        click.echo("")
        click.echo("To use them with the Helm chart (tls.existingSecret; the chart never modifies that Secret):")
        click.echo(
            f"  kubectl -n {namespace} create secret generic {secret} --type=kubernetes.io/tls "
            f"--from-file=tls.crt={paths.cert} --from-file=tls.key={paths.key} --from-file=ca.crt={paths.ca}"
        )
        click.echo(
            f"  helm install auditwarden charts/auditwarden -n {namespace} --set fullnameOverride={service} "
            f"--set tls.existingSecret={secret} --set tls.caBundle=$(base64 -w0 < {paths.ca})"
        )
    click.echo(f"caBundle: {ca_bundle_b64(paths.ca)}")
    click.echo(f"Never commit {paths.key.name} or {paths.ca_key.name}.", err=True)


@certs.command("inspect")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def inspect_cmd(paths: tuple[Path, ...], fmt: str) -> None:
    """Show subjects, SANs and expiry of PEM certificates (default: certs/tls.crt and certs/ca.crt).

    Exits 1 when a file cannot be read or a certificate has expired or is not yet valid.
    """
    from webhook.certs import CertError, describe, issued_by, load_certificates

    targets = list(paths) or [Path(DEFAULT_DIR, "tls.crt"), Path(DEFAULT_DIR, "ca.crt")]
    failed = False
    loaded: list[tuple[Path, list[Any]]] = []
    report: list[dict[str, Any]] = []
    for path in targets:
        try:
            certificates = load_certificates(path)
        except CertError as exc:
            hint = " (make them with: auditwarden certs generate --service NAME --namespace NS)" if not paths else ""
            click.echo(f"error: {exc}{hint}", err=True)
            failed = True
            report.append({"path": str(path), "error": str(exc)})
            continue
        loaded.append((path, certificates))
        entries = []
        for cert in certificates:
            info = describe(cert)
            failed = failed or info.expired() or info.not_yet_valid()
            entries.append(info)
        report.append({"path": str(path), "certificates": [_as_json(i) for i in entries]})
        if fmt == "text":
            _print_text(path, entries)

    # Which of the given files' certificates were signed by a CA certificate in another given file.
    chains: list[dict[str, str]] = []
    for path, certificates in loaded:
        for other, cas in loaded:
            if other == path:
                continue
            for ca in cas:
                if describe(ca).is_ca and any(issued_by(c, ca) for c in certificates if c != ca):
                    chains.append({"certificate": str(path), "issuer": str(other)})
                    break

    if fmt == "json":
        click.echo(json.dumps({"files": report, "signedBy": chains}, indent=2))
    else:
        for link in chains:
            click.echo(f"{link['certificate']} is signed by the CA in {link['issuer']}")
    if failed:
        raise SystemExit(1)


def _print_text(path: Path, infos: list[CertInfo]) -> None:
    for n, info in enumerate(infos):
        label = f"{path}" if len(infos) == 1 else f"{path} [{n}]"
        click.echo(f"{label}:")
        click.echo(f"  subject:     {info.subject}")
        click.echo(f"  issuer:      {info.issuer}{' (self-signed)' if info.self_signed else ''}")
        click.echo(f"  SANs:        {', '.join(info.sans) if info.sans else '(none)'}")
        click.echo(f"  CA:          {'yes' if info.is_ca else 'no'}")
        click.echo(f"  key:         {info.key_type}")
        click.echo(f"  not before:  {_date(info.not_before)}")
        click.echo(f"  not after:   {_date(info.not_after)}")
        click.echo(f"  days left:   {_days_left(info)}")
        click.echo(f"  SHA-256:     {info.fingerprint_sha256}")


def _days_left(info: CertInfo) -> str:
    if info.expired():
        return f"EXPIRED {-info.days_left()} days ago"
    if info.not_yet_valid():
        return f"{info.days_left()} (NOT YET VALID)"
    return str(info.days_left())


def _date(value: Any) -> str:
    return str(value.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _as_json(info: CertInfo) -> dict[str, Any]:
    return {
        "subject": info.subject,
        "issuer": info.issuer,
        "sans": info.sans,
        "isCA": info.is_ca,
        "selfSigned": info.self_signed,
        "keyType": info.key_type,
        "notBefore": info.not_before.isoformat(),
        "notAfter": info.not_after.isoformat(),
        "daysLeft": info.days_left(),
        "expired": info.expired(),
        "serial": info.serial,
        "fingerprintSHA256": info.fingerprint_sha256,
    }
