"""``auditwarden scan``: judge what a running cluster already holds, read-only.

An admission webhook sees changes only; a cluster that was misconfigured before auditwarden was
installed stays invisible until someone edits it.  ``scan`` reads, with the caller's kubeconfig:

* ``kube-system/kubeadm-config`` (when kube-system is scanned);
* the kube-apiserver mirror Pods (their flags; the policy file's content through
  ``--policy-file-map``);
* every ConfigMap that may carry audit configuration (the webhook's own pre-filter decides,
  :func:`webhook.core.precheck.is_relevant`);
* OpenShift's ``APIServer`` ``cluster`` (``apiservers.config.openshift.io``) when the API has it
  and every namespace is scanned (it is cluster-scoped),

and judges each with the same :func:`webhook.core.verdict.judge` as ``check`` (a CREATE in
``enforce``).  The output is ``check``'s, with ``source`` naming the object (``ConfigMap
ns/name``, ``#data[key]`` added for a ConfigMap value).  Exit codes follow ``check``: 0 all
pass, 1 a violation, 2 when something could not be read.  A read that fails (forbidden, not
found, a timeout, TLS) is one clear line naming the object and, for a refusal, what to grant;
it never passes silently, and it never ends in a stack trace.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

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

    from webhook.openreports import ReportFormat

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
    type=click.Choice(["text", "json", "sarif", "openreports", "wgpolicyk8s"]),
    default="text",
    show_default=True,
    help="openreports: the results as OpenReports Report/ClusterReport objects (a YAML List); wgpolicyk8s: the "
    "same as wg-policy PolicyReport/ClusterPolicyReport objects.",
)
@click.option(
    "--write-reports",
    is_flag=True,
    help="Also write the reports into the cluster: created, updated in place, and removed when no longer true "
    "(needs the report CRDs and write access to them; see --reports-format).",
)
@click.option(
    "--reports-format",
    type=click.Choice(["openreports", "wgpolicyk8s"]),
    default="openreports",
    show_default=True,
    help="The API --write-reports writes: openreports.io/v1alpha1 Report/ClusterReport, or wgpolicyk8s.io/v1alpha2 "
    "PolicyReport/ClusterPolicyReport.",
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
    reports_format: ReportFormat,
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
    cluster_wide = list(report.results)  # the providers' policies belong to no object
    judged: list[tuple[dict[str, Any], list[Any]]] = []
    scope = list(dict.fromkeys(namespaces)) or None  # None: every namespace
    if api is not None:
        for source, obj in _objects(api, scope, report.unreadable):
            before = len(report.results)
            judge_into(report, obj, source, ctx)
            judged.append((obj, report.results[before:]))
    if write_reports and api is not None:
        _write_reports(_reports(judged, cluster_wide, report.unreadable, scope, reports_format), scope,
                       report.unreadable, reports_format)  # fmt: skip
    if fmt in ("openreports", "wgpolicyk8s"):
        import yaml

        items = _reports(judged, cluster_wide, report.unreadable, scope, cast("ReportFormat", fmt))
        click.echo(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}, sort_keys=False), nl=False)
        for line in report.unreadable:
            click.echo(f"auditwarden scan: {line}", err=True)
    else:
        click.echo(with_providers(render(report, fmt, fmt == "text" and sys.stdout.isatty()), fmt, judged_providers))
    sys.exit(0 if exit_zero and report.exit_code == 1 else report.exit_code)


def _reports(
    judged: list[tuple[dict[str, Any], list[Any]]], cluster_wide: list[Any], unreadable: list[str],
    scope: list[str] | None, fmt: ReportFormat,
) -> list[dict[str, Any]]:  # fmt: skip
    """One report per judged object, and ``auditwarden-cluster`` when the whole cluster was scanned."""
    import time

    from webhook.openreports import build_cluster_report, build_report

    now = time.time()
    out = [build_report(obj, results, fmt=fmt, now=now) for obj, results in judged]
    if scope is None:
        out.append(build_cluster_report(cluster_wide, unreadable, fmt=fmt, now=now))
    return out


def _write_reports(reports: list[dict[str, Any]], scope: list[str] | None, problems: list[str],
                   fmt: ReportFormat) -> None:  # fmt: skip
    """Create or update (in place) each report; delete auditwarden's reports that are no longer true.

    A ``--namespace`` scan touches only the namespaced reports of those namespaces; cluster-scoped
    reports are written and pruned by a scan of the whole cluster.
    """
    from kubernetes import client

    from webhook.openreports import APIS, MANAGED_BY

    api = APIS[fmt]
    objects = client.CustomObjectsApi()
    wanted = set()
    for rep in reports:
        ns, name = rep["metadata"].get("namespace"), rep["metadata"]["name"]
        plural = api.plural if ns else api.cluster_plural
        where = f"{plural}.{api.group} {name}{f' in namespace {ns}' if ns else ''}"
        wanted.add((ns, name))
        try:
            _put(objects, api.group, api.version, plural, ns, name, rep)
        except Exception as exc:
            if not _namespace_terminating(exc):  # its objects are going away, and their report with them
                problems.append(_report_problem(exc, f"write {where}", api.group, plural))
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    targets: list[tuple[str, str | None]] = [(api.plural, ns) for ns in scope] if scope else [
        (api.plural, None), (api.cluster_plural, None)]  # fmt: skip
    for plural, ns in targets:
        try:
            found: Any
            if ns is None:
                found = objects.list_cluster_custom_object(api.group, api.version, plural, label_selector=selector,
                                                           _request_timeout=TIMEOUT)  # fmt: skip
            else:
                found = objects.list_namespaced_custom_object(api.group, api.version, ns, plural,
                                                              label_selector=selector,
                                                              _request_timeout=TIMEOUT)  # fmt: skip
            for item in found.get("items") or []:
                meta = item.get("metadata") or {}
                key = (meta.get("namespace") or None, meta.get("name"))
                if key in wanted:
                    continue
                if key[0] is None:
                    objects.delete_cluster_custom_object(api.group, api.version, plural, meta["name"],
                                                         _request_timeout=TIMEOUT)  # fmt: skip
                else:
                    objects.delete_namespaced_custom_object(api.group, api.version, key[0], plural, meta["name"],
                                                            _request_timeout=TIMEOUT)  # fmt: skip
        except Exception as exc:
            where = "in all namespaces" if ns is None else f"in namespace {ns}"
            problems.append(_report_problem(exc, f"remove stale {plural}.{api.group} {where}", api.group, plural))


def _put(objects: Any, group: str, version: str, plural: str, ns: str | None, name: str, rep: dict[str, Any]) -> None:
    """Create ``rep``, or replace the one there (same object: its uid stays, its resourceVersion moves)."""
    scoped = (ns,) if ns else ()
    kind = "namespaced" if ns else "cluster"
    try:
        current = getattr(objects, f"get_{kind}_custom_object")(group, version, *scoped, plural, name,
                                                                 _request_timeout=TIMEOUT)  # fmt: skip
    except Exception as exc:
        if getattr(exc, "status", None) != 404 or _crd_missing(exc):
            raise
        getattr(objects, f"create_{kind}_custom_object")(group, version, *scoped, plural, rep,
                                                         _request_timeout=TIMEOUT)  # fmt: skip
        return
    rep["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    getattr(objects, f"replace_{kind}_custom_object")(group, version, *scoped, plural, name, rep,
                                                      _request_timeout=TIMEOUT)  # fmt: skip


def _namespace_terminating(exc: Exception) -> bool:
    """A create refused by the NamespaceLifecycle admission plugin: the namespace is being deleted.

    The refusal is a 403 whose status details carry the cause ``NamespaceTerminating``
    (staging/src/k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go,
    ``v1.NamespaceTerminatingCause``).
    """
    if getattr(exc, "status", None) != 403:
        return False
    try:
        status = json.loads(getattr(exc, "body", "") or "{}")
    except ValueError:
        return False
    causes = ((status.get("details") or {}).get("causes") or []) if isinstance(status, dict) else []
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes)


def _crd_missing(exc: Exception) -> bool:
    body = str(getattr(exc, "body", "") or "")
    return "the server could not find the requested resource" in body and '"name"' not in body


def _report_problem(exc: Exception, what: str, group: str, plural: str) -> str:
    status = getattr(exc, "status", None)
    if status == 404 and _crd_missing(exc):
        origin = ("OpenReports or Kyverno, or with the chart's reports.installCRDs=true" if group == "openreports.io"
                  else "Kyverno or wg-policy, or with the chart's reports.installCRDs=true")  # fmt: skip
        return f"cannot {what}: the CRD {plural}.{group} is not installed; install it from {origin}"
    if status == 403:
        return (f"cannot {what}: forbidden. Grant the scanning identity get, list, create, update and delete on "
                f"{plural}.{group} (the chart's reports ClusterRole has them)")  # fmt: skip
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
    # one retry of a failed connection (urllib3's default is three): an unreachable server is said
    # within seconds, and after the first such failure no other read is tried (_not_tried)
    cfg = client.Configuration.get_default_copy()
    cfg.retries = 1
    client.Configuration.set_default(cfg)
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
    if scope is None:  # cluster-scoped: read when every namespace is scanned
        yield from _openshift_apiserver(unreadable)


OPENSHIFT = ("config.openshift.io", "v1", "apiservers", "cluster")  # group, version, plural, name


def _openshift_apiserver(unreadable: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """OpenShift's ``APIServer`` ``cluster`` (its ``spec.audit`` is what the operators render the policy from).

    Only when the API has it: a 404 (the group is not served, or it is and holds no ``cluster``:
    then no operator renders a policy from it) yields nothing, like an absent kubeadm-config; a
    403 is an unreadable line naming the grant, unless discovery shows the API is not served
    (RBAC refuses before the API server looks for the resource).  README "Scanning an existing cluster".
    """
    from kubernetes import client

    group, version, plural, name = OPENSHIFT
    api = client.CustomObjectsApi()
    what = f"get {plural}.{group} {name}"
    skipped = _not_tried(api, what)
    if skipped is not None:
        unreadable.append(skipped)
        return
    try:
        obj = _decode(api.get_cluster_custom_object(group, version, plural, name, _preload_content=False,
                                                    _request_timeout=TIMEOUT))  # fmt: skip
    except ReadError as exc:
        unreadable.append(f"cannot {what}: {exc}")
        return
    except Exception as exc:  # ApiException, urllib3's connection/TLS/timeout errors
        status = getattr(exc, "status", None)
        if status == 404 or (status == 403 and _served() is False):
            return
        grant = (f"get on {plural}.{group} (a ClusterRole bound to it; the chart's scan ClusterRole has this "
                 "rule)")  # fmt: skip
        unreadable.append(_explain(exc, what, grant, api))
        return
    yield f"APIServer {name}", obj


def _served() -> bool | None:
    """Does discovery list the ``config.openshift.io/v1`` group version? None when discovery fails too."""
    from kubernetes import client

    group, version, _, _ = OPENSHIFT
    try:
        doc = _decode(client.ApisApi().get_api_versions(_preload_content=False, _request_timeout=TIMEOUT))
    except Exception:
        return None
    return any(isinstance(g, dict) and g.get("name") == group
               and any(isinstance(v, dict) and v.get("version") == version for v in g.get("versions") or ())
               for g in doc.get("groups") or ())  # fmt: skip


def _name(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _get(api: CoreV1Api, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One ConfigMap (``resource`` names it in errors) as the API serves it (JSON), or None when absent."""
    what = _what("get", resource, namespace, name)
    skipped = _not_tried(api, what)
    if skipped is not None:
        raise ReadError(skipped)
    try:
        return _decode(
            api.read_namespaced_config_map(name, namespace, _preload_content=False, _request_timeout=TIMEOUT)
        )
    except Exception as exc:  # ApiException, urllib3's connection/TLS/timeout errors
        if getattr(exc, "status", None) == 404:
            return None
        raise ReadError(_explain(exc, what, _grant(resource, namespace), api)) from None


