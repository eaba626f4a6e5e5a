"""Handlers of the simulator messages."""

from __future__ import annotations

from channels.db import database_sync_to_async

from sessions_app.checks import require_active_session, require_own_device
from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.message_routes import handles
from simulator_app import services
from simulator_app.messages import SimulatorStarted, SimulatorStopped, StartSimulator, StopSimulator


@handles(StartSimulator)
async def start_simulator(conn: Connection, message: StartSimulator) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    simulator = await database_sync_to_async(services.simulator_start)(
        user_id=conn.user_id, session_id=conn.session_id, profile=message.profile
    )
    # Known at once for this connection's heartbeats; every connection of the user also hears the push.
    summary = services.simulator_summary(simulator)
    if summary.supersedes(conn.simulator):
        conn.simulator = summary
    await conn.send_message(
        SimulatorStarted(
            requestId=message.requestId,
            success=True,
            simulatorId=str(simulator.id),
            status=simulator.status,
            # Named when the client chose one (a spec client's reply stays the spec's); session_info always names it.
            profile=simulator.profile if message.profile is not None else None,
        )
    )


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
