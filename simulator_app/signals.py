"""What the simulator app tells the apps above it (they connect in their AppConfig.ready()).

`simulator_ended` is sent inside the transaction in which a simulator became `stopped` or
`error`, so what a receiver writes (the market: cancel the user's open orders) commits with it.
"""

from __future__ import annotations

from django.dispatch import Signal

# sender: Simulator; user_id: int, status: str, reason: str
simulator_ended = Signal()
