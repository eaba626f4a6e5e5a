"""What the sessions domain tells the apps above it (they connect in their AppConfig.ready()).

`session_ended` is sent inside the transaction that ended the session (stopped, expired, or its
device invalidated), so a receiver's writes commit or roll back with it; a receiver returns True
when it stopped something (the simulator app: the session's simulator).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.dispatch import Signal

# sender: TradingSession; session_id: uuid.UUID, reason: str
session_ended = Signal()


def session_ended_stopped_something(responses: Sequence[tuple[object, object]]) -> bool:
    return any(response is True for _, response in responses)
