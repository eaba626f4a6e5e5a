"""With Redis the counts are shared by every process, expire unless refreshed, and fail open.

Each test uses a private key prefix. Under CI=true an unreachable Redis fails these tests.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from sessions_app.realtime.errors import ErrorCode, ProtocolError
from sessions_app.realtime.limits import RedisConnectionLimiter, Slot
from tests.support.liveserver import free_port, wait_until_async
from tests.support.production import REDIS_URL, private_redis_prefix, redis_keys

_ids = itertools.count(1)


@pytest.fixture
def prefix() -> Iterator[str]:
    with private_redis_prefix("limits") as prefix:
        yield prefix


def limiter(prefix: str, *, per_user: int = 2, per_ip: int = 0, ttl_ms: int = 30_000) -> RedisConnectionLimiter:
    return RedisConnectionLimiter(url=REDIS_URL, prefix=prefix, per_user=per_user, per_ip=per_ip, ttl_ms=ttl_ms)


def slot(*, user: int = 1, device: int | None = None, ip: str | None = "10.0.0.1") -> Slot:
    return Slot(user_id=user, device_pk=device or next(_ids) + 1000, ip=ip, connection_id=f"c{next(_ids)}")


@pytest.mark.production
async def test_the_limit_holds_across_processes_sharing_redis(prefix: str) -> None:
    one, other = limiter(prefix), limiter(prefix)  # two server processes
    first = slot()
    await one.acquire(first)
    await other.acquire(slot())
    with pytest.raises(ProtocolError) as refused:
        await one.acquire(slot())
    assert refused.value.code == ErrorCode.TOO_MANY_CONNECTIONS
    await one.release(first)
    await other.acquire(slot())


@pytest.mark.production
async def test_the_address_limit_is_counted_in_its_own_set(prefix: str) -> None:
    shared = limiter(prefix, per_user=0, per_ip=1)
    await shared.acquire(slot(user=1))
    with pytest.raises(ProtocolError) as refused:
        await shared.acquire(slot(user=2))
    assert "WS_MAX_CONNECTIONS_PER_IP" in refused.value.message
    await shared.acquire(slot(user=2, ip="10.0.0.2"))
    keys = sorted(redis_keys(REDIS_URL, f"{prefix}:*"))
    assert keys == [f"{prefix}:wsconn:ip:10.0.0.1", f"{prefix}:wsconn:ip:10.0.0.2"]


@pytest.mark.production
async def test_a_device_replacing_its_own_connection_is_let_in_at_the_limit(prefix: str) -> None:
    one, other = limiter(prefix), limiter(prefix)
    await one.acquire(slot(device=7))
    await one.acquire(slot())
    await other.acquire(slot(device=7))  # the same device, on another process
    with pytest.raises(ProtocolError):
        await other.acquire(slot())


@pytest.mark.production
async def test_entries_of_a_killed_process_expire_and_refreshed_ones_do_not(prefix: str) -> None:
    alive, killed = limiter(prefix, ttl_ms=3000), limiter(prefix, ttl_ms=3000)
    await alive.acquire(slot())
    await killed.acquire(slot())  # never released, never refreshed again

    async def lapsed() -> bool:  # the alive process refreshes far more often than its entries' lifetime
        await alive.refresh()
        try:
            await alive.acquire(slot())  # in once the killed process's entry lapsed
        except ProtocolError:
            return False
        return True

    assert await wait_until_async(lapsed, 30), "the killed process's entry never lapsed"
    with pytest.raises(ProtocolError):  # the refreshed entry still counts
        await alive.acquire(slot())


@pytest.mark.production
async def test_a_connection_closed_during_a_refresh_is_not_counted_again(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = limiter(prefix, per_user=1)
    closing = slot()
    await shared.acquire(closing)
    # Hold the refresh's script back until the connection's release has reached Redis.
    client, gate = shared.redis.aio(0), asyncio.Event()
    script = client.eval

    async def held_back(*args: object) -> object:
        await gate.wait()
        return await script(*args)

    monkeypatch.setattr(client, "eval", held_back)
    refreshing = asyncio.ensure_future(shared.refresh())
    await asyncio.sleep(0)  # the refresh has its list of connections
    await shared.release(closing)
    gate.set()
    await refreshing  # it stamped the closed connection again, then removed it
    await shared.acquire(slot())


async def test_an_unreachable_redis_lets_connections_in_with_a_warning_and_a_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = REGISTRY.get_sample_value("session_connection_limit_failures_total", {"operation": "acquire"}) or 0
    down = RedisConnectionLimiter(
        url=f"redis://127.0.0.1:{free_port()}/0", prefix="unused", per_user=1, per_ip=1, ttl_ms=1000
    )
    with caplog.at_level(logging.WARNING, logger="sessions_app.connection_limits"):
        for _ in range(3):
            await down.acquire(slot())
    after = REGISTRY.get_sample_value("session_connection_limit_failures_total", {"operation": "acquire"})
    assert after == before + 3
    warnings = [r for r in caplog.records if "connection limits unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one per interval, not one per handshake
