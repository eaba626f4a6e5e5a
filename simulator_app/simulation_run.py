"""What a running simulator does on each tick, and the state it checkpoints.

The worker (simulator_app.worker) owns the clock and the lease; a run only
keeps its own state, so it can be resumed by any worker from its last
checkpoint (`Simulator.state`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from simulator_app.clock import Clock, ClockSettings
from simulator_app.models import SimulatorStatus
from simulator_app.services import Claim


@dataclass
class SimulationRun:
    simulator_id: uuid.UUID
    epoch: int
    user_id: int
    session_id: uuid.UUID
    status: str
    ticks: int = 0
    run_ms: int = 0
    resumes: int = 0
    last_step_ms: int | None = None
    last_tick_seq: int | None = None  # the newest market tick matched for this run's user
    profile: str = "realistic"  # the realism profile the market matches this run's orders with
    market: dict[str, Any] = field(default_factory=dict)  # where its prices come from (empty: the shared feed)
    clock: Clock | None = None  # its own clock, for a market of its own
    own_state: dict[str, Any] = field(default_factory=dict)  # what its own market checkpoints beside the clock
    dirty: bool = field(default=False, repr=False)

    @classmethod
    def from_claim(cls, claim: Claim) -> SimulationRun:
        state = claim.state
        return cls(
            simulator_id=claim.simulator_id,
            epoch=claim.epoch,
            user_id=claim.user_id,
            session_id=claim.session_id,
            status=claim.status,
            ticks=int(state.get("ticks", 0)),
            run_ms=int(state.get("runMs", 0)),
            resumes=int(state.get("resumes", -1)) + 1,
            last_tick_seq=state.get("lastTickSeq"),
            profile=claim.profile,
            market=claim.market,
            clock=Clock.resume(state.get("clock"), ClockSettings.from_state(claim.clock)) if claim.market else None,
            own_state=dict(state.get("ownMarket", {})),
            dirty=True,
        )

    @property
    def own_market(self) -> bool:
        """Its prices are its own (a replay or a synthetic walk), played on its own clock."""
        return self.clock is not None

    @property
    def is_running(self) -> bool:
        return self.status == SimulatorStatus.RUNNING

    def step(self, now_ms: int) -> None:
        """Advance the simulation by one tick of the worker's clock."""
        if self.last_step_ms is not None:
            self.run_ms += max(0, now_ms - self.last_step_ms)
        self.last_step_ms = now_ms
        self.ticks += 1
        self.dirty = True

    def checkpoint(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "ticks": self.ticks,
            "runMs": self.run_ms,
            "resumes": self.resumes,
            "lastTickSeq": self.last_tick_seq,
        }
        if self.clock is not None:
            state["clock"] = self.clock.to_state()
            state["ownMarket"] = self.own_state
        return state
