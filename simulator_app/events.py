"""The simulator app's channel-layer payloads (the services send them with push and notify).

`simulator_status_update` is pushed to the owner's user group, numbered in each of the user's
session streams, so every connection of that user (on any server process) hears it, and one
that missed it gets it on `reconnect`; the push carries the new summary, which each connection
keeps (sessions_app.connection_state.SimulatorSummary). `simulator.assign`, `simulator.stop` and
`simulator.clock` are commands to workers: hints that make things fast. The database stays the truth, so a lost
command only delays (workers poll), it never loses a simulator.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class SimulatorAssignCommand(TypedDict):
    type: Literal["simulator.assign"]
    simulatorId: str


class SimulatorStopCommand(TypedDict):
    type: Literal["simulator.stop"]
    simulatorId: str


class SimulatorClockCommand(TypedDict):
    """The trader's clock settings changed (simulator_app.clock.ClockSettings.to_state())."""

    type: Literal["simulator.clock"]
    simulatorId: str
    clock: dict[str, Any]
