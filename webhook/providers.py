"""Managed-cluster profiles: the audit policy a provider runs (which its users cannot edit), with its source.

Users of GKE, AKS and EKS cannot change the provider's audit policy, but still need to know what it
records, and which of its events leave the provider.  ``webhook/data/providers/providers.yaml``
names each provider's policy file (each with its source repository, path and commit in its header)
and what the user can and cannot change.  An *export variant* is a provider setting that drops
events after the policy has logged them (AKS's ``kube-audit-admin`` category has no get or list):
it is judged as the policy with a first rule ``level: None`` for those verbs, which is what the
log then holds.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webhook.core.analysis import DocumentResult
    from webhook.core.findings import Finding

# The CLI imports this module to list the providers in its options; the YAML and package-data
# readers are imported only when a provider is loaded, so `auditwarden check` does not pay for them.
PROVIDERS = ("gke", "aks", "eks")


@dataclass(frozen=True, kw_only=True)
class Provider:
    key: str
    name: str
    source: str
    note: str
    policy_text: str
    cannot_change: tuple[str, ...]
    can_change: tuple[str, ...]
    variants: tuple[tuple[str, str], ...]  # (variant name, the policy as its exported log holds it)


def load_provider(key: str) -> Provider:
    from importlib import resources

    import yaml

    data = resources.files("webhook") / "data" / "providers"
    meta: dict[str, Any] = yaml.safe_load((data / "providers.yaml").read_text("utf-8"))[key]
    text = (data / meta["policy"]).read_text("utf-8")
    variants = tuple((v["name"], _dropping(text, v["drop_verbs"])) for v in meta.get("export_variants") or ())
    return Provider(key=key, name=meta["name"], source=meta["source"], note=meta["note"], policy_text=text,
                    cannot_change=tuple(meta["cannot_change"]), can_change=tuple(meta["can_change"]),
                    variants=variants)  # fmt: skip


def _dropping(policy_text: str, verbs: list[str]) -> str:
    """The policy as a log that drops ``verbs`` holds it: a first rule ``level: None`` for them."""
    import yaml

    policy = yaml.safe_load(policy_text)
    policy["rules"] = [{"level": "None", "verbs": list(verbs)}, *policy["rules"]]
    return yaml.safe_dump(policy, sort_keys=False)


def describe(p: Provider) -> list[str]:
    """The lines that say what the user of this provider can and cannot change."""
    lines = [f"provider {p.key} ({p.name}): policy from {p.source}", f"  {p.note}"]
    lines += [f"  cannot change: {c}" for c in p.cannot_change]
    lines += [f"  can change: {c}" for c in p.can_change]
    return lines


#: a finding's "Fix: ..." sentence: webhook.core.repair.fix_sentence's (which may hold periods, in
#: API groups) up to its closing "(auditwarden fix --write applies this).", any other up to the first
#: period that ends a sentence
_FIX = re.compile(r" Fix: (?:.*? \(auditwarden fix --write applies this\)\.|.*?\.(?= [A-Z]|$))")


def without_repairs(result: DocumentResult, p: Provider) -> DocumentResult:
    """``result`` with each fix it proposes replaced by what this provider's users can change.

    The provider runs the policy: an edit of it ("add before rule 0", "remove RequestReceived from
    omitStages") is advice nobody can follow there.
    """
    instead = f" Fix: not by editing the policy, which {p.name} runs; what you can change: {'; '.join(p.can_change)}."

    def rewritten(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
        return tuple(dataclasses.replace(f, message=_FIX.sub(lambda _: instead, f.message)) for f in findings)

    return dataclasses.replace(result, violations=rewritten(result.violations), warnings=rewritten(result.warnings))
