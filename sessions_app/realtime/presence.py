"""Who this process saw since the last flush: the sessions and devices that sent a message. The
maintenance task writes their last-seen times in batches, so heartbeats never touch the database."""

from __future__ import annotations

_sessions: set[str] = set()
_devices: set[int] = set()


def seen(*, session_id: str, device_key: int) -> None:
    _sessions.add(session_id)
    _devices.add(device_key)


def take() -> tuple[list[str], list[int]]:
    """Everything seen since the last take (forgotten here: give it back if it cannot be written)."""
    sessions, devices = list(_sessions), list(_devices)
    _sessions.clear()
    _devices.clear()
    return sessions, devices


def give_back(session_ids: list[str], device_keys: list[int]) -> None:
    _sessions.update(session_ids)
    _devices.update(device_keys)
