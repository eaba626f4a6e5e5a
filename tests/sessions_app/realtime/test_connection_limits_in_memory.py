"""The embedded mode counts connections per user and per address in process memory."""

from __future__ import annotations

import itertools

import pytest

from sessions_app.realtime.errors import ErrorCode, ProtocolError
from sessions_app.realtime.limits import MemoryConnectionLimiter, Slot, client_address

_ids = itertools.count(1)


def slot(*, user: int = 1, device: int | None = None, ip: str | None = "10.0.0.1") -> Slot:
    """A new connection of `user` from `ip` (of a new device unless one is named)."""
    return Slot(user_id=user, device_pk=device or next(_ids) + 1000, ip=ip, connection_id=f"c{next(_ids)}")


async def test_the_connection_over_the_users_limit_is_refused_until_one_closes() -> None:
    limiter = MemoryConnectionLimiter(per_user=2, per_ip=0)
    first, second = slot(), slot()
    await limiter.acquire(first)
    await limiter.acquire(second)
    with pytest.raises(ProtocolError) as refused:
        await limiter.acquire(slot())
    assert refused.value.code == ErrorCode.TOO_MANY_CONNECTIONS
    assert "WS_MAX_CONNECTIONS_PER_USER" in refused.value.message
    await limiter.release(first)
    await limiter.acquire(slot())


async def test_the_address_limit_spans_users_and_other_addresses_do_not_count() -> None:
    limiter = MemoryConnectionLimiter(per_user=0, per_ip=2)
    await limiter.acquire(slot(user=1))
    await limiter.acquire(slot(user=2))
    with pytest.raises(ProtocolError) as refused:
        await limiter.acquire(slot(user=3))
    assert "WS_MAX_CONNECTIONS_PER_IP" in refused.value.message
    await limiter.acquire(slot(user=3, ip="10.0.0.2"))


async def test_a_device_replacing_its_own_connection_is_let_in_at_the_limit() -> None:
    limiter = MemoryConnectionLimiter(per_user=2, per_ip=2)
    old = slot(device=7)
    await limiter.acquire(old)
    await limiter.acquire(slot())
    await limiter.acquire(slot(device=7))  # the old one is about to close with 4009
    with pytest.raises(ProtocolError):
        await limiter.acquire(slot())  # another device still is not
    await limiter.release(old)
    assert limiter.count("user:1") == 2


async def test_zero_means_unlimited_and_an_unknown_address_is_not_limited() -> None:
    limiter = MemoryConnectionLimiter(per_user=0, per_ip=1)
    for _ in range(5):
        await limiter.acquire(slot(ip=None))
    assert limiter.count("user:1") == 0


async def test_releasing_twice_or_releasing_a_refused_connection_changes_nothing() -> None:
    limiter = MemoryConnectionLimiter(per_user=1, per_ip=0)
    held, refused = slot(), slot()
    await limiter.acquire(held)
    with pytest.raises(ProtocolError):
        await limiter.acquire(refused)
    await limiter.release(refused)
    assert limiter.count("user:1") == 1
    await limiter.release(held)
    await limiter.release(held)
    assert limiter.count("user:1") == 0


def test_the_client_address_is_the_scopes_client_host() -> None:
    assert client_address({"client": ["203.0.113.7", 51000]}) == "203.0.113.7"
    assert client_address({"client": None}) is None
    assert client_address({}) is None
