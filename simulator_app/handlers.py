"""Handlers of the simulator messages and of `simulator.status` events."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from sessions_app.consumers import SessionConsumer
from sessions_app.dispatch import after_push, handles, run_connection_hooks
from simulator_app import services
from simulator_app.messages import (
    SimulatorStarted,
    SimulatorStatusUpdate,
    SimulatorStopped,
    StartSimulator,
    StopSimulator,
)
from simulator_app.selectors import SimulatorState


@handles(StartSimulator)
async def start_simulator(conn: SessionConsumer, message: StartSimulator) -> None:
    assert conn.client is not None
    conn.require_own_device(message.deviceId)
    conn.require_active_session()
    simulator = await database_sync_to_async(services.simulator_start)(
        user_id=conn.client.user.pk, session_id=conn.session_id
    )
    conn.observe_simulator(SimulatorState.of(simulator))
    await conn.send_message(
        SimulatorStarted(
            requestId=message.requestId, success=True, simulatorId=str(simulator.id), status=simulator.status
        )
    )


@handles(StopSimulator)
async def stop_simulator(conn: SessionConsumer, message: StopSimulator) -> None:
    assert conn.client is not None
    conn.require_own_device(message.deviceId)
    conn.require_active_session()
    stop = await database_sync_to_async(services.simulator_stop)(
        user_id=conn.client.user.pk, reason="stopped by the client"
    )
    await conn.send_message(
        SimulatorStopped(
            requestId=message.requestId, success=True, simulatorId=str(stop.simulator_id), status=stop.status
        )
    )


@after_push(SimulatorStatusUpdate)
async def remember_simulator_status(conn: SessionConsumer, data: dict[str, Any]) -> None:
    state = SimulatorState(data["status"], data["simulatorId"], data["createdAt"], data["version"])
    if conn.observe_simulator(state):  # else an older update overtaken by one we already have
        await run_connection_hooks("simulator_changed", conn)
