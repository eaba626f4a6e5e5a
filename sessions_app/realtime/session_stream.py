"""The session stream: every push of a session numbered and kept for replay.

A push (anything that changes what a client shows: a status, an account update) is appended to the
stream of each session it concerns, where it gets the next `sessionSeq`, and only then sent. A
stream also has a `sessionEpoch`, new whenever its buffer starts afresh (first push, Redis lost
its data, the buffer expired), so "I have everything up to 41" is never read against a stream
that no longer exists. The buffer keeps the newest SESSION_STREAM_MAX_MESSAGES pushes for
SESSION_STREAM_TTL_S after the last use: in Redis when it is configured (docs/redis.md: every
process sees it, so a reconnect to another process, or after a restart, still recovers), else in process memory.

Each connection holds a `StreamCursor`: the epoch and the last number it sent. Pushes arrive
through the channel layer, which may drop or reorder them; sessions_app.recovery fills a gap from
the buffer, drops a duplicate, and when the buffer cannot help it resynchronises the client
(`session_resync` and a fresh snapshot). docs/guarantees.md states the contract.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Protocol, TypedDict

from django.conf import settings
from tenacity import before_sleep_log, retry, wait_exponential

from sessions_app.realtime.redis_clients import RedisShard, ShardedRedis, configured_shards

logger = logging.getLogger(__name__)

ResyncReason = Literal["requested", "reconnect", "gap", "epoch_changed"]


@dataclass(frozen=True)
class StreamHead:
    epoch: str
    seq: int


@dataclass(frozen=True)
class Replay:
    """What a stream holds after `after`; `complete` when nothing between is missing."""

    epoch: str
    head: int
    entries: list[tuple[int, str]]
    complete: bool


class SessionPushEvent(TypedDict):
    """The channel-layer event of a push: the message once, and its number in each session's stream.
    A push that changed the user's simulator carries its summary (the connections keep it); one
    after which nothing may follow carries the close code to end the connection with; one for a
    single device of the user, its key."""

    type: Literal["session.push"]
    kind: str
    payload: str
    positions: dict[str, list[Any]]
    simulator: NotRequired[dict[str, Any]]
    closes: NotRequired[int]
    deviceKey: NotRequired[int]


def new_epoch() -> str:
    return secrets.token_hex(6)


def with_position(payload: str, epoch: str, seq: int) -> str:
    """The payload (a JSON object) with its stream position added, without re-encoding it."""
    return f'{payload[:-1]},"sessionSeq":{seq},"sessionEpoch":"{epoch}"}}'


def replay_of(epoch: str, head: int, after: int, entries: list[tuple[int, str]], oldest: int | None) -> Replay:
    if after == head:
        complete = True
    elif after > head:
        complete = False  # the client claims numbers this stream never gave
    else:
        complete = oldest is not None and oldest <= after + 1
    return Replay(epoch=epoch, head=head, entries=entries, complete=complete)


class StreamStore(Protocol):
    def append(self, session_ids: Sequence[str], payload: str) -> dict[str, StreamHead]: ...
    def reset(self, session_ids: Sequence[str]) -> None: ...
    async def head(self, session_id: str) -> StreamHead: ...
    async def heads(self, session_ids: Sequence[str]) -> dict[str, StreamHead | None]: ...
    async def read_after(self, session_id: str, after: int) -> Replay | None: ...


@dataclass
class _MemoryStream:
    epoch: str
    seq: int = 0
    entries: deque[tuple[int, str]] | None = None  # made on the first push: most sessions have none
    touched: float = field(default_factory=time.monotonic)


class MemoryStreamStore:
    """One process's streams (the embedded mode). Appends come from database threads: a lock."""

    def __init__(self, *, max_messages: int, ttl_s: float) -> None:
        self.max_messages = max_messages
        self.ttl_s = ttl_s
        self._streams: dict[str, _MemoryStream] = {}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    def _stream(self, session_id: str, now: float) -> _MemoryStream:
        stream = self._streams.get(session_id)
        if stream is None or now - stream.touched > self.ttl_s:
            stream = self._streams[session_id] = _MemoryStream(epoch=new_epoch())
        stream.touched = now
        return stream

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for key in [k for k, s in self._streams.items() if now - s.touched > self.ttl_s]:
            del self._streams[key]

    def append(self, session_ids: Sequence[str], payload: str) -> dict[str, StreamHead]:
        now = time.monotonic()
        heads: dict[str, StreamHead] = {}
        with self._lock:
            self._sweep(now)
            for session_id in session_ids:
                stream = self._stream(session_id, now)
                stream.seq += 1
                if stream.entries is None:
                    stream.entries = deque()
                stream.entries.append((stream.seq, payload))
                while len(stream.entries) > self.max_messages:
                    stream.entries.popleft()
                heads[session_id] = StreamHead(stream.epoch, stream.seq)
        return heads

    def reset(self, session_ids: Sequence[str]) -> None:
        with self._lock:
            for session_id in session_ids:
                self._streams.pop(session_id, None)

    async def head(self, session_id: str) -> StreamHead:
        with self._lock:
            stream = self._stream(session_id, time.monotonic())
            return StreamHead(stream.epoch, stream.seq)

    async def heads(self, session_ids: Sequence[str]) -> dict[str, StreamHead | None]:
        now = time.monotonic()
        result: dict[str, StreamHead | None] = {}
        with self._lock:
            for session_id in session_ids:
                stream = self._streams.get(session_id)
                if stream is None or now - stream.touched > self.ttl_s:
                    result[session_id] = None
                else:
                    stream.touched = now  # a watched stream stays
                    result[session_id] = StreamHead(stream.epoch, stream.seq)
        return result

    async def read_after(self, session_id: str, after: int) -> Replay | None:
        with self._lock:
            stream = self._streams.get(session_id)
            if stream is None:
                return None
            pushed = stream.entries or ()
            entries = [(seq, payload) for seq, payload in pushed if seq > after]
            oldest = pushed[0][0] if pushed else None
            return replay_of(stream.epoch, stream.seq, after, entries, oldest)


