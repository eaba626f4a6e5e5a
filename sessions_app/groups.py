"""Channel-layer group names of the session app. Use these, never literals."""

from __future__ import annotations


def user_group(user_id: int) -> str:
    """Every connection of the user: what is meant for one device or session names it."""
    return f"sessions.user.{user_id}"
