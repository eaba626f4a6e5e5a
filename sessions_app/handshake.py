"""A session handshake, for the consumer (sessions_app.realtime.consumer.Connection.connect).

In order: authenticate the token (or ticket) and device, count the connection against the limits,
join the user's group, attach the device's session (resuming the active one or opening a new one,
and taking the next connection generation so an older connection of the device closes) and read
its stream's head; then the consumer answers `connected`. A handshake that fails gives back what
it took. The handshakes in flight share each database step's trip (Batcher), so a storm of
reconnects costs a few queries per batch, not five per client.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from sessions_app import groups, selectors, services
from sessions_app.auth import authenticate_websocket_requests
from sessions_app.connection_state import SessionState, SimulatorSummary
from sessions_app.messages import Connected
from sessions_app.realtime.batching import Batcher
from sessions_app.realtime.errors import ProtocolError
from sessions_app.realtime.limits import Slot, client_address, connection_acquire, connection_release
from sessions_app.realtime.message_base import epoch_ms, now_ms
from sessions_app.realtime.session_stream import StreamHead, stream_store
from sessions_app.selectors import Credential


@dataclass(frozen=True)
class Attached:
    """A connection's session, and what it knows of its user's simulator, once attached."""

    session_id: str
    session: SessionState
    simulator: SimulatorSummary


def _attach_many(devices: list[tuple[int, int]]) -> list[Attached | ProtocolError]:
    # The simulator read comes after the session writes, in the same trip to the database thread.
    attached = services.sessions_attach(devices=devices)
    simulators = selectors.simulator_summaries_of_users(user_ids=[user_id for user_id, _ in devices])
    return [
        outcome if isinstance(outcome, ProtocolError) else _attached(outcome, simulators[user_id])
        for (user_id, _), outcome in zip(devices, attached, strict=True)
    ]


def _attached(outcome: services.AttachedSession, simulator: SimulatorSummary) -> Attached:
    session = outcome.session
    return Attached(
        session_id=str(session.id),
        session=SessionState(
            session_token=outcome.session_token,
            status=session.status,
            created_ms=epoch_ms(session.created_at),
            expires_ms=epoch_ms(session.expires_at),
            generation=outcome.generation,
            resumed=outcome.resumed,
        ),
        simulator=simulator,
    )


# The handshakes in flight share their trips to the database: one per step, not one each.
GIVE_BACK_TIMEOUT_S = 2.0  # leaving the groups of a failed handshake, at most
_authenticate = Batcher(authenticate_websocket_requests, name="authenticate")
_attach = Batcher(_attach_many, name="attach")


@dataclass(frozen=True)
class Opening:
    """What a handshake gave the connection: who it is, its slot in the limits, the groups it
    joined, its session, and the stream position it starts from."""

    credential: Credential
    slot: Slot
    groups: tuple[str, ...]
    attached: Attached
    head: StreamHead


async def open_session(*, scope: dict, layer: Any, channel: str, connection_id: str) -> Opening:
    """Run the handshake for the connection reading `channel`; raises ProtocolError (or a failure
    of a backing service) after giving back what it took."""
    credential = await _authenticate(scope)
    slot = await connection_acquire(
        user_id=credential.user_id,
        device_pk=credential.device_key,
        ip=client_address(scope),
        connection_id=connection_id,
    )
    joined: list[str] = []
    try:
        # Listening to the user before the session is attached: a refused connection must not
        # replace the device's live one, and a newer connection of the device (a later generation)
        # or a simulator change after the attach reaches this one. The one group carries what is
        # meant for the device or the session too (each event names which): every group costs a
        # subscription per connection on the production channel layer.
        group = groups.user_group(credential.user_id)
        await layer.group_add(group, channel)
        joined.append(group)
        attached = await _attach((credential.user_id, credential.device_key))
        # Read after joining: a push numbered later reaches this connection live.
        head = await stream_store().head(attached.session_id)
    except BaseException:
        await connection_release(slot=slot)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(GIVE_BACK_TIMEOUT_S):
                for group in joined:
                    await layer.group_discard(group, channel)
        raise
    attached.session.username = credential.username
    attached.session.token_expires_ms = epoch_ms(credential.expires_at)
    return Opening(credential, slot, tuple(joined), attached, head)


def connected_message(opening: Opening) -> Connected:
    credential, attached, head = opening.credential, opening.attached, opening.head
    session, simulator = attached.session, attached.simulator
    return Connected(
        sessionId=attached.session_id,
        sessionToken=session.session_token,
        userId=str(credential.user_id),
        deviceId=credential.device_id,
        heartbeatInterval=settings.WS_HEARTBEAT_INTERVAL_MS,
        heartbeatTimeout=settings.WS_HEARTBEAT_TIMEOUT_MS,
        timestamp=now_ms(),
        sessionStatus=session.status,
        createdAt=session.created_ms,
        expiresAt=session.expires_ms,
        resumed=session.resumed,
        simulatorStatus=simulator.status,
        simulatorId=simulator.simulator_id,
        maxMessageBytes=settings.WS_MAX_MESSAGE_BYTES,
        sessionSeq=head.seq,
        sessionEpoch=head.epoch,
        tokenExpiresAt=session.token_expires_ms or None,
    )
