"""What message handlers check of the connection before they act."""

from __future__ import annotations

from sessions_app.errors import SessionCode
from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.errors import ProtocolError
from sessions_app.realtime.message_base import now_ms


def require_own_device(conn: Connection, device_id: str) -> None:
    if device_id != conn.device_id:
        raise ProtocolError(SessionCode.DEVICE_ID_MISMATCH, f"deviceId {device_id!r} is not this connection's")


def session_is_valid(conn: Connection) -> bool:
    return conn.session.status == "active" and conn.session.expires_ms > now_ms()


def require_active_session(conn: Connection) -> None:
    if not session_is_valid(conn):
        raise ProtocolError(SessionCode.SESSION_NOT_ACTIVE, f"session is {conn.session.status}")
