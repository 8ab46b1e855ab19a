"""Bounded analysis of large objects: same verdicts as inline, and a deadline that holds."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.reviews import WEAK_POLICY, alias_bomb, huge_policy, many_keys_configmap, policy_configmap
from webhook.context import build_context
from webhook.core.verdict import judge
from webhook.service.isolation import AnalysisFailed, Analyzer, Case

CTX = build_context()


def create(obj: dict[str, Any]) -> Case:
    return Case(new=obj, old=None, operation="CREATE", mode="enforce", context=CTX)


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    a = Analyzer(isolate_above_bytes=0, timeout_seconds=20)
    a.warm_up()
    return a


def test_isolated_verdicts_equal_inline_ones(analyzer: Analyzer) -> None:
    for obj in (policy_configmap(), policy_configmap(WEAK_POLICY), many_keys_configmap(2000)):
        inline = judge(obj, None, operation="CREATE", mode="enforce", context=CTX)
        isolated = analyzer.judge(create(obj), size=1)
        assert (isolated.allowed, isolated.decision) == (inline.allowed, inline.decision)
        assert isolated.violations == inline.violations and isolated.warnings == inline.warnings
        assert isolated.categories == inline.categories


def test_small_requests_stay_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    a = Analyzer(isolate_above_bytes=1000, timeout_seconds=5)
    monkeypatch.setattr(a, "isolated", lambda *args, **kw: pytest.fail("isolated"))
    assert a.judge(create(policy_configmap()), size=999).allowed


def test_the_deadline_holds_for_a_huge_policy(analyzer: Analyzer) -> None:
    obj = policy_configmap(huge_policy(20_000))  # about 2 s of analysis here: 4x the 0.5 s deadline
    started = time.monotonic()
    with pytest.raises(AnalysisFailed) as err:
        analyzer.judge(create(obj), size=10**6,
                       deadline=time.monotonic() + 0.5)  # fmt: skip
    elapsed = time.monotonic() - started
    assert err.value.code == "deadline"
    assert "did not finish within" in err.value.reason
    assert elapsed < 5.0
    # And the analyzer still works afterwards.
    ok = analyzer.judge(create(policy_configmap()), size=10**6)
    assert ok.allowed


def test_an_alias_bomb_is_refused_in_isolation_too(analyzer: Analyzer) -> None:
    verdict = analyzer.judge(create(policy_configmap(alias_bomb())), size=10**6)
    assert verdict.allowed is False
    assert [f.code for f in verdict.violations] == ["content-unparseable"]


def test_a_memory_hog_hits_the_memory_limit() -> None:
    a = Analyzer(isolate_above_bytes=0, timeout_seconds=20, memory_limit_bytes=256 * 1024 * 1024)
    # A 2.8 MB flat YAML list: measured inline, the core needs ~550 MB and ~8 s before it
    # refuses it (the node limit applies after loading).  In isolation the child hits the cap.
    flat = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Metadata}]\nx: [" + "a," * 1_400_000 + "a]\n"
    with pytest.raises(AnalysisFailed) as err:
        a.judge(create(policy_configmap(flat)), size=10**6)
    assert err.value.code == "memory", err.value.reason
    assert "more than 256 MiB of memory" in err.value.reason
