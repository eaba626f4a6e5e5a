"""Bodies of the HTTP bootstrap API, declared once like the socket messages."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from sessions_app.realtime.message_base import WITHOUT_NUL, DeviceId, EpochMs, InputModel, Omittable


class TokenRequest(InputModel):
    """POST /api/auth/token/"""

    username: Annotated[str, StringConstraints(min_length=1, max_length=150, pattern=WITHOUT_NUL)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    deviceId: Omittable[DeviceId] = None


class TokenResponse(BaseModel):
    token: str
    deviceId: str
    expiresAt: EpochMs


class TicketResponse(BaseModel):
    """POST /api/auth/ticket/: open the socket with `?ticket=` once, before `expiresAt`."""

    ticket: str
    deviceId: str
    expiresAt: EpochMs


class DeviceInvalidateRequest(InputModel):
    """POST /api/devices/{deviceId}/invalidate/ (body optional)"""

    reason: Omittable[Annotated[str, StringConstraints(max_length=200, pattern=WITHOUT_NUL)]] = None


class DevicePath(BaseModel):
    """The path of POST /api/devices/{deviceId}/invalidate/"""

    model_config = ConfigDict(strict=True, frozen=True)
    deviceId: DeviceId


class DeviceView(BaseModel):
    deviceId: str
    createdAt: EpochMs
    lastSeenAt: EpochMs | None
    valid: bool
    invalidatedAt: EpochMs | None
    invalidatedReason: str


HTTP_MODELS: tuple[type[BaseModel], ...] = (
    TokenRequest,
    TokenResponse,
    TicketResponse,
    DeviceInvalidateRequest,
    DeviceView,
)
