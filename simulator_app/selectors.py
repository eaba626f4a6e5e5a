from __future__ import annotations

import uuid
from dataclasses import dataclass

from simulator_app.models import Simulator, SimulatorStatus


@dataclass(frozen=True)
class SimulatorState:
    status: str
    simulator_id: str | None


NO_SIMULATOR = SimulatorState(status=SimulatorStatus.STOPPED.value, simulator_id=None)


def simulator_state_of_session(*, session_id: uuid.UUID) -> SimulatorState:
    """The session's newest simulator, or `stopped`/None when it never had one."""
    row = Simulator.objects.filter(session_id=session_id).values_list("id", "status").first()
    if row is None:
        return NO_SIMULATOR
    return SimulatorState(status=row[1], simulator_id=str(row[0]))
