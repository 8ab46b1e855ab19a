"""``auditwarden scan``: judge what a running cluster already holds, read-only.

An admission webhook sees changes only; a cluster that was misconfigured before auditwarden was
installed stays invisible until someone edits it.  ``scan`` reads, with the caller's kubeconfig:

* ``kube-system/kubeadm-config`` (when kube-system is scanned);
* the kube-apiserver mirror Pods (their flags; the policy file's content through
  ``--policy-file-map``);
* every ConfigMap that may carry audit configuration (the webhook's own pre-filter decides,
  :func:`webhook.core.precheck.is_relevant`),

and judges each with the same :func:`webhook.core.verdict.judge` as ``check`` (a CREATE in
``enforce``).  The output is ``check``'s, with ``source`` naming the object (``ConfigMap
ns/name``, ``#data[key]`` added for a ConfigMap value).  Exit codes follow ``check``: 0 all
pass, 1 a violation, 2 when something could not be read.  A read that fails (forbidden, not
found, a timeout, TLS) is one clear line naming the object and, for a refusal, what to grant;
it never passes silently, and it never ends in a stack trace.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from webhook.cli.common import (
    context_options,
    judge_into,
    judge_providers,
    make_context,
    provider_option,
    with_providers,
)

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api

KUBE_SYSTEM = "kube-system"
PAGE = 250
TIMEOUT = (5, 30)  # connect, read: seconds


class ReadError(Exception):
    """One object or list that could not be read, said plainly."""


@click.command()
@context_options
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).",
)
@click.option("--context", "kube_context", help="Kubeconfig context to use (default: its current context).")
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Scan this namespace (repeatable).")
@click.option("--all-namespaces", "-A", is_flag=True, help="Scan every namespace (the default without --namespace).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "openreports"]),
    default="text",
    show_default=True,
    help="openreports: the results as OpenReports Report objects (a YAML List), one per judged object.",
)
@click.option(
    "--write-reports",
    is_flag=True,
    help="Also write the OpenReports Reports into the cluster: created, updated in place, and removed when no "
    "longer true (needs the OpenReports CRDs and write access to reports.openreports.io).",
)
@click.option(
    "--exit-zero",
    is_flag=True,
    help="Exit 0 even when a violation is found (the findings are in the output and the reports); 2 still means "
    "that something could not be read or written. The chart's report CronJob uses it: a finding is not a failed Job.",
)
@provider_option
def scan(
    profile: str,
    categories: str | None,
    kubernetes_version: str | None,
    policy_file_map: tuple[str, ...],
    kubeconfig: str | None,
    kube_context: str | None,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    fmt: str,
    write_reports: bool,
    exit_zero: bool,
    providers: tuple[str, ...],
) -> None:
    """Judge the audit configuration a cluster holds now (kubeadm-config, apiserver mirror Pods, ConfigMaps)."""
    from webhook.core.versions import format_version
    from webhook.report import Report, render

    if namespaces and all_namespaces:
        raise click.UsageError("--namespace and --all-namespaces go one without the other")
    ctx = make_context(profile, categories, kubernetes_version, policy_file_map)
    report = Report([], profile, format_version(ctx.kubernetes_version))
    try:
        api = _client(kubeconfig, kube_context)
    except ReadError as exc:
        report.unreadable.append(str(exc))
        api = None
    judged_providers = judge_providers(report, providers, ctx)
    judged: list[tuple[dict[str, Any], list[Any]]] = []
    scope = list(dict.fromkeys(namespaces)) or None  # None: every namespace
    if api is not None:
        for source, obj in _objects(api, scope, report.unreadable):
            before = len(report.results)
            judge_into(report, obj, source, ctx)
            judged.append((obj, report.results[before:]))
    reports: list[dict[str, Any]] = []
    if fmt == "openreports" or write_reports:
        from webhook.openreports import build_report

        reports = [build_report(obj, results) for obj, results in judged]
    if write_reports and api is not None:
        _write_reports(reports, scope, report.unreadable)
    if fmt == "openreports":
        import yaml

        click.echo(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": reports}, sort_keys=False), nl=False)
        for line in report.unreadable:
            click.echo(f"auditwarden scan: {line}", err=True)
    else:
        click.echo(with_providers(render(report, fmt, fmt == "text" and sys.stdout.isatty()), fmt, judged_providers))
    sys.exit(0 if exit_zero and report.exit_code == 1 else report.exit_code)


def _write_reports(reports: list[dict[str, Any]], scope: list[str] | None, problems: list[str]) -> None:
    """Create or update (in place) each Report; delete auditwarden's Reports in ``scope`` that are no longer true."""
    from kubernetes import client

    from webhook.openreports import API_VERSION, MANAGED_BY

    group, version = API_VERSION.split("/")
    api = client.CustomObjectsApi()
    wanted = set()
    for rep in reports:
        ns, name = rep["metadata"]["namespace"], rep["metadata"]["name"]
        wanted.add((ns, name))
        try:
            try:
                current: Any = api.get_namespaced_custom_object(
                    group, version, ns, "reports", name, _request_timeout=TIMEOUT
                )
            except Exception as exc:
                if getattr(exc, "status", None) != 404 or _crd_missing(exc):
                    raise
                api.create_namespaced_custom_object(group, version, ns, "reports", rep, _request_timeout=TIMEOUT)
            else:
                rep["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                api.replace_namespaced_custom_object(group, version, ns, "reports", name, rep, _request_timeout=TIMEOUT)
        except Exception as exc:
            problems.append(_report_problem(exc, f"write report {name} in namespace {ns}"))
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    targets: list[str | None] = list(scope) if scope else [None]
    for ns in targets:
        try:
            found: Any
            if ns is None:
                found = api.list_cluster_custom_object(group, version, "reports", label_selector=selector,
                                                       _request_timeout=TIMEOUT)  # fmt: skip
            else:
                found = api.list_namespaced_custom_object(group, version, ns, "reports", label_selector=selector,
                                                          _request_timeout=TIMEOUT)  # fmt: skip
            for item in found.get("items") or []:
                meta = item.get("metadata") or {}
                if (meta.get("namespace"), meta.get("name")) not in wanted:
                    api.delete_namespaced_custom_object(group, version, meta["namespace"], "reports", meta["name"],
                                                        _request_timeout=TIMEOUT)  # fmt: skip
        except Exception as exc:
            problems.append(
                _report_problem(
                    exc, f"remove stale reports {'in all namespaces' if ns is None else f'in namespace {ns}'}"
                )
            )


def _crd_missing(exc: Exception) -> bool:
    body = str(getattr(exc, "body", "") or "")
    return "the server could not find the requested resource" in body and '"name"' not in body


def _report_problem(exc: Exception, what: str) -> str:
    status = getattr(exc, "status", None)
    if status == 404 and _crd_missing(exc):
        return (f"cannot {what}: the OpenReports CRDs are not installed (reports.openreports.io); install them "
                "from OpenReports or Kyverno, or with the chart's reports.installCRDs=true")  # fmt: skip
    if status == 403:
        return (f"cannot {what}: forbidden. Grant the scanning identity get, list, create, update and delete on "
                "reports.openreports.io (the chart's reports ClusterRole has them)")  # fmt: skip
    if status is not None:
        return f"cannot {what}: the API server answered {status} {getattr(exc, 'reason', '') or ''}".rstrip()
    return f"cannot {what}: {type(exc).__name__}: {_first_line(exc)}"


def _client(kubeconfig: str | None, context: str | None) -> CoreV1Api:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig is None and context is None:
            try:
                config.load_kube_config()  # type: ignore[no-untyped-call]
            except (ConfigException, OSError):
                config.load_incluster_config()  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, ValueError) as exc:
        raise ReadError(f"cannot load the kubeconfig{f' {kubeconfig}' if kubeconfig else ''}: {exc}") from None
    return client.CoreV1Api()


