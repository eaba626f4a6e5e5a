"""How realistic a simulator's exchange is: one profile per simulator, chosen at `start_simulator`.

A profile scales the instrument's own liquidity settings (spread and depth) and sets the costs of
trading (entry latency, a factor on the account's commission schedule). `ideal` is the exchange
without frictions: fills at the tick's price, bounded by the tick's volume, no fee, no delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProfileName(StrEnum):
    IDEAL = "ideal"
    REALISTIC = "realistic"
    HARSH = "harsh"


DEFAULT_PROFILE = ProfileName.REALISTIC


@dataclass(frozen=True)
class Realism:
    name: ProfileName
    frictionless: bool  # no book, spread, fee or latency: fills at the tick's price
    spread_factor: float  # multiplies the instrument's spread
    depth_factor: float  # multiplies the size at every level of the book
    latency_ms: int  # an order, replace or cancel takes effect this long after it arrives
    fee_factor: float  # multiplies the account's commission schedule


PROFILES: dict[ProfileName, Realism] = {
    ProfileName.IDEAL: Realism(
        ProfileName.IDEAL, frictionless=True, spread_factor=0.0, depth_factor=1.0, latency_ms=0, fee_factor=0.0
    ),
    ProfileName.REALISTIC: Realism(
        ProfileName.REALISTIC, frictionless=False, spread_factor=1.0, depth_factor=1.0, latency_ms=50, fee_factor=1.0
    ),
    ProfileName.HARSH: Realism(
        ProfileName.HARSH, frictionless=False, spread_factor=3.0, depth_factor=0.3, latency_ms=250, fee_factor=2.0
    ),
}


PROFILE_NAMES = frozenset(name.value for name in ProfileName)


def profile_name(name: str | None) -> ProfileName:
    """The profile whose book a simulator of that profile quotes: the default for none or an unknown name."""
    return ProfileName(name) if name in PROFILE_NAMES else DEFAULT_PROFILE


def realism_of(name: str | None) -> Realism:
    """The profile of that name; None is the default. An unknown name is the caller's to refuse first."""
    return PROFILES[ProfileName(name) if name is not None else DEFAULT_PROFILE]