# KEYS: meta and log of each session, in pairs. ARGV: payload, max messages, ttl, whether to
# return the server's replication ID, then one new epoch per session (used only where the stream
# does not exist yet). Returns the epoch and number of each, then the replication ID (or '').
_APPEND = """
local maxlen = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local out = {}
for i = 1, #KEYS / 2 do
  local meta, log = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HSETNX', meta, 'epoch', ARGV[4 + i])
  local epoch = redis.call('HGET', meta, 'epoch')
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('ZADD', log, seq, seq .. ' ' .. ARGV[1])
  redis.call('ZREMRANGEBYRANK', log, 0, -(maxlen + 1))
  redis.call('EXPIRE', meta, ttl)
  redis.call('EXPIRE', log, ttl)
  out[#out + 1] = epoch
  out[#out + 1] = seq
end
out[#out + 1] = ARGV[4] == '1' and string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
return out
"""

_HEAD = """
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local history = ARGV[3] == '1' and string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
return {meta[1], meta[2], history}
"""

# The heads of many streams, each kept for another TTL, in one script: the stream check reads every
# connection's head every few seconds, and as three commands per session (HMGET and two EXPIREs in
# a pipeline) redis-py's packing and parsing took a tenth of a busy process.
_HEADS = """
local out = {}
for i = 1, #KEYS, 2 do
  local meta = redis.call('HMGET', KEYS[i], 'epoch', 'seq')
  redis.call('EXPIRE', KEYS[i], ARGV[1], 'XX')
  redis.call('EXPIRE', KEYS[i + 1], ARGV[1], 'XX')
  out[#out + 1] = meta[1]
  out[#out + 1] = meta[2]
end
local history = ARGV[2] == '1' and string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
out[#out + 1] = history
return out
"""
HEADS_CHUNK = 500  # sessions per script: each run holds Redis for its length

_READ = """
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not meta[1] then return {} end
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local entries = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
local history = ARGV[2] == '1' and string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
return {meta[1], meta[2] or '0', oldest[2] or '', entries, history}
"""


