"""What the sessions floor tells the apps above it (they connect in their AppConfig.ready()).

`session_ended` is sent inside the transaction that ended the session (stopped, expired, or its
device invalidated), so a receiver's writes commit or roll back with it; a receiver returns True
when it stopped something (the simulator app: the session's simulator).

The others are moments of a connection's life, sent with `asend` from its event loop (receivers
are coroutines), each with the connection as `connection`:
- `connection_opened`: after `connected` went out;
- `connection_closed`: the socket closed (only for connections that were opened);
- `connection_resynced`: the client must rebuild its state from a fresh snapshot; `reason` is
  `resync` (after `session_resync`, or a `reconnect` that could not recover the stream) or
  `reconnected` (a `reconnect` from a client that does not track the stream);
- `simulator_changed`: the connection learned a new status of its user's simulator
  (`connection.simulator`).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.dispatch import Signal

# sender: TradingSession; session_id: uuid.UUID, reason: str
session_ended = Signal()

# sender: Connection; connection: Connection (and reason: str for connection_resynced)
connection_opened = Signal()
connection_closed = Signal()
connection_resynced = Signal()
simulator_changed = Signal()


def session_ended_stopped_something(responses: Sequence[tuple[object, object]]) -> bool:
    return any(response is True for _, response in responses)
