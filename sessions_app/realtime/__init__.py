"""The socket kernel: one WebSocket per client, and nothing about trading.

It holds the consumer, the routing of client messages and channel-layer events, the publish
path (numbered pushes and unnumbered notifications, after commit), the session stream and its
stores, limits, rate limiting, quality judgement, presence, shutdown, the protocol export, the
error path and the metrics. It imports Django, Channels, redis, pydantic and prometheus_client;
never an app. The apps above it (the sessions domain, the simulator, the market) import only the
names below, and plug in through the registries in their AppConfig.ready().
"""

from sessions_app.realtime.admission import shutting_down
from sessions_app.realtime.batch import Batcher
from sessions_app.realtime.consumer import Connection, ConnectionCloseEvent
from sessions_app.realtime.errors import (
    CloseCode,
    CodeKind,
    ErrorCode,
    ErrorCodeSpec,
    ErrorDetail,
    ErrorMessage,
    ProtocolError,
    details_from,
    register_error_codes,
    spec_of,
)
from sessions_app.realtime.export import PROTOCOL_VERSION, with_error_codes
from sessions_app.realtime.messages import Shutdown, Timeout
from sessions_app.realtime.publish import notify, push
from sessions_app.realtime.redis_clients import RedisShard, ShardedRedis, configured_shards, sync_redis
from sessions_app.realtime.registry import (
    Moment,
    Opening,
    Presence,
    after_push,
    connected,
    describes,
    disconnected,
    handles,
    handles_event,
    register_family,
    use_chores,
    use_session_handler,
)
from sessions_app.realtime.schema import (
    ClientMessage,
    DeviceId,
    EpochMs,
    Omittable,
    RequestId,
    ServerMessage,
    StreamMessage,
    epoch_ms,
    message_type,
    now_ms,
    optional_epoch_ms,
)
from sessions_app.realtime.stream import ReplayOutcome, ResyncReason, StreamHead
from sessions_app.realtime.tasks import start_process_task

__all__ = [
    "PROTOCOL_VERSION",
    "Batcher",
    "ClientMessage",
    "CloseCode",
    "CodeKind",
    "Connection",
    "ConnectionCloseEvent",
    "DeviceId",
    "EpochMs",
    "ErrorCode",
    "ErrorCodeSpec",
    "ErrorDetail",
    "ErrorMessage",
    "Moment",
    "Omittable",
    "Opening",
    "Presence",
    "ProtocolError",
    "RedisShard",
    "ReplayOutcome",
    "RequestId",
    "ResyncReason",
    "ServerMessage",
    "ShardedRedis",
    "Shutdown",
    "StreamHead",
    "StreamMessage",
    "Timeout",
    "after_push",
    "configured_shards",
    "connected",
    "describes",
    "details_from",
    "disconnected",
    "epoch_ms",
    "handles",
    "handles_event",
    "message_type",
    "notify",
    "now_ms",
    "optional_epoch_ms",
    "push",
    "register_error_codes",
    "register_family",
    "shutting_down",
    "spec_of",
    "start_process_task",
    "sync_redis",
    "use_chores",
    "use_session_handler",
    "with_error_codes",
]
