"""The session stream's buffer: numbering, bounds and replay, in memory and in Redis alike."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sessions_app.realtime.session_stream import MemoryStreamStore, RedisStreamStore, StreamStore, with_position
from tests.support.production import REDIS_URL, private_redis_prefix


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[StreamStore]:
    if request.param == "memory":
        yield MemoryStreamStore(max_messages=5, ttl_s=60)
        return
    with private_redis_prefix("stream") as prefix:
        yield RedisStreamStore(url=REDIS_URL, prefix=prefix, max_messages=5, ttl_s=60)


def test_each_session_numbers_its_pushes_from_one_under_an_epoch_of_its_own(store: StreamStore) -> None:
    first = store.append(["a", "b"], '{"type":"x"}')
    second = store.append(["a"], '{"type":"y"}')
    assert (first["a"].seq, first["b"].seq, second["a"].seq) == (1, 1, 2)
    assert first["a"].epoch == second["a"].epoch != first["b"].epoch


def test_a_replay_after_a_position_returns_what_followed_it_in_order(store: StreamStore) -> None:
    for n in range(1, 4):
        store.append(["s"], f'{{"n":{n}}}')
    replay = asyncio.run(store.read_after("s", 1))
    assert replay is not None and replay.complete and replay.head == 3
    assert replay.entries == [(2, '{"n":2}'), (3, '{"n":3}')]
    assert asyncio.run(store.read_after("s", 3)).entries == []  # type: ignore[union-attr]


def test_a_replay_is_incomplete_once_the_buffer_has_dropped_what_was_asked_for(store: StreamStore) -> None:
    for n in range(1, 9):
        store.append(["s"], f'{{"n":{n}}}')
    assert asyncio.run(store.read_after("s", 2)).complete is False  # type: ignore[union-attr]
    kept = asyncio.run(store.read_after("s", 3))
    assert kept is not None and kept.complete and [seq for seq, _ in kept.entries] == [4, 5, 6, 7, 8]


def test_a_position_beyond_the_head_is_not_a_recovery(store: StreamStore) -> None:
    store.append(["s"], "{}")
    assert asyncio.run(store.read_after("s", 9)).complete is False  # type: ignore[union-attr]


def test_a_reset_stream_starts_again_under_a_new_epoch(store: StreamStore) -> None:
    before = store.append(["s"], "{}")["s"]
    store.reset(["s"])
    assert asyncio.run(store.read_after("s", 0)) is None
    assert asyncio.run(store.heads(["s"])) == {"s": None}
    head = asyncio.run(store.head("s"))
    assert head.seq == 0 and head.epoch != before.epoch


def test_the_heads_of_many_streams_are_read_at_once_in_order_and_none_for_a_stream_never_written(
    store: StreamStore,
) -> None:
    sessions = [f"s{n}" for n in range(1_200)]  # more than one script's worth (HEADS_CHUNK)
    written = {**store.append(sessions[::2], "{}"), **store.append(sessions[::4], "{}")}
    heads = asyncio.run(store.heads(["never", *sessions]))
    assert list(heads) == ["never", *sessions]
    assert heads == {"never": None, **{s: written.get(s) for s in sessions}}


def test_reading_a_streams_head_keeps_it_for_another_ttl() -> None:
    with private_redis_prefix("stream") as prefix:
        store = RedisStreamStore(url=REDIS_URL, prefix=prefix, max_messages=5, ttl_s=60)
        store.append(["s"], "{}")
        client = store.redis.sync(0)
        keys = (f"{prefix}:stream:s:m", f"{prefix}:stream:s:l")  # docs/redis.md
        for key in keys:
            client.expire(key, 5)
        asyncio.run(store.heads(["s", "never"]))
        assert all(55 < client.ttl(key) <= 60 for key in keys)
        assert not client.exists(f"{prefix}:stream:never:m")  # nothing made for a stream never written


def test_the_position_is_added_to_a_payload_without_re_encoding_it() -> None:
    assert with_position('{"type":"x","a":1}', "e1", 7) == '{"type":"x","a":1,"sessionSeq":7,"sessionEpoch":"e1"}'
