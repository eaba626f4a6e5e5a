"""Simulator messages (protocol section "Simulator Management"). Declared once;
the handlers, the consumer, the schema export and the tests import them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from sessions_app.realtime.message_base import (
    WHOLE,
    ClientMessage,
    DeviceId,
    EpochMs,
    InputModel,
    Omittable,
    RequestId,
    ServerMessage,
    StreamMessage,
)
from simulator_app.clock import MAX_SPEED, MAX_STEP_BARS, MIN_SPEED, Clock

SimulatorStatusValue = Literal["starting", "running", "stopping", "stopped", "error"]
MarketSource = Literal["shared", "replay", "synthetic"]
Speed = Annotated[float, Field(ge=MIN_SPEED, le=MAX_SPEED)] | Literal["max"]
SPEED_DESCRIPTION = (
    f"How many times real time the clock runs: {MIN_SPEED:g} to {MAX_SPEED:g}, or `max` (as fast as the worker goes)."
)
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9.\-]{1,20}$")]


# --- The market of a simulator ------------------------------------------------------------


class MarketChoice(InputModel):
    """Where a new simulator's prices come from (`start_simulator`'s `market`, an addition): `shared`, the
    one feed everyone sees (the default); `replay`, bars of a dataset (`GET /api/market/datasets/`) on the
    trader's own clock; `synthetic`, a random walk of the instruments from the trader's own seed."""

    source: MarketSource
    datasetId: Omittable[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")]] = Field(
        default=None, description="`replay`: the dataset to replay (required)."
    )
    symbols: Omittable[Annotated[list[Symbol], Field(min_length=1, max_length=50)]] = Field(
        default=None, description="`replay`: the dataset's symbols to replay (default: all of them)."
    )
    start: Omittable[EpochMs] = Field(
        default=None, description="`replay`: the first bar at or after this time (default: the data's first)."
    )
    end: Omittable[EpochMs] = Field(
        default=None, description="`replay`: the last bar at or before this time (default: the data's last)."
    )
    seed: Omittable[Annotated[int, Field(ge=0, le=2**53 - 1), WHOLE]] = Field(
        default=None, description="`synthetic`: the random walk's seed (default: a random one, shown back)."
    )
    speed: Omittable[Speed] = Field(
        default=None,
        description=SPEED_DESCRIPTION + " Default: 1 for a replay, the shared feed's pace for a synthetic walk.",
    )
    paused: Omittable[bool] = Field(
        default=None, description="Start paused at the first bar (the default for a replay) or playing."
    )
    lockstep: Omittable[bool] = Field(
        default=None,
        description="Move past a bar only once a client acknowledged it with `market_ack` (default false): a "
        "bot, however slow, sees every bar and trades on the next.",
    )


class MarketView(BaseModel):
    """A simulator's market as chosen (the defaults filled in)."""

    source: MarketSource
    datasetId: str | None = None
    symbols: list[str] | None = None
    start: EpochMs | None = None
    end: EpochMs | None = None
    seed: int | None = None
    bars: int | None = Field(default=None, description="`replay`: how many bar times the range holds.")

    @classmethod
    def of(cls, market: Mapping[str, Any]) -> MarketView:
        """The view of a `Simulator.market` (empty: the shared feed)."""
        return cls(
            source=market.get("source", "shared"),
            datasetId=market.get("datasetId"),
            symbols=market.get("symbols"),
            start=market.get("start"),
            end=market.get("end"),
            seed=market.get("seed"),
            bars=market.get("bars"),
        )


