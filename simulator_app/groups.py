"""Channel names of the simulator app. Status updates go to the user's group
(sessions_app.groups.user_group); these are the workers' channels."""

from __future__ import annotations


def assignment_channel() -> str:
    """The shared queue every simulator worker listens on; each message reaches one worker."""
    return "simulators.assign"
