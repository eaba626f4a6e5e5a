"""The simulator app's one way to publish, always after commit.

`simulator_status_update` is pushed to the owner's user group, numbered in each of
the user's session streams, so every connection of that user (on any server process)
hears it, and one that missed it gets it on `reconnect`. `simulator.assign` and `simulator.stop`
are commands to workers: hints that make things fast. The database stays the
truth, so a lost command only delays (workers poll), it never loses a simulator.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from sessions_app.layer import send_after_commit
from sessions_app.schema import epoch_ms, now_ms
from sessions_app.session_stream import push_to_user_after_commit
from simulator_app.groups import assignment_channel
from simulator_app.messages import SimulatorStatusUpdate
from simulator_app.models import Simulator


class SimulatorStatePush(TypedDict):
    """What a connection learns of the simulator besides the message (SimulatorState's fields)."""

    simulatorId: str
    status: str
    version: int
    createdAt: int


class SimulatorAssignCommand(TypedDict):
    type: Literal["simulator.assign"]
    simulatorId: str


class SimulatorStopCommand(TypedDict):
    type: Literal["simulator.stop"]
    simulatorId: str


def publish_status(simulator: Simulator) -> None:
    message = SimulatorStatusUpdate(
        simulatorId=str(simulator.id),
        simulatorStatus=simulator.status,
        timestamp=now_ms(),
        sessionId=str(simulator.session_id),
        reason=simulator.reason or None,
    )
    state: SimulatorStatePush = {
        "simulatorId": str(simulator.id),
        "status": simulator.status,
        "version": simulator.version,
        "createdAt": epoch_ms(simulator.created_at),
    }
    push_to_user_after_commit(user_id=simulator.user_id, message=message, data=dict(state))


def request_assignment(simulator: Simulator) -> None:
    command: SimulatorAssignCommand = {"type": "simulator.assign", "simulatorId": str(simulator.id)}
    send_after_commit(assignment_channel(), command)


def request_stop(simulator: Simulator, worker_channel: str) -> None:
    command: SimulatorStopCommand = {"type": "simulator.stop", "simulatorId": str(simulator.id)}
    send_after_commit(worker_channel, command)
