"""The simulator app's error codes, registered with the error catalogue when imported."""

from __future__ import annotations

from enum import StrEnum

from sessions_app.realtime.errors import CodeKind, ErrorCodeSpec, register_error_codes


class SimulatorCode(StrEnum):
    SIMULATOR_ALREADY_RUNNING = "simulator_already_running"
    SIMULATOR_NOT_RUNNING = "simulator_not_running"
    SIMULATOR_UNAVAILABLE = "simulator_unavailable"
    UNKNOWN_PROFILE = "unknown_profile"


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
    },
)
