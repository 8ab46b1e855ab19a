"""Findings: the unit in which every problem is reported.

A finding has a stable machine code (documented in the README, used in JSON/SARIF output,
audit annotations and metrics) and a message a person can act on.  The codes are a closed
:data:`Code` type, so that mypy refuses a misspelt one where the verdict matches on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["CODES", "Code", "Finding"]

Code = Literal[
    # Policy validity and coverage (coverage.py, analysis.py)
    "policy-invalid",
    "policy-deprecated-version",
    "policy-not-first-document",
    "policy-unknown-field",
    "categories-below-minimum",
    "category-required",
    "advisory-not-logged",
    "sensitive-payload",
    "stage-omitted",
    "response-started-omitted",
    "shadowed-rule",
    "shadowed-rule-check-skipped",
    "rule-never-matches",
    "policy-content-unseen",
    # kube-apiserver flags and mounts (apiserver.py)
    "audit-flag-invalid",
    "apiserver-flags-invalid",
    "apiserver-flag-note",
    "audit-backend-missing",
    "audit-log-stdout",
    "audit-log-not-mounted",
    "audit-log-mount-read-only",
    "audit-policy-file-missing",
    "audit-policy-not-mounted",
    "audit-log-maxage-unset",
    "audit-log-maxbackup-unset",
    "audit-log-maxsize-unset",
    "audit-log-maxage-too-low",
    "audit-log-maxbackup-too-low",
    "audit-log-maxsize-too-low",
    "audit-profile-none",
    "openshift-audit-invalid",
    "kubeadm-config-invalid",
    "static-pod-invalid",
    # Discovery in ConfigMaps and distribution configs (documents.py)
    "content-malformed",
    "content-unparseable",
    "label-unknown",
    "labelled-not-a-policy",
    "label-missing",
    "label-required",
    "binary-data-ignored",
    # Change analysis (verdict.compare)
    "audit-flag-dropped",
    "configuration-dropped",
    "configuration-deleted",
    "category-lost",
    "retention-lowered",
    # The decision itself and the webhook's own facts (verdict.judge, service)
    "exempted",
    "policy-source-error",
    "analysis-failed",
]

#: Every code, in the order above (for documentation and tests).
CODES: tuple[Code, ...] = get_args(Code)


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation or warning.  ``code`` is stable; ``message`` is for people."""

    code: Code
    message: str
    #: The 0-based index of the policy rule the finding is about (None: the policy as a whole,
    #: or not about a rule); used to point SARIF results at the rule's line.
    rule: int | None = None
