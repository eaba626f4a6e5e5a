"""The trader's clock of a simulator with a market of its own (a replay or a synthetic walk).

Two halves, kept apart because two places write them:
- what the trader asked for (`ClockSettings`: speed, paused, and a step or a seek to do once),
  written by simulator_app.services in `Simulator.clock` and numbered by `version`;
- where the clock stands (`Clock`: the bar shown, its time, the last request applied), kept by the
  worker running the simulator and checkpointed with the run's state.

A worker applies each request once (by its version); one that adopts the simulator after a crash
applies the requests its checkpoint had not, so the clock resumes at the checkpointed time and speed.
Pure Python: no models, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_SPEED = 1.0
MAX_SPEED = 1000.0
MAX_STEP_BARS = 10_000


@dataclass(frozen=True)
class ClockSettings:
    """What the trader asked for. `speed` None is `max`: as fast as the worker can go."""

    speed: float | None = 1.0
    paused: bool = True
    lockstep: bool = False  # a bar waits for a client's acknowledgement of the one before
    version: int = 0
    step: int = 0  # bars to play at once (the request of this version), while paused
    seek_ms: int | None = None  # the time to move to (the request of this version)

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"speed": self.speed, "paused": self.paused, "version": self.version}
        if self.lockstep:
            state["lockstep"] = True
        if self.step:
            state["step"] = self.step
        if self.seek_ms is not None:
            state["seekMs"] = self.seek_ms
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ClockSettings:
        speed = state.get("speed", 1.0)
        return cls(
            speed=None if speed is None else float(speed),
            paused=bool(state.get("paused", True)),
            lockstep=bool(state.get("lockstep", False)),
            version=int(state.get("version", 0)),
            step=int(state.get("step", 0)),
            seek_ms=None if state.get("seekMs") is None else int(state["seekMs"]),
        )


@dataclass
class Clock:
    """Where a run's clock stands, and the settings it runs with."""

    settings: ClockSettings
    position: int = -1  # index of the bar shown last in the market's timeline (-1: none yet)
    time_ms: int | None = None  # that bar's time
    applied: int = 0  # the version of the last request applied
    steps_left: int = 0  # bars still to play for a step
    seek_ms: int | None = None  # a seek the market has still to make
    finished: bool = False  # the timeline's last bar was shown
    acknowledged: int = 0  # in lock-step, the `seq` (position + 1) of the last bar a client acknowledged

    @property
    def playing(self) -> bool:
        return not self.finished and (self.steps_left > 0 or self.seek_ms is not None or not self.settings.paused)

    @property
    def waiting(self) -> bool:
        """In lock-step, the bar shown is not acknowledged yet (a step or seek asked for does not wait)."""
        return (
            self.settings.lockstep
            and self.position >= 0
            and self.acknowledged != self.position + 1
            and self.steps_left == 0
            and self.seek_ms is None
        )

    def apply(self, settings: ClockSettings) -> bool:
        """Take the trader's newest settings; a step or seek of a version not yet applied is done once.
        Returns whether anything changed."""
        if settings.version <= self.applied:
            return False
        self.settings = settings
        self.applied = settings.version
        if settings.seek_ms is not None:
            self.seek_ms, self.steps_left = settings.seek_ms, 0
            self.finished = False
        elif settings.step:
            self.steps_left += settings.step
        return True

    def shown(self, position: int, time_ms: int, *, last: bool) -> None:
        """The market showed the bar at `position` (a step counts it)."""
        self.position, self.time_ms, self.finished = position, time_ms, last
        if self.steps_left:
            self.steps_left -= 1
        if last:
            self.steps_left = 0

    def to_state(self) -> dict[str, Any]:
        return {"position": self.position, "timeMs": self.time_ms, "applied": self.applied, "finished": self.finished}

    @classmethod
    def resume(cls, checkpoint: dict[str, Any] | None, settings: ClockSettings) -> Clock:
        """The clock of a run taken by a worker: where its checkpoint left it, then the requests since."""
        checkpoint = checkpoint or {}
        clock = cls(
            settings=settings,
            position=int(checkpoint.get("position", -1)),
            time_ms=checkpoint.get("timeMs"),
            applied=int(checkpoint.get("applied", 0)),
            finished=bool(checkpoint.get("finished", False)),
        )
        if settings.version > clock.applied:
            clock.apply(settings)
        return clock