def _decoded(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStreamStore:
    """Streams in Redis, shared by every process, each on the shard of its session id
    (docs/redis.md). Appends are one script per push and shard (all its sessions there).

    On a Sentinel-managed shard a stream's epoch also names the replication history of the
    master that holds it (its `master_replid`, new on every failover): replication is
    asynchronous, so a promoted replica may lack the last pushes its master numbered, and the
    next push would reuse their numbers. With the history in the epoch, every stream of that
    shard changes epoch at the failover and its clients resynchronise instead.
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        shards: Sequence[RedisShard] | None = None,
        prefix: str,
        max_messages: int,
        ttl_s: int,
    ) -> None:
        self.redis = ShardedRedis.of(url=url, shards=shards, timeout=5)
        self.url = self.redis.shards[0].url
        self.prefix = prefix
        self.max_messages = max_messages
        self.ttl_s = ttl_s
        self._append = [self.redis.sync(i).register_script(_APPEND) for i in range(len(self.redis))]

    def _keys(self, session_id: str) -> tuple[str, str]:
        base = f"{self.prefix}:stream:{session_id}"
        return f"{base}:m", f"{base}:l"

    def _fenced(self, index: int) -> bool:
        return self.redis.shards[index].sentinel_managed

    @staticmethod
    def _epoch(stored: Any, history: Any) -> str:
        epoch = _decoded(stored)
        history = _decoded(history) if history else ""
        return f"{epoch}.{history[:12]}" if history else epoch

    def append(self, session_ids: Sequence[str], payload: str) -> dict[str, StreamHead]:
        heads: dict[str, StreamHead] = {}
        for index, owners in self.redis.group(session_ids).items():
            keys = [key for session_id in owners for key in self._keys(session_id)]
            epochs = [new_epoch() for _ in owners]
            fenced = "1" if self._fenced(index) else "0"
            out = self._append[index](keys=keys, args=[payload, self.max_messages, self.ttl_s, fenced, *epochs])
            for i, session_id in enumerate(owners):
                heads[session_id] = StreamHead(self._epoch(out[2 * i], out[-1]), int(out[2 * i + 1]))
        return {session_id: heads[session_id] for session_id in session_ids}

    def reset(self, session_ids: Sequence[str]) -> None:
        for index, owners in self.redis.group(session_ids).items():
            self.redis.sync(index).delete(*[key for session_id in owners for key in self._keys(session_id)])

    async def head(self, session_id: str) -> StreamHead:
        index = self.redis.index(session_id)
        fenced = "1" if self._fenced(index) else "0"
        keys = self._keys(session_id)
        epoch, seq, history = await self.redis.aio(index).eval(_HEAD, 2, *keys, new_epoch(), self.ttl_s, fenced)
        return StreamHead(self._epoch(epoch, history), int(seq or 0))

    async def heads(self, session_ids: Sequence[str]) -> dict[str, StreamHead | None]:
        result: dict[str, StreamHead | None] = {}
        for index, owners in self.redis.group(session_ids).items():
            fenced = "1" if self._fenced(index) else "0"
            for start in range(0, len(owners), HEADS_CHUNK):
                chunk = owners[start : start + HEADS_CHUNK]
                keys = [key for session_id in chunk for key in self._keys(session_id)]
                out = await self.redis.aio(index).eval(_HEADS, len(keys), *keys, self.ttl_s, fenced)
                history = out[-1]
                for i, session_id in enumerate(chunk):
                    epoch, seq = out[2 * i], out[2 * i + 1]
                    head = None if epoch is None else StreamHead(self._epoch(epoch, history), int(seq or 0))
                    result[session_id] = head
        return {session_id: result[session_id] for session_id in session_ids}

    async def read_after(self, session_id: str, after: int) -> Replay | None:
        index = self.redis.index(session_id)
        fenced = "1" if self._fenced(index) else "0"
        reply = await self.redis.aio(index).eval(_READ, 2, *self._keys(session_id), after, fenced)
        if not reply:
            return None
        epoch, head, oldest, raw, history = reply
        entries = []
        for member in raw:
            seq, _, payload = member.decode().partition(" ")
            entries.append((int(seq), payload))
        return replay_of(self._epoch(epoch, history), int(head), after, entries, int(oldest) if oldest else None)


_store: StreamStore | None = None
_store_lock = threading.Lock()


def stream_store() -> StreamStore:
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                shards = configured_shards()
                if shards:
                    _store = RedisStreamStore(
                        shards=shards,
                        prefix=settings.CHANNEL_LAYER_PREFIX,
                        max_messages=settings.SESSION_STREAM_MAX_MESSAGES,
                        ttl_s=settings.SESSION_STREAM_TTL_S,
                    )
                else:
                    _store = MemoryStreamStore(
                        max_messages=settings.SESSION_STREAM_MAX_MESSAGES, ttl_s=settings.SESSION_STREAM_TTL_S
                    )
    return _store


# --- Publishing side -----------------------------------------------------------------


class _PendingResets:
    """Streams whose push could not be numbered (Redis down): reset them once Redis answers.

    A reset gives the stream a new epoch, so its clients resynchronise instead of trusting a
    stream with a hole nobody can see.
    """

    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, session_ids: Sequence[str]) -> None:
        with self._lock:
            self._pending.update(session_ids)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="stream-resets", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(0.5)  # the pushes that failed meanwhile join this batch
            with self._lock:
                batch = list(self._pending)
            if not batch:
                return
            self._reset(batch)
            logger.warning("reset %d session streams whose pushes could not be numbered", len(batch))
            with self._lock:
                self._pending.difference_update(batch)

    @retry(wait=wait_exponential(multiplier=0.5, max=10), before_sleep=before_sleep_log(logger, logging.INFO))
    def _reset(self, batch: list[str]) -> None:
        """Until Redis answers again."""
        stream_store().reset(batch)


pending_resets = _PendingResets()


# --- Connection side --------------------------------------------------------------------


@dataclass
class ReplayOutcome:
    recovered: bool
    replayed: int


class StreamCursor:
    """One connection's place in its session's stream: the epoch, the numbers sent before it
    opened (`start`) and the last number it sent (`delivered`). sessions_app.recovery moves it."""

    __slots__ = ("delivered", "epoch", "session_id", "start", "suspected_lag")

    def __init__(self, session_id: str, head: StreamHead) -> None:
        self.session_id = session_id
        self.suspected_lag = 0
        self.restart(head)

    def restart(self, head: StreamHead) -> None:
        """Follow the stream from `head` on (a resync: the client rebuilt its state up to it)."""
        self.epoch, self.start, self.delivered = head.epoch, head.seq, head.seq

    def lags_behind(self, head: StreamHead | None) -> bool:
        """True when a push is missing for two checks in a row (one check may just race its delivery)."""
        if head is None or head.epoch != self.epoch:
            return True
        if head.seq <= self.delivered:
            self.suspected_lag = 0
            return False
        lagging = self.suspected_lag > self.delivered
        self.suspected_lag = head.seq
        return lagging
