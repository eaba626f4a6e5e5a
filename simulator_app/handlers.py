"""Handlers of the simulator messages, what a connection keeps of its user's simulator, and
what the simulator app plugs into the sessions domain (the summary) and the kernel."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from sessions_app.realtime import Connection, Moment, after_push, describes, handles
from sessions_app.state import SimulatorSummary, require_active_session, require_own_device
from simulator_app import selectors, services
from simulator_app.messages import (
    SimulatorStarted,
    SimulatorStatusUpdate,
    SimulatorStopped,
    StartSimulator,
    StopSimulator,
)
from simulator_app.selectors import NO_SIMULATOR, SimulatorState

# A connection learned a new status of its user's simulator (the market follows prices while it runs).
simulator_changed = Moment("simulator_changed")


def summary_of(state: SimulatorState) -> SimulatorSummary:
    return SimulatorSummary(status=state.status, simulator_id=state.simulator_id, profile=state.profile)


NO_SUMMARY = summary_of(NO_SIMULATOR)


class SimulatorView:
    """A connection's knowledge of its user's newest simulator (and its summary, which every heartbeat reads)."""

    __slots__ = ("state", "summary")

    def __init__(self) -> None:
        self.state: SimulatorState = NO_SIMULATOR
        self.summary: SimulatorSummary = NO_SUMMARY

    def keep(self, state: SimulatorState) -> None:
        self.state, self.summary = state, summary_of(state)


def simulator_of(conn: Connection) -> SimulatorState:
    return conn.state(SimulatorView).state


def observe(conn: Connection, state: SimulatorState) -> bool:
    """Keep `state` unless it is older than what the connection knows. True if kept."""
    view = conn.state(SimulatorView)
    if state.is_not_older_than(view.state):
        view.keep(state)
        return True
    return False


class Summaries:
    """The sessions domain's view of the simulator (sessions_app.state.SummaryProvider)."""

    def current(self, conn: Connection) -> SimulatorSummary:
        return conn.state(SimulatorView).summary

    def read(self, *, user_id: int) -> SimulatorState:
        return selectors.simulator_state_of_user(user_id=user_id)

    def read_many(self, *, user_ids: list[int]) -> dict[int, SimulatorState]:
        return selectors.simulator_states_of_users(user_ids=user_ids)

    def summarise(self, state: SimulatorState) -> SimulatorSummary:
        return summary_of(state)

    def observe(self, conn: Connection, state: SimulatorState, *, only_newer: bool) -> bool:
        view = conn.state(SimulatorView)
        if state == view.state:
            return False
        if only_newer:
            return observe(conn, state)
        view.keep(state)
        return True

    async def announce(self, conn: Connection) -> None:
        await simulator_changed.run(conn)


@describes
def simulator_status_of(conn: Connection) -> dict[str, Any]:
    return {"simulatorStatus": simulator_of(conn).status}


@handles(StartSimulator)
async def start_simulator(conn: Connection, message: StartSimulator) -> None:
    require_own_device(conn, message.deviceId)
    require_active_session(conn)
    simulator = await database_sync_to_async(services.simulator_start)(
        user_id=conn.user_id, session_id=conn.session_id, profile=message.profile
    )
    observe(conn, SimulatorState.of(simulator))
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


@after_push(SimulatorStatusUpdate)
async def remember_simulator_status(conn: Connection, data: dict[str, Any]) -> None:
    state = SimulatorState(data["status"], data["simulatorId"], data["createdAt"], data["version"], data.get("profile"))
    if observe(conn, state):  # else an older update overtaken by one we already have
        await simulator_changed.run(conn)
