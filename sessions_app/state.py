"""What a connection holds of the sessions domain, and what the apps above plug into it.

- SessionState: the connection's session (its token, status, expiry, the device generation).
- The simulator summary: heartbeat_ack, session_info, connected and session_resync name the
  user's simulator status, which the simulator app keeps. It registers a SummaryProvider here in
  its ready(); without one every connection reports `stopped`.
- Moments the sessions domain adds to the kernel's: `reconnected` (a `reconnect` succeeded
  without recovering the stream, from a client that does not track it) and `resynced` (the client
  must rebuild its state: after `session_resync`, or a `reconnect` that could not recover).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sessions_app.errors import SessionCode
from sessions_app.realtime import Connection, Moment, ProtocolError, now_ms


@dataclass(slots=True)
class SessionState:
    session_token: str = ""
    status: str = "active"
    created_ms: int = 0
    expires_ms: int = 0
    generation: int = 0
    resumed: bool = False
    username: str = ""
    token_expires_ms: int = 0  # the access token this socket lives on (conn.credential_key is its id)
    refreshed_at: float = 0.0  # monotonic time of the last refresh_token


def session_of(conn: Connection) -> SessionState:
    return conn.state(SessionState)


def end_by(conn: Connection) -> int:
    """When the connection must end: its session's expiry or its token's, whichever comes first."""
    state = session_of(conn)
    return min(state.expires_ms, state.token_expires_ms) if state.token_expires_ms else state.expires_ms


def session_is_valid(conn: Connection) -> bool:
    session = session_of(conn)
    return session.status == "active" and session.expires_ms > now_ms()


def require_active_session(conn: Connection) -> None:
    if not session_is_valid(conn):
        raise ProtocolError(SessionCode.SESSION_NOT_ACTIVE, f"session is {session_of(conn).status}")


def require_own_device(conn: Connection, device_id: str) -> None:
    if device_id != conn.device_id:
        raise ProtocolError(SessionCode.DEVICE_ID_MISMATCH, f"deviceId {device_id!r} is not this connection's")


# --- The simulator summary ------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatorSummary:
    status: str
    simulator_id: str | None
    profile: str | None = None  # the simulator's realism profile, when the app above names one


NO_SIMULATOR = SimulatorSummary(status="stopped", simulator_id=None)


class SummaryProvider(Protocol):
    def current(self, conn: Connection) -> SimulatorSummary:
        """What the connection knows now (memory only: heartbeats ask)."""

    def read(self, *, user_id: int) -> Any:
        """The user's state from the database (synchronous: call it in a database thread)."""

    def read_many(self, *, user_ids: list[int]) -> dict[int, Any]:
        """`read` for several users at once (a batch of handshakes), by user id."""

    def summarise(self, state: Any) -> SimulatorSummary:
        """The summary of a state `read` returned."""

    def observe(self, conn: Connection, state: Any, *, only_newer: bool) -> bool:
        """Keep `state` on the connection (only if newer than what it has, with only_newer); True if it changed."""

    async def announce(self, conn: Connection) -> None:
        """The connection's state changed outside the provider's own pushes (a resync): run its moment."""


class _NoSimulators:
    def current(self, conn: Connection) -> SimulatorSummary:
        return NO_SIMULATOR

    def read(self, *, user_id: int) -> Any:
        return None

    def read_many(self, *, user_ids: list[int]) -> dict[int, Any]:
        return dict.fromkeys(user_ids)

    def summarise(self, state: Any) -> SimulatorSummary:
        return NO_SIMULATOR

    def observe(self, conn: Connection, state: Any, *, only_newer: bool) -> bool:
        return False

    async def announce(self, conn: Connection) -> None:
        return None


_provider: SummaryProvider = _NoSimulators()


def use_summary_provider(provider: SummaryProvider) -> None:
    global _provider
    _provider = provider


def summaries() -> SummaryProvider:
    return _provider


reconnected = Moment("reconnected")
resynced = Moment("resynced")
