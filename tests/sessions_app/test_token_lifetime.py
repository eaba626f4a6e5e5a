"""Tokens on open sockets, in-process: the credential check that bounds a lost revocation event,
and `refresh_token` refusing a token that no longer holds."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from config.asgi import application
from sessions_app import services
from sessions_app.models import AccessToken
from sessions_app.realtime.maintenance import end_revoked
from tests.support.factories import issue_token
from tests.support.liveserver import request

pytestmark = [pytest.mark.django_db(transaction=True)]


async def open_connection(token: str, device_id: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/session/?token={token}&deviceId={device_id}")
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "connected"
    return communicator


async def test_a_revocation_whose_event_was_lost_ends_the_socket_at_the_next_credential_check() -> None:
    issued = await database_sync_to_async(issue_token)()
    communicator = await open_connection(issued.token, issued.device.device_id)
    # Revoked behind the service's back: no event reaches the socket.
    await database_sync_to_async(AccessToken.objects.filter(pk=issued.token_id).update)(revoked_at=timezone.now())

    await end_revoked()
    error = await communicator.receive_json_from(timeout=5)
    closed = await communicator.receive_output(timeout=5)

    assert error["code"] == "token_revoked"
    assert closed == {"type": "websocket.close", "code": 4001}


async def test_the_credential_check_leaves_sockets_with_good_tokens_alone() -> None:
    issued = await database_sync_to_async(issue_token)()
    communicator = await open_connection(issued.token, issued.device.device_id)

    await end_revoked()

    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_refresh_token_refuses_a_token_revoked_meanwhile() -> None:
    issued = await database_sync_to_async(issue_token)()
    device_id = issued.device.device_id
    communicator = await open_connection(issued.token, device_id)
    await database_sync_to_async(AccessToken.objects.filter(pk=issued.token_id).update)(revoked_at=timezone.now())

    await communicator.send_json_to(request("refresh_token", device_id, "renew"))
    reply = await communicator.receive_json_from(timeout=5)

    assert reply["type"] == "error" and reply["code"] == "token_revoked" and reply["requestId"] == "renew"
    await communicator.disconnect()


def test_tokens_revoked_names_revoked_deleted_and_disabled_users_tokens() -> None:
    good, revoked, disabled = issue_token(), issue_token(), issue_token()
    ids = {"good": good.token_id, "revoked": revoked.token_id, "disabled": disabled.token_id}
    AccessToken.objects.filter(pk=ids["revoked"]).update(revoked_at=timezone.now())
    disabled.device.user.is_active = False
    disabled.device.user.save()

    lapsed = services.tokens_revoked(token_ids=[*ids.values(), 10**9])

    assert sorted(lapsed) == sorted([ids["revoked"], ids["disabled"], 10**9])