class ClockView(BaseModel):
    """Where a simulator's own clock stands."""

    speed: float | Literal["max"] = Field(description=SPEED_DESCRIPTION)
    paused: bool
    lockstep: bool = Field(default=False, description="Each bar waits for a client's `market_ack` of the one before.")
    time: EpochMs | None = Field(default=None, description="The market time of the bar shown last.")
    bar: int | None = Field(default=None, description="Its index in the replay (0 is the first bar).")
    finished: bool = Field(default=False, description="The replay's last bar was shown; seek to play again.")

    @classmethod
    def of(cls, clock: Clock) -> ClockView:
        speed = clock.settings.speed
        return cls(
            speed="max" if speed is None else speed,
            paused=clock.settings.paused and clock.steps_left == 0,
            lockstep=clock.settings.lockstep,
            time=clock.time_ms,
            bar=clock.position if clock.position >= 0 else None,
            finished=clock.finished,
        )


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
    market: Omittable[MarketView] = Field(
        default=None, description="Its market (an addition), when `start_simulator` named one."
    )
    clock: Omittable[ClockView] = Field(default=None, description="Its own clock, for a replay or synthetic market.")

    omit_when_none = frozenset({"profile", "market", "clock"})


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

    market: Omittable[MarketChoice] = Field(
        default=None,
        description="Where its prices come from (an addition; default `shared`). A replay or synthetic market "
        "has a clock of its own: `set_clock`, `step_clock`, `seek_clock`.",
    )
    accountId: Omittable[Annotated[int, Field(ge=1, le=2**63 - 1), WHOLE]] = Field(
        default=None,
        description="Which of your accounts it trades (an addition; docs/protocol.md §4f): default your default "
        "account. It becomes your current account. A `profile` left out is the account's.",
    )

    reply = SimulatorStarted


class StopSimulator(ClientMessage):
    type: Literal["stop_simulator"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId

    reply = SimulatorStopped


# --- The trader's clock (a replay or synthetic market) ------------------------------------


class ClockChanged(ServerMessage):
    """Reply to `set_clock`, `step_clock` and `seek_clock`: the request is recorded; the simulator's
    worker applies it at once and pushes `clock_update` with where the clock then stands."""

    type: Literal["clock_changed"] = "clock_changed"
    requestId: str
    success: bool
    simulatorId: str
    speed: float | Literal["max"]
    paused: bool
    lockstep: bool


class ClockUpdate(StreamMessage):
    """Pushed to every connection of the user when their simulator's clock changed: a request applied,
    a step or seek done, the replay's end reached, or the simulator resumed on another worker."""

    type: Literal["clock_update"] = "clock_update"
    simulatorId: str
    clock: ClockView
    market: MarketView
    timestamp: EpochMs


class SetClock(ClientMessage):
    """Play, pause or change the speed of the user's own market (a replay or synthetic simulator)."""

    type: Literal["set_clock"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    speed: Omittable[Speed] = Field(default=None, description=SPEED_DESCRIPTION + " Left out: unchanged.")
    paused: Omittable[bool] = Field(default=None, description="Pause (true) or play (false). Left out: unchanged.")
    lockstep: Omittable[bool] = Field(
        default=None,
        description="Wait for a `market_ack` of each bar before the next (true) or not. Left out: unchanged.",
    )

    reply = ClockChanged


class StepClock(ClientMessage):
    """Play `bars` bars at once and stay paused; refused while playing (`clock_playing`)."""

    type: Literal["step_clock"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    bars: Annotated[int, Field(ge=1, le=MAX_STEP_BARS), WHOLE] = 1

    reply = ClockChanged


class SeekClock(ClientMessage):
    """Move a replay to the first bar at or after `time` (within its range); the speed and pause stay."""

    type: Literal["seek_clock"]
    requestId: RequestId
    timestamp: float
    deviceId: DeviceId
    time: EpochMs

    reply = ClockChanged


CLIENT_MESSAGES: tuple[type[ClientMessage], ...] = (StartSimulator, StopSimulator, SetClock, StepClock, SeekClock)
SERVER_MESSAGES: tuple[type[ServerMessage], ...] = (
    SimulatorStarted,
    SimulatorStopped,
    SimulatorStatusUpdate,
    ClockChanged,
    ClockUpdate,
)
