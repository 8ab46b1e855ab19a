"""Findings: the unit in which every problem is reported.

A finding has a stable machine code (documented in the README, used in JSON/SARIF output
and metrics) and a message a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation or warning.  ``code`` is stable; ``message`` is for people."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
