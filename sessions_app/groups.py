"""Channel-layer group names of the session app. Use these, never literals."""

from __future__ import annotations

import uuid


def device_group(device_pk: int) -> str:
    return f"sessions.device.{device_pk}"


def session_group(session_id: uuid.UUID) -> str:
    return f"sessions.session.{session_id.hex}"


def user_group(user_id: int) -> str:
    return f"sessions.user.{user_id}"
