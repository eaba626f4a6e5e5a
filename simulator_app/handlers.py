"""Handlers of the simulator messages: stop, and the trader's clock."""

from __future__ import annotations

from channels.db import database_sync_to_async

from sessions_app.checks import require_active_session, require_own_device
from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.message_routes import handles
from simulator_app import services
from simulator_app.clock import ClockSettings
from simulator_app.messages import (
    ClockChanged,
    SeekClock,
    SetClock,
    SimulatorStopped,
    StepClock,
    StopSimulator,
)
from simulator_app.models import Simulator

# `start_simulator` is answered by market_app.handlers: its `market` names the market's datasets.


@handles(StopSimulator)
async def stop_simulator(conn: Connection, message: StopSimulator) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    stop = await database_sync_to_async(services.simulator_stop)(user_id=conn.user_id, reason="stopped by the client")
    await conn.send_message(
        SimulatorStopped(
            requestId=message.requestId, success=True, simulatorId=str(stop.simulator_id), status=stop.status
        )
    )


def _clock_changed(request_id: str, simulator: Simulator, settings: ClockSettings) -> ClockChanged:
    return ClockChanged(
        requestId=request_id,
        success=True,
        simulatorId=str(simulator.id),
        speed="max" if settings.speed is None else settings.speed,
        paused=settings.paused,
        lockstep=settings.lockstep,
    )


@handles(SetClock)
async def set_clock(conn: Connection, message: SetClock) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    change: dict[str, object] = {}
    if message.speed is not None:
        change["speed"] = None if message.speed == "max" else float(message.speed)
    simulator, settings = await database_sync_to_async(services.simulator_clock_set)(
        user_id=conn.user_id, paused=message.paused, lockstep=message.lockstep, **change
    )
    await conn.send_message(_clock_changed(message.requestId, simulator, settings))


@handles(StepClock)
async def step_clock(conn: Connection, message: StepClock) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    simulator, settings = await database_sync_to_async(services.simulator_clock_step)(
        user_id=conn.user_id, bars=message.bars
    )
    await conn.send_message(_clock_changed(message.requestId, simulator, settings))


@handles(SeekClock)
async def seek_clock(conn: Connection, message: SeekClock) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    simulator, settings = await database_sync_to_async(services.simulator_clock_seek)(
        user_id=conn.user_id, time_ms=message.time
    )
    await conn.send_message(_clock_changed(message.requestId, simulator, settings))
