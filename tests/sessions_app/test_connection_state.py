"""What a connection knows of its session and its user's simulator."""

from __future__ import annotations

from sessions_app.connection_state import NO_SIMULATOR, SessionState, SimulatorSummary


def test_a_connection_ends_with_its_session_or_its_token_whichever_comes_first() -> None:
    assert SessionState(expires_ms=2_000, token_expires_ms=1_000).ends_at() == 1_000
    assert SessionState(expires_ms=2_000, token_expires_ms=3_000).ends_at() == 2_000
    assert SessionState(expires_ms=2_000).ends_at() == 2_000  # a ticket's socket names no token expiry


def test_a_newer_summary_supersedes_an_older_one_but_an_overtaken_update_does_not() -> None:
    starting = SimulatorSummary(status="starting", simulator_id="s", created_ms=10, version=1)
    running = SimulatorSummary(status="running", simulator_id="s", created_ms=10, version=2)
    next_one = SimulatorSummary(status="starting", simulator_id="t", created_ms=20, version=1)

    assert running.supersedes(starting) and starting.supersedes(NO_SIMULATOR)
    assert not starting.supersedes(running)  # an update that arrived after a newer one
    assert not running.supersedes(running)  # nothing new
    assert next_one.supersedes(running)  # the user's next simulator, however its version compares


def test_a_summary_travels_in_an_event_and_back_unchanged() -> None:
    summary = SimulatorSummary(status="running", simulator_id="s", profile="harsh", created_ms=10, version=3)

    assert SimulatorSummary.of_event(summary.as_event()) == summary
    assert SimulatorSummary.of_event(NO_SIMULATOR.as_event()) == NO_SIMULATOR
