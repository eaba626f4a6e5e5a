"""What an idle connection holds under daphne: a light inbox instead of an asyncio.Queue, autobahn's
protocol state in slots, and no HTTP upgrade request kept for the socket's life."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel

from sessions_app.realtime import internals
from sessions_app.realtime.internals import ConnectionInbox

pytestmark = pytest.mark.usefixtures("fresh_verdicts")


# --- the inbox -------------------------------------------------------------------------------


async def test_the_inbox_hands_items_out_oldest_first_and_counts_them() -> None:
    inbox = ConnectionInbox()
    assert inbox.empty() and inbox.qsize() == 0

    for n in range(5):
        inbox.put_nowait(n)

    assert inbox.qsize() == 5 and not inbox.empty()
    assert [await inbox.get() for _ in range(3)] == [0, 1, 2]
    inbox.put_nowait(5)
    assert [inbox.get_nowait() for _ in range(3)] == [3, 4, 5]
    assert inbox.empty()
    with pytest.raises(asyncio.QueueEmpty):
        inbox.get_nowait()


async def test_a_reader_waits_for_the_next_item() -> None:
    inbox = ConnectionInbox()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not reader.done()

    inbox.put_nowait({"type": "websocket.connect"})

    assert await asyncio.wait_for(reader, 1) == {"type": "websocket.connect"}


async def test_a_reader_canceled_after_being_woken_leaves_the_item_to_the_next_reader() -> None:
    inbox = ConnectionInbox()
    first = asyncio.ensure_future(inbox.get())
    second = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)

    inbox.put_nowait("only")  # wakes the first reader...
    first.cancel()  # ...which is canceled before it runs

    assert await asyncio.wait_for(second, 1) == "only"
    assert first.cancelled()
    assert inbox.empty()


async def test_several_readers_each_get_one_item() -> None:
    inbox = ConnectionInbox()
    readers = [asyncio.ensure_future(inbox.get()) for _ in range(3)]
    await asyncio.sleep(0)

    for item in "abc":
        inbox.put_nowait(item)

    assert sorted(await asyncio.gather(*readers)) == ["a", "b", "c"]


# --- daphne's application queue ----------------------------------------------------------------


@pytest.fixture
def lean_inboxes() -> Iterator[None]:
    internals.uninstall_lean_inboxes()
    assert internals.install_lean_inboxes() is True
    yield
    internals.uninstall_lean_inboxes()


def fake_daphne_server(received: list[Any]) -> Any:
    async def application(*, scope: dict, receive: Any, send: Any) -> None:
        received.append(await receive())

    return SimpleNamespace(connections={"protocol": {}}, application=application, handle_reply=lambda *a: None)


async def test_daphne_gives_each_connection_a_light_inbox_its_application_reads(lean_inboxes: None) -> None:
    from daphne.server import Server

    received: list[Any] = []
    server = fake_daphne_server(received)

    inbox = Server.create_application(server, "protocol", {"type": "websocket"})
    assert isinstance(inbox, ConnectionInbox)
    inbox.put_nowait({"type": "websocket.connect"})
    await server.connections["protocol"]["application_instance"]

    assert received == [{"type": "websocket.connect"}]
    assert internals.server_inbox(inbox.get) is inbox


async def test_daphne_keeps_its_asyncio_queue_when_the_guard_does_not_hold(unsupported_versions: None) -> None:
    from daphne.server import Server

    internals.uninstall_lean_inboxes()
    stock = Server.create_application

    assert internals.install_lean_inboxes() is False
    assert Server.create_application is stock
    server = fake_daphne_server([])
    assert isinstance(Server.create_application(server, "protocol", {"type": "websocket"}), asyncio.Queue)
    server.connections["protocol"]["application_instance"].cancel()


# --- autobahn's protocol state -------------------------------------------------------------------


@pytest.fixture
def lean_protocols() -> Iterator[None]:
    internals.uninstall_lean_protocols()
    assert internals.install_lean_protocols() is True
    yield
    internals.uninstall_lean_protocols()


def opened_protocol() -> Any:
    from daphne.ws_protocol import WebSocketFactory

    factory = WebSocketFactory(SimpleNamespace(), server="Daphne")
    protocol = factory.buildProtocol(("127.0.0.1", 1))
    protocol.makeConnection(StringTransport())
    return protocol


def test_lean_protocols_hold_their_state_in_slots_instead_of_a_dict(lean_protocols: None) -> None:
    lean = opened_protocol()
    slots = type(lean).__slots__
    internals.uninstall_lean_protocols()
    stock = opened_protocol()

    assert len(vars(lean)) < len(vars(stock)) // 4
    # The same state, read through the slots.
    for name in set(vars(stock)) & set(slots):
        assert type(getattr(lean, name)) is type(vars(stock)[name]), name


def test_a_name_with_a_class_level_default_is_not_made_a_slot() -> None:
    class Base:
        transport = None

        def start(self) -> None:
            self.transport = "tcp"
            self.state = 1
            self.state_count = self.state + 1

    assert internals._instance_attribute_names(Base) == ("state", "state_count")


# --- the HTTP channel a socket was upgraded from -----------------------------------------------------


def upgraded_transport(*, handling: bool = True) -> tuple[StringTransport, HTTPChannel]:
    channel = HTTPChannel()
    channel._handlingRequest = handling  # the upgrade request never finishes
    transport = StringTransport()
    transport.registerProducer(channel, True)
    return transport, channel


def test_the_upgraded_http_channel_is_let_go(lean_protocols: None) -> None:
    transport, _ = upgraded_transport()

    assert internals.release_upgraded_channel(transport) is True
    assert transport.producer is None


def test_a_channel_still_serving_a_request_stays_the_producer(lean_protocols: None) -> None:
    transport, channel = upgraded_transport(handling=False)

    assert internals.release_upgraded_channel(transport) is False
    assert transport.producer is channel


def test_the_upgraded_channel_stays_without_lean_protocols() -> None:
    internals.uninstall_lean_protocols()
    transport, channel = upgraded_transport()

    assert internals.release_upgraded_channel(transport) is False
    assert transport.producer is channel


def test_the_upgraded_channel_stays_when_the_guard_does_not_hold(
    lean_protocols: None, unsupported_versions: None
) -> None:
    transport, channel = upgraded_transport()

    assert internals.release_upgraded_channel(transport) is False
    assert transport.producer is channel
