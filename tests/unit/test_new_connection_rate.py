"""The per-peer limit on new connections (webhook.service.worker.NewConnectionRate): a token bucket per address."""

from __future__ import annotations

from webhook.service.worker import NewConnectionRate


def test_a_peer_gets_its_burst_then_the_rate() -> None:
    limit = NewConnectionRate(rate=10, burst=5)
    assert [limit.allow("10.0.0.9", 100.0) for _ in range(6)] == [True] * 5 + [False]
    assert not limit.allow("10.0.0.9", 100.05)  # half a token refilled
    assert limit.allow("10.0.0.9", 100.16)  # 10 a second: one more after 0.1 s
    assert not limit.allow("10.0.0.9", 100.16)


def test_peers_are_limited_separately() -> None:
    limit = NewConnectionRate(rate=1, burst=2)
    assert limit.allow("attacker", 0.0) and limit.allow("attacker", 0.0)
    assert not limit.allow("attacker", 0.0)
    assert limit.allow("kube-apiserver", 0.0)  # another address is not affected


def test_refused_attempts_do_not_earn_more_waiting() -> None:
    """A peer that keeps trying while refused is not pushed further back: the bucket refills with time only."""
    limit = NewConnectionRate(rate=1, burst=1)
    assert limit.allow("p", 0.0)
    for t in (0.1, 0.2, 0.5, 0.9):
        assert not limit.allow("p", t)
    assert limit.allow("p", 1.0)


def test_a_rate_of_zero_is_no_limit() -> None:
    limit = NewConnectionRate(rate=0, burst=1)
    assert all(limit.allow("p", 0.0) for _ in range(10_000))


def test_the_table_of_peers_stays_bounded_under_ever_new_addresses() -> None:
    limit = NewConnectionRate(rate=1, burst=3)
    for i in range(3 * NewConnectionRate.MAX_TRACKED):
        limit.allow(f"fd00::{i:x}", float(i) / 1000)
    assert len(limit._buckets) <= NewConnectionRate.MAX_TRACKED
