"""Simulator messages (protocol section "Simulator Management"). Declared once;
the handlers, the consumer, the schema export and the tests import them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from sessions_app.realtime.message_base import (
    ClientMessage,
    DeviceId,
    EpochMs,
    Omittable,
    RequestId,
    ServerMessage,
    StreamMessage,
)

SimulatorStatusValue = Literal["starting", "running", "stopping", "stopped", "error"]


# --- Server to client -------------------------------------------------------


class SimulatorStarted(ServerMessage):
    """Reply to `start_simulator`: the new simulator, usually `starting`; `simulator_status_update` follows."""

    type: Literal["simulator_started"] = "simulator_started"
    requestId: str
    success: bool
    simulatorId: str
    status: SimulatorStatusValue
    profile: Omittable[str] = Field(
        default=None, description="Its realism profile (an addition), when `start_simulator` named one."
    )

    omit_when_none = frozenset({"profile"})


class SimulatorStopped(ServerMessage):
    """Reply to `stop_simulator`: the stop is accepted; `simulator_status_update` reports `stopped`."""

    type: Literal["simulator_stopped"] = "simulator_stopped"
    requestId: str
    success: bool
    simulatorId: Omittable[str] = None
    status: Omittable[SimulatorStatusValue] = None

    omit_when_none = frozenset({"simulatorId", "status"})


class SimulatorStatusUpdate(StreamMessage):
    """Pushed to every connection of the user when their simulator changes status."""

    type: Literal["simulator_status_update"] = "simulator_status_update"
    simulatorId: str
    simulatorStatus: SimulatorStatusValue
    timestamp: EpochMs
    sessionId: str
    reason: Omittable[str] = None

    omit_when_none = StreamMessage.omit_when_none | {"reason"}


# --- Client to server -------------------------------------------------------


class StartSimulator(ClientMessage):
    type: Literal["start_simulator"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    profile: Omittable[Annotated[str, StringConstraints(max_length=32)]] = Field(
        default=None,
        description="The exchange's realism (an addition): `ideal`, `realistic` (the default) or `harsh`; "
        "another name is refused with `unknown_profile`.",
    )

    reply = SimulatorStarted


class StopSimulator(ClientMessage):
    type: Literal["stop_simulator"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId

    reply = SimulatorStopped


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (StartSimulator, StopSimulator)
SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (SimulatorStarted, SimulatorStopped, SimulatorStatusUpdate)
