"""What runs inside every simulator worker next to the simulators, registered by the apps above.

The market registers its trading desk (matching each tick against the open orders of the users
whose simulators this worker runs) and the shared price feed, in its AppConfig.ready(). A worker
builds one of each extension when it starts; it joins the groups they name with its command
channel, hands them every command it does not handle itself, tells them when a run starts, after
every lease renewal, and when it stops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

# The worker (simulator_app.worker.Worker), which imports this module.
Worker = Any


class WorkerExtension(Protocol):
    groups: tuple[str, ...]

    async def on_command(self, message: dict) -> None:
        """A message on the worker's own channel that the worker does not handle itself."""

    async def run_started(self, user_id: int) -> None:
        """The worker began running a simulator of this user."""

    async def renewed(self) -> None:
        """After every lease renewal (SIMULATOR_LEASE_RENEW_MS)."""

    async def stop(self, *, hand_over: bool) -> None:
        """The worker stops; with hand_over, another worker should take over at once."""


ExtensionFactory = Callable[[Worker], WorkerExtension]
EXTENSIONS: list[ExtensionFactory] = []


def runs_in_workers(factory: ExtensionFactory) -> ExtensionFactory:
    EXTENSIONS.append(factory)
    return factory
