"""The simulator app's error codes, registered with the error catalogue when imported."""

from __future__ import annotations

from enum import StrEnum

from sessions_app.realtime.errors import CodeKind, ErrorCodeSpec, register_error_codes


class SimulatorCode(StrEnum):
    SIMULATOR_ALREADY_RUNNING = "simulator_already_running"
    SIMULATOR_NOT_RUNNING = "simulator_not_running"
    SIMULATOR_UNAVAILABLE = "simulator_unavailable"
    UNKNOWN_PROFILE = "unknown_profile"
    CLOCK_UNAVAILABLE = "clock_unavailable"
    CLOCK_PLAYING = "clock_playing"
    TIME_OUT_OF_RANGE = "time_out_of_range"


register_error_codes(
    CodeKind.REQUEST,
    {
        SimulatorCode.SIMULATOR_ALREADY_RUNNING: ErrorCodeSpec(
            "This user already has a simulator starting, running or stopping (one at a time); `details` names it.",
            None,
            409,
        ),
        SimulatorCode.SIMULATOR_NOT_RUNNING: ErrorCodeSpec(
            "The action needs this user's simulator to be running (to stop one: starting or running), and it is not.",
            None,
            409,
        ),
        SimulatorCode.SIMULATOR_UNAVAILABLE: ErrorCodeSpec(
            "No simulator worker is alive to run a simulator; retry later (operators: start `simulator_worker`).",
            None,
            503,
        ),
        SimulatorCode.UNKNOWN_PROFILE: ErrorCodeSpec(
            "`profile` is not a realism profile: `ideal`, `realistic` (the default) or `harsh`.", None, 400
        ),
        SimulatorCode.CLOCK_UNAVAILABLE: ErrorCodeSpec(
            "The user's simulator trades on the shared feed, which has no clock of theirs: start one with a "
            "`replay` or `synthetic` market to pause, step, seek or change the speed.",
            None,
            409,
        ),
        SimulatorCode.CLOCK_PLAYING: ErrorCodeSpec(
            "`step_clock` needs the clock paused (or a synthetic walk to step); pause it with `set_clock` first.",
            None,
            409,
        ),
        SimulatorCode.TIME_OUT_OF_RANGE: ErrorCodeSpec(
            "The time is outside the replay's range (`start` .. `end` of its market); `details` names the range. "
            "A synthetic walk cannot seek.",
            None,
            422,
        ),
    },
)
