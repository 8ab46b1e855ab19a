"""What ``POST /validate`` does with a request body, without Flask: :class:`Service`.

The Flask app (:mod:`webhook.service.app`) reads the body within its limits and hands it
here; tests and the benchmark call :meth:`Service.review` directly.  Per request:

1. **Strict parse** (:func:`webhook.service.admission.parse_review`) — a malformed review is
   a 400 with ``{"error": reason}``.
2. **Routing**, before any YAML is parsed: ConfigMaps (mode ``targets.configMaps.mode``)
   only when :func:`webhook.core.precheck.is_relevant` says the new or old version may carry
   audit configuration; Pods only when they are mirror Pods of kube-apiserver (mode
   ``targets.mirrorPods.mode``); a Pod DELETE is the kubelet's clean-up
   (:func:`webhook.core.precheck.is_kubelet_cleanup`); subresources, other groups and other
   kinds are allowed at once.
3. **Judging**, in steps: *lookup* (for a mirror Pod whose ``--audit-policy-file`` is mapped
   in ``policySources``, the policy text from the ConfigMap — a failed lookup becomes a
   finding), *cache* (a memo of verdicts by content), *isolation* (large bodies in a
   bounded child process, :mod:`webhook.service.isolation`; a missed deadline becomes a
   finding), *verdict* (:func:`webhook.core.verdict.judge`, which alone applies the mode and
   the break-glass exemption), *response* (:func:`webhook.service.admission.build_response`),
   *log* (one JSON line) and *metrics*.

Nothing turns into an HTTP 500: an unexpected error while judging is a finding too, judged
like a missed deadline — denied unless the target's mode is ``warn`` or the requester is
exempt.  Dry-run requests are judged identically and leave no trace: no gauge update, no
cache write.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from webhook.core.findings import Finding
from webhook.core.precheck import is_kubelet_cleanup, is_mirror_pod, is_relevant
from webhook.core.verdict import NO_FACTS, Context, Facts, Mode, Operation, Verdict
from webhook.service import metrics
from webhook.service.admission import (
    AdmissionRequest,
    AdmissionReview,
    BadReview,
    ErrorBody,
    allowed_response,
    build_response,
    parse_review,
)
from webhook.service.cache import VerdictCache
from webhook.service.config import ServiceConfig
from webhook.service.isolation import AnalysisFailed, Analyzer, Case
from webhook.service.kube import PolicySourceError, PolicySources, audit_policy_file

__all__ = ["DEADLINE_MARGIN_SECONDS", "Outcome", "Service", "parse_timeout"]

#: Kept free of the apiserver's own timeout so the answer arrives before it gives up.
DEADLINE_MARGIN_SECONDS = 0.5
_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
INTERNAL_ERROR = (
    "auditwarden could not analyse this object (internal error; see the auditwarden log). "
    "What cannot be analysed is refused to be safe"
)

log = logging.getLogger("auditwarden.admission")


#: The duration histogram's ``kind`` label: what was asked about (``invalid``: not an AdmissionReview).
KindLabel = Literal["ConfigMap", "Pod", "other", "invalid"]


@dataclass
class Outcome:
    """What the service answered, for the route (HTTP status, JSON body) and for tests."""

    status: int
    body: AdmissionReview | ErrorBody
    verdict: Verdict | None = None
    kind: KindLabel = "invalid"


def parse_timeout(raw: str | None) -> float | None:
    """The apiserver's ``?timeout=10s`` (Go duration, rounded up to seconds) in seconds."""
    if not raw:
        return None
    m = _GO_DURATION.match(raw.strip())
    if not m:
        return None
    value = float(m.group(1))
    unit = m.group(2) or "s"
    return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value


@dataclass(frozen=True)
class _Judging:
    """One routed request, as the judging steps need it."""

    req: AdmissionRequest
    kind: str
    operation: Operation
    mode: Mode
    new: dict[str, Any] | None
    old: dict[str, Any] | None
    exempted_by: str | None
    dry_run: bool


@dataclass(frozen=True)
class _Lookup:
    """The lookup step's result: the context to judge with, what went wrong, where it read from."""

    context: Context
    facts: Facts = NO_FACTS
    notes: tuple[str, ...] = ()


