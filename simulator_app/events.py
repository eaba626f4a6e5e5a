"""The simulator app's one way to publish, always after commit.

`simulator.status` goes to the owner's user group, so every connection of that
user (on any server process) hears it. `simulator.assign` and `simulator.stop`
are commands to workers: hints that make things fast. The database stays the
truth, so a lost command only delays (workers poll), it never loses a simulator.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from sessions_app.groups import user_group
from sessions_app.layer import group_send_after_commit, send_after_commit
from sessions_app.schema import epoch_ms, now_ms
from simulator_app.groups import assignment_channel
from simulator_app.models import Simulator


class SimulatorStatusEvent(TypedDict):
    type: Literal["simulator.status"]
    simulatorId: str
    sessionId: str
    status: str
    reason: str
    version: int
    createdAt: int
    timestamp: int


class SimulatorAssignCommand(TypedDict):
    type: Literal["simulator.assign"]
    simulatorId: str


class SimulatorStopCommand(TypedDict):
    type: Literal["simulator.stop"]
    simulatorId: str


def publish_status(simulator: Simulator) -> None:
    event: SimulatorStatusEvent = {
        "type": "simulator.status",
        "simulatorId": str(simulator.id),
        "sessionId": str(simulator.session_id),
        "status": simulator.status,
        "reason": simulator.reason,
        "version": simulator.version,
        "createdAt": epoch_ms(simulator.created_at),
        "timestamp": now_ms(),
    }
    group_send_after_commit(user_group(simulator.user_id), event)


def request_assignment(simulator: Simulator) -> None:
    command: SimulatorAssignCommand = {"type": "simulator.assign", "simulatorId": str(simulator.id)}
    send_after_commit(assignment_channel(), command)


def request_stop(simulator: Simulator, worker_channel: str) -> None:
    command: SimulatorStopCommand = {"type": "simulator.stop", "simulatorId": str(simulator.id)}
    send_after_commit(worker_channel, command)