def _list(api: CoreV1Api, resource: str, namespace: str | None) -> Iterator[dict[str, Any]]:
    """Every object of ``resource`` in ``namespace`` (None: all), page by page."""
    what = _what("list", resource, namespace, None)
    skipped = _not_tried(api, what)
    if skipped is not None:
        raise ReadError(skipped)
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
            raise ReadError(_explain(exc, what, _grant(resource, namespace), api)) from None
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


#: API server (its URL) → why it could not be reached: later reads are not tried
_UNREACHABLE: dict[str, str] = {}


def _what(verb: str, resource: str, namespace: str | None, name: str | None) -> str:
    where = f"in namespace {namespace}" if namespace else "in all namespaces"
    return f"{verb} {resource}{f' {name}' if name else ''} {where}"


def _grant(resource: str, namespace: str | None) -> str:
    """What a refused get or list of ``resource`` needs (the chart's scan ClusterRole has it)."""
    scope = f"a Role in {namespace}" if namespace else "a ClusterRole"
    return f"get and list on {resource} ({scope} bound to it; the chart's scan ClusterRole has exactly these rules)"


def _not_tried(api: Any, what: str) -> str | None:
    """The line for a read not tried because its API server could not be reached before (None: try it)."""
    why = _UNREACHABLE.get(_host(api))
    return None if why is None else f"cannot {what}: not tried, as {why}"


