"""A ticket is redeemed at most once and only before it expires: in memory, and in Redis across processes.

The Redis tests use a private key prefix; under CI=true an unreachable Redis fails them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from sessions_app.socket_tickets import MemoryTicketStore, RedisTicketStore, TicketStore
from tests.support.production import REDIS_URL, private_redis_prefix, redis_keys


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with private_redis_prefix("tickets") as prefix:
        yield prefix


def redeemed_once_of_many_tries(stores: list[TicketStore]) -> list[int | None]:
    """Twenty concurrent redemptions of one ticket, spread over the stores (processes)."""
    with ThreadPoolExecutor(max_workers=20) as pool:
        return list(pool.map(lambda n: stores[n % len(stores)].take("k"), range(20)))


def test_a_ticket_in_memory_is_redeemed_once_and_not_after_it_expires() -> None:
    store = MemoryTicketStore()
    store.put("k", 42, ttl_ms=10_000)
    assert sorted(redeemed_once_of_many_tries([store]), key=str) == [42] + [None] * 19
    store.put("short", 7, ttl_ms=50)
    time.sleep(0.08)
    assert store.take("short") is None


@pytest.mark.production
def test_a_ticket_in_redis_is_redeemed_once_by_any_process_and_not_after_it_expires(redis_prefix: str) -> None:
    issuing, other = (RedisTicketStore(url=REDIS_URL, prefix=redis_prefix) for _ in range(2))
    issuing.put("k", 42, ttl_ms=10_000)
    assert sorted(redeemed_once_of_many_tries([issuing, other]), key=str) == [42] + [None] * 19
    issuing.put("short", 7, ttl_ms=50)
    time.sleep(0.08)
    assert other.take("short") is None
    assert redis_keys(REDIS_URL, f"{redis_prefix}:*") == []