class Service:
    """Everything ``/validate`` does, without Flask (so tests can call it directly).

    Its parts are injected: the analyzer (inline or isolated judging), the ``policySources``
    reader and the verdict cache default to the configuration's own.
    """

    def __init__(
        self,
        config: ServiceConfig,
        context: Context,
        *,
        analyzer: Analyzer | None = None,
        sources: PolicySources | None = None,
        cache: VerdictCache | None = None,
    ) -> None:
        self.config = config
        self.context = context
        self.cache = VerdictCache() if cache is None else cache
        self.analyzer = analyzer or Analyzer(
            isolate_above_bytes=config.isolate_above_bytes, timeout_seconds=config.analysis_timeout_seconds
        )
        self.sources = sources or PolicySources(config.policy_sources, ttl_seconds=config.policy_source_ttl_seconds)

    # ------------------------------------------------------------------ entry point

    def review(self, body: bytes, *, timeout: float | None = None, started: float | None = None) -> Outcome:
        started = time.monotonic() if started is None else started
        budget = self.config.analysis_timeout_seconds
        if timeout is not None:
            budget = min(budget, max(timeout - DEADLINE_MARGIN_SECONDS, 0.2))
        deadline = started + budget
        try:
            req = parse_review(body)
        except BadReview as exc:
            metrics.BAD_REQUESTS.labels(exc.code).inc()
            log.info("bad AdmissionReview", extra={"fields": {"status": 400, "reason": exc.reason, "code": exc.code}})
            return Outcome(400, {"error": exc.reason})
        kind = req["kind"]["kind"]
        kind_label: KindLabel = "ConfigMap" if kind == "ConfigMap" else "Pod" if kind == "Pod" else "other"
        operation = req["operation"]
        mode_label = "none"
        try:
            routed = self._route(req)
            if routed is None:
                metrics.REQUESTS.labels(kind_label, operation, "skip", mode_label).inc()
                return Outcome(200, allowed_response(req["uid"]), kind=kind_label)
            mode_label = routed.mode
            outcome = self._judge(routed, size=len(body), deadline=deadline)
            verdict_label: str = outcome.verdict.decision if outcome.verdict is not None else "error"
        except Exception:  # never an HTTP 500: judge the failure by the mode, say so, log the traceback
            log.exception("internal error while judging", extra={"fields": _who(req)})
            metrics.ANALYSIS_FAILURES.labels("internal").inc()
            outcome = self._internal_error(req, mode_label)
            verdict_label = "error"
        metrics.REQUESTS.labels(kind_label, operation, verdict_label, mode_label).inc()
        outcome.kind = kind_label
        return outcome

    # --------------------------------------------------------------------- routing

    def _route(self, req: AdmissionRequest) -> _Judging | None:
        """The request to judge, or None when it is allowed at once."""
        gvk = req["kind"]
        operation = req["operation"]
        if operation == "CONNECT" or gvk.get("group", "") != "" or req.get("subResource"):
            return None
        kind = gvk["kind"]
        new = None if operation == "DELETE" else req.get("object")
        old = None if operation == "CREATE" else req.get("oldObject")
        mode: Mode
        if kind == "ConfigMap":
            if not (is_relevant("ConfigMap", new) or is_relevant("ConfigMap", old)):
                return None
            mode = self.config.config_maps_mode
        elif kind == "Pod":
            if is_kubelet_cleanup(kind, operation) or not is_mirror_pod(new) or not is_relevant("Pod", new):
                return None
            mode = self.config.mirror_pods_mode
        else:
            return None
        user = req.get("userInfo") or {}
        return _Judging(
            req=req, kind=kind, operation=operation, mode=mode, new=new, old=old,
            exempted_by=self.config.exemptions.match(user.get("username"), user.get("groups") or []),
            dry_run=bool(req.get("dryRun")),
        )  # fmt: skip

    # --------------------------------------------------------------------- judging

    def _judge(self, j: _Judging, *, size: int, deadline: float) -> Outcome:
        lookup = self._lookup(j)
        key = self.cache.key(j.new, j.old, operation=j.operation, mode=j.mode, exempted_by=j.exempted_by,
                             policy_files=lookup.context.policy_files, facts=lookup.facts)  # fmt: skip
        verdict, failure = self.cache.get(key), None
        if verdict is None:
            verdict, failure = self._analyse(j, lookup, size=size, deadline=deadline)
            if failure is None and not j.dry_run:  # a dry run leaves no trace, not even a memo
                self.cache.put(key, verdict)
        review = self._respond(j, verdict, lookup)
        self._log(j, verdict, reason=failure)
        self._record(j, verdict)
        return Outcome(200, review, verdict)

    def _lookup(self, j: _Judging) -> _Lookup:
        """Step *lookup*: a mirror Pod's policy file from its ``policySources`` ConfigMap.

        A failed lookup is a finding: a violation with ``denyOnPolicySourceError``, else a warning.
        """
        if j.kind != "Pod" or not self.config.policy_sources or j.new is None:
            return _Lookup(self.context)
        path = audit_policy_file(j.new)
        source = self.sources.source_for(path)
        if path is None or source is None:
            return _Lookup(self.context)
        try:
            text, how = self.sources.policy_text(source, dry_run=j.dry_run)
        except PolicySourceError as exc:
            metrics.POLICY_SOURCE_LOOKUPS.labels("error").inc()
            message = f"policySources: {exc}; the audit policy file's content was not judged"
            if self.config.deny_on_policy_source_error:
                denial = Finding("policy-source-error", f"{message} (denyOnPolicySourceError is set)")
                facts = Facts(violations=(denial,))
            else:
                facts = Facts(warnings=(Finding("policy-source-error", message),))
            return _Lookup(self.context, facts)
        metrics.POLICY_SOURCE_LOOKUPS.labels(how).inc()
        note = f"(The policy of --audit-policy-file={path} was read from ConfigMap {source}, per policySources.)"
        return _Lookup(replace(self.context, policy_files={**self.context.policy_files, path: text}), notes=(note,))

    def _analyse(self, j: _Judging, lookup: _Lookup, *, size: int, deadline: float) -> tuple[Verdict, str | None]:
        """Steps *isolation* and *verdict*: the verdict, and why the analysis failed (if it did)."""
        case = Case(new=j.new, old=j.old, operation=j.operation, mode=j.mode, context=lookup.context,
                    exempted_by=j.exempted_by, facts=lookup.facts)  # fmt: skip
        try:
            return self.analyzer.judge(case, size=size, deadline=deadline), None
        except AnalysisFailed as exc:
            metrics.ANALYSIS_FAILURES.labels(exc.code).inc()
            return self._unanalysed(j, lookup.facts, Finding("analysis-failed", exc.reason)), exc.reason

    def _unanalysed(self, j: _Judging, facts: Facts, failure: Finding) -> Verdict:
        """The verdict on objects that could not be analysed: the failure is a violation like any other."""
        facts = replace(facts, violations=(*facts.violations, failure), unanalysed=True)
        return Case(new=j.new, old=j.old, operation=j.operation, mode=j.mode, context=self.context,
                    exempted_by=j.exempted_by, facts=facts).judge()  # fmt: skip

    def _respond(self, j: _Judging, verdict: Verdict, lookup: _Lookup) -> AdmissionReview:
        """Step *response*: the AdmissionReview (pure; JSON is made by the route)."""
        return build_response(
            j.req["uid"], verdict, kind=j.kind, name=j.req.get("name") or "",
            namespace=j.req.get("namespace") or "", mode=j.mode, profile=self.config.profile, notes=lookup.notes,
        )  # fmt: skip

    def _internal_error(self, req: AdmissionRequest, mode_label: str) -> Outcome:
        """The answer when judging raised: the error judged by the target's mode (enforce when not routed yet)."""
        mode: Mode = "warn" if mode_label == "warn" else "ratchet" if mode_label == "ratchet" else "enforce"
        user = req.get("userInfo") or {}
        operation = req["operation"]
        if operation == "CONNECT":  # never routed to judging; a CONNECT's error is judged as any other write
            operation = "UPDATE"
        j = _Judging(
            req=req, kind=req["kind"]["kind"], operation=operation, mode=mode, new=None, old=None,
            exempted_by=self.config.exemptions.match(user.get("username"), user.get("groups") or []),
            dry_run=bool(req.get("dryRun")),
        )  # fmt: skip
        verdict = self._unanalysed(j, NO_FACTS, Finding("analysis-failed", INTERNAL_ERROR))
        review = build_response(req["uid"], verdict, kind=j.kind, name=_identity(req)[1],
                                namespace=_identity(req)[0], mode=mode, profile=self.config.profile)  # fmt: skip
        return Outcome(200, review, None)

    # ---------------------------------------------------------------- side effects

    def _log(self, j: _Judging, verdict: Verdict, *, reason: str | None = None) -> None:
        """Step *log*: one JSON line per decision."""
        fields = _who(j.req)
        fields.update(
            mode=j.mode, verdict=verdict.decision, allowed=verdict.allowed,
            violations=[f.code for f in verdict.violations], warnings=[f.code for f in verdict.warnings],
        )  # fmt: skip
        if verdict.exempted_by:
            fields["exemptedBy"] = verdict.exempted_by
        repairs = {r.source: list(r.repair) for r in verdict.results if r.repair}
        if repairs and verdict.violations:  # the full patch (the denial names only what fits)
            fields["repair"] = repairs
        if reason:
            fields["reason"] = reason
        log.info("admission decision", extra={"fields": fields})

    def _record(self, j: _Judging, verdict: Verdict) -> None:
        """Step *metrics*: the categories gauge of an allowed, real write."""
        if j.dry_run or not verdict.allowed:
            return
        namespace, name = _identity(j.req)
        if j.operation != "DELETE" and any(r.kind == "audit-policy" for r in verdict.results):
            metrics.set_categories(namespace, name, len(verdict.categories))
        else:  # deleted, or it no longer carries a policy
            metrics.forget_categories(namespace, name)


def _identity(req: AdmissionRequest) -> tuple[str, str]:
    namespace = req.get("namespace") or ""
    name = req.get("name") or ""
    if not name:
        subject = req.get("object") or req.get("oldObject") or {}
        meta = subject.get("metadata") if isinstance(subject, dict) else None
        if isinstance(meta, dict):
            raw = meta.get("name") or meta.get("generateName") or ""
            name = raw if isinstance(raw, str) else ""
            if not namespace and isinstance(meta.get("namespace"), str):
                namespace = meta["namespace"]
    return namespace, name


def _who(req: AdmissionRequest) -> dict[str, Any]:
    namespace, name = _identity(req)
    user = req.get("userInfo") or {}
    return {
        "uid": req["uid"],
        "kind": req["kind"]["kind"],
        "operation": req["operation"],
        "namespace": namespace,
        "name": name,
        "user": user.get("username", ""),
        "dryRun": bool(req.get("dryRun")),
    }