def _host(api: Any) -> str:
    return str(getattr(getattr(getattr(api, "api_client", None), "configuration", None), "host", ""))


def _explain(exc: Exception, what: str, grant: str, api: Any) -> str:
    """One line: which read failed, why, and for a refusal what to ``grant`` (README "Scanning an existing cluster").

    A connection failure marks ``api``'s server unreachable: later reads are not tried (:func:`_not_tried`).
    """
    status = getattr(exc, "status", None)
    if status == 403:
        return f"cannot {what}: forbidden. Grant the scanning identity {grant}"
    if status == 401:
        return f"cannot {what}: unauthorized (the kubeconfig's credentials were not accepted)"
    if status is not None:
        reason = getattr(exc, "reason", "") or ""
        return f"cannot {what}: the API server answered {status} {reason}".rstrip()
    transport = _transport(exc)
    if transport is not None:
        _UNREACHABLE[_host(api)] = transport
        return f"cannot {what}: {transport}"
    return f"cannot {what}: {type(exc).__name__}: {_first_line(exc)}"


_SSL = re.compile(r"\[SSL: [A-Z_]+\][^(']*")


def _transport(exc: Exception) -> str | None:
    """Why the connection failed, in a few words (None: not a connection failure).

    The kubernetes client raises urllib3's errors as they are: a MaxRetryError wrapping a TLS,
    connect, timeout or protocol error, whose text repeats the pool, the URL and the retry count.
    """
    from urllib3 import exceptions as u3

    inner = exc.reason if isinstance(exc, u3.MaxRetryError) and exc.reason is not None else exc
    pool = getattr(exc, "pool", None) or getattr(inner, "pool", None)
    server = f"{pool.host}:{pool.port}" if pool is not None else "the API server"
    if isinstance(inner, u3.SSLError):
        detail = _SSL.search(str(inner))
        return f"TLS with {server} failed: {(detail.group(0) if detail else _first_line(inner)).strip()}"
    if isinstance(inner, u3.NewConnectionError):  # before ConnectTimeoutError: urllib3 derives it from that
        return f"cannot connect to {server}: {str(inner).split('connection: ', 1)[-1].strip()}"
    if isinstance(inner, u3.ConnectTimeoutError):
        return f"no connection to {server} within {TIMEOUT[0]} s"
    if isinstance(inner, u3.ReadTimeoutError):
        return f"timed out waiting for {server} to answer"
    if isinstance(inner, u3.ProtocolError | u3.HTTPError):
        return f"the connection to {server} failed: {_first_line(inner)}"
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no detail"
