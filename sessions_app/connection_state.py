"""What a connection knows of its session and of its user's simulator (kept on the connection:
heartbeats and replies read it without touching the database)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SessionState:
    session_token: str = ""
    status: str = "active"
    created_ms: int = 0
    expires_ms: int = 0
    generation: int = 0
    resumed: bool = False
    username: str = ""
    token_expires_ms: int = 0  # the access token this socket lives on (conn.credential_key is its id)
    refreshed_at: float = 0.0  # monotonic time of the last refresh_token

    def ends_at(self) -> int:
        """When the connection must end: the session's expiry or its token's, whichever comes first."""
        return min(self.expires_ms, self.token_expires_ms) if self.token_expires_ms else self.expires_ms


@dataclass(frozen=True, slots=True)
class SimulatorSummary:
    """The user's newest simulator as the session messages show it (`simulatorStatus`,
    `simulatorId`, `profile`, `market`), with its creation time and version to tell a newer one."""

    status: str = "stopped"
    simulator_id: str | None = None
    profile: str | None = None
    created_ms: int = 0
    version: int = 0
    market: str = "shared"  # where its prices come from: shared, replay or synthetic

    @property
    def own_market(self) -> bool:
        """Its prices are its own (a replay or synthetic walk), not the shared feed's, while it lives."""
        return self.market != "shared" and self.status in ("starting", "running", "stopping")

    def supersedes(self, other: SimulatorSummary) -> bool:
        """Is this news to a connection that knows `other` (not the same, and not an older update
        overtaken by one it already has)?"""
        return self != other and (self.created_ms, self.version) >= (other.created_ms, other.version)

    def as_event(self) -> dict[str, object]:
        """The summary inside a channel-layer event (a push that changed it)."""
        return {
            "status": self.status,
            "simulatorId": self.simulator_id,
            "profile": self.profile,
            "createdAt": self.created_ms,
            "version": self.version,
            "market": self.market,
        }

    @classmethod
    def of_event(cls, data: dict[str, object]) -> SimulatorSummary:
        return cls(
            status=str(data["status"]),
            simulator_id=None if data.get("simulatorId") is None else str(data["simulatorId"]),
            profile=None if data.get("profile") is None else str(data["profile"]),
            created_ms=int(str(data.get("createdAt") or 0)),
            version=int(str(data.get("version") or 0)),
            market=str(data.get("market") or "shared"),
        )


NO_SIMULATOR = SimulatorSummary()
