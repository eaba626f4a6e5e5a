"""Channel names of the simulator app. Status updates go to the user's group
(sessions_app.groups.user_group); these are the workers' channels."""

from __future__ import annotations

from django.conf import settings


def assignment_channel() -> str:
    """The shared channel every simulator worker listens on; each start reaches every listening worker
    (Redis pub/sub) and the database claim decides which one runs it. Named with the deployment's
    prefix: Redis pub/sub has no databases, so deployments sharing a Redis would hear each other's."""
    return f"{settings.CHANNEL_LAYER_PREFIX}.simulators.assign"
