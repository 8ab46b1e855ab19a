"""The admission webhook service: a thin HTTP adapter (Flask, served by gunicorn) around the core.

It decides no verdict of its own: :func:`webhook.core.verdict.judge` applies the mode and the
break-glass exemption to every finding, including the service's own facts (a failed
``policySources`` lookup, an analysis that missed its deadline or failed).  This package
parses AdmissionReviews, routes objects to the core, gathers those facts, renders
responses, serves health and metrics, reloads certificates, bounds the analysis of large
objects, and (optionally) looks up policy ConfigMaps.

* :mod:`webhook.service.config` — the configuration file, validated at start;
* :mod:`webhook.service.admission` — AdmissionReview wire types, the strict parser and the
  pure response builder;
* :mod:`webhook.service.decide` — :class:`~webhook.service.decide.Service`, the decision flow
  of ``/validate`` without Flask (an import-linter contract keeps Flask out);
* :mod:`webhook.service.app` — the Flask application factory and its Blueprint (``/validate``,
  ``/healthz``, ``/readyz``, ``/metrics``);
* :mod:`webhook.service.isolation` — analysing large objects in a child process with a
  deadline and a memory limit;
* :mod:`webhook.service.cache` — a content-addressed memo of verdicts;
* :mod:`webhook.service.kube` — the optional ``policySources`` cross-reference;
* :mod:`webhook.service.metrics`, :mod:`webhook.service.tls`, :mod:`webhook.service.logs`;
* :mod:`webhook.service.server` — gunicorn, programmatically (settings: :mod:`webhook.gunicorn_conf`).

Nothing here is imported by the core or by ``auditwarden check``.
"""