def _objects(api: CoreV1Api, scope: list[str] | None, unreadable: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(source, object) of everything worth judging in ``scope`` (None: all namespaces), in a stable order.

    Each failed read is appended to ``unreadable`` (the exit code is then 2) and the scan goes on.
    """
    from webhook.core.documents import KUBEADM_CONFIG
    from webhook.core.precheck import is_mirror_pod, is_relevant

    kube_system = scope is None or KUBE_SYSTEM in scope
    if kube_system:
        try:
            kubeadm = _get(api, "configmaps", *KUBEADM_CONFIG)
        except ReadError as exc:
            unreadable.append(str(exc))
        else:
            if kubeadm is not None:
                yield f"ConfigMap {KUBEADM_CONFIG[0]}/{KUBEADM_CONFIG[1]}", kubeadm
    for kind, resource in (("Pod", "pods"), ("ConfigMap", "configmaps")):
        targets: list[str | None] = list(scope) if scope else [None]
        for ns in targets:
            try:
                items = list(_list(api, resource, ns))
            except ReadError as exc:
                unreadable.append(str(exc))
                continue
            for obj in sorted(items, key=_name):
                meta = obj.get("metadata") or {}
                ident = (meta.get("namespace"), meta.get("name"))
                if kind == "ConfigMap" and ident == KUBEADM_CONFIG:
                    continue  # judged above
                if kind == "Pod" and not is_mirror_pod(obj):
                    continue
                if is_relevant(kind, obj):
                    obj.setdefault("apiVersion", "v1")
                    obj.setdefault("kind", kind)
                    yield f"{kind} {ident[0]}/{ident[1]}", obj


def _name(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _get(api: CoreV1Api, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One ConfigMap (``resource`` names it in errors) as the API serves it (JSON), or None when absent."""
    try:
        return _decode(
            api.read_namespaced_config_map(name, namespace, _preload_content=False, _request_timeout=TIMEOUT)
        )
    except Exception as exc:  # ApiException, urllib3's connection/TLS/timeout errors
        if getattr(exc, "status", None) == 404:
            return None
        raise ReadError(_explain(exc, "get", resource, namespace, name)) from None


def _list(api: CoreV1Api, resource: str, namespace: str | None) -> Iterator[dict[str, Any]]:
    """Every object of ``resource`` in ``namespace`` (None: all), page by page."""
    lister: Any  # the client's four list methods take different positional arguments
    args: tuple[str, ...] = ()
    if namespace is None:
        lister = api.list_pod_for_all_namespaces if resource == "pods" else api.list_config_map_for_all_namespaces
    else:
        lister = api.list_namespaced_pod if resource == "pods" else api.list_namespaced_config_map
        args = (namespace,)
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": PAGE, "_preload_content": False, "_request_timeout": TIMEOUT}
        if token:
            kwargs["_continue"] = token
        try:
            page = _decode(lister(*args, **kwargs))
        except ReadError:
            raise
        except Exception as exc:
            raise ReadError(_explain(exc, "list", resource, namespace, None)) from None
        yield from page.get("items") or []
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def _decode(response: Any) -> dict[str, Any]:
    try:
        doc = json.loads(response.data)
    except (ValueError, AttributeError) as exc:
        raise ReadError(f"the API server answered something that is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ReadError("the API server answered something that is not a JSON object")
    return doc


def _explain(exc: Exception, verb: str, resource: str, namespace: str | None, name: str | None) -> str:
    """One line: which read failed, why, and for a refusal what to grant (docs: "Scanning an existing cluster")."""
    where = f"in namespace {namespace}" if namespace else "in all namespaces"
    what = f"{verb} {resource}{f' {name}' if name else ''} {where}"
    status = getattr(exc, "status", None)
    if status == 403:
        scope = f"a Role in {namespace}" if namespace else "a ClusterRole"
        return (f"cannot {what}: forbidden. Grant the scanning identity get and list on {resource} ({scope} "
                f"bound to it; the chart's scan ClusterRole has exactly these rules)")  # fmt: skip
    if status == 401:
        return f"cannot {what}: unauthorized (the kubeconfig's credentials were not accepted)"
    if status is not None:
        reason = getattr(exc, "reason", "") or ""
        return f"cannot {what}: the API server answered {status} {reason}".rstrip()
    return f"cannot {what}: {type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no detail"
