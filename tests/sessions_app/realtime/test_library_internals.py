"""Each use of a library's private parts holds on the pinned versions, and falls back to the
stock behaviour, with one warning, when the version or the attributes do not match."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.conf import settings
from twisted.internet import tcp

from sessions_app.realtime import internals
from sessions_app.realtime.memory_layer import EmbeddedChannelLayer

pytestmark = pytest.mark.usefixtures("fresh_verdicts")


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == internals.__name__ and r.levelno == logging.WARNING]


def fake_daphne_send(unsent: int) -> functools.partial:
    transport = SimpleNamespace(dataBuffer=b"x" * unsent, offset=0, _tempDataLen=0)
    return functools.partial(lambda protocol, message: None, SimpleNamespace(transport=transport))


def test_every_guard_holds_on_the_pinned_versions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    assert internals.check_all() == {guard.name: True for guard in internals.GUARDS}
    assert warnings_of(caplog) == []


def test_a_version_outside_the_tested_range_disables_every_guard_with_one_warning_each(
    unsupported_versions: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    verdicts = internals.check_all()
    internals.check_all()  # judged once: no second warning

    assert verdicts == {guard.name: False for guard in internals.GUARDS}
    assert len(warnings_of(caplog)) == len(internals.GUARDS)
    assert all("outside the tested range" in text for text in warnings_of(caplog))


def test_a_missing_attribute_disables_its_guard(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(internals.TRANSPORT_BACKLOG, "probe", lambda: False)

    assert not internals.TRANSPORT_BACKLOG.holds()
    assert internals.FAST_WRITES.holds()
    assert ["lacks the attributes" in text for text in warnings_of(caplog)] == [True]


def test_the_version_range_compares_numbers_not_text() -> None:
    guard = internals.Guard("probe", "twisted", "9.0", "10.0", lambda: True, "nothing")

    assert guard.why_not() is not None  # 26.x is not below 10.0, though "26" < "9" as text


def test_the_guards_cover_every_library_whose_private_parts_or_pool_are_used() -> None:
    guarded = {distribution for guard in internals.GUARDS for distribution, _, _ in guard.ranges()}

    assert guarded == {"daphne", "twisted", "autobahn", "channels", "channels-redis", "redis"}


def locked_versions() -> dict[str, str]:
    """The runtime lock's pins, by normalised distribution name."""
    pins = {}
    for line in (settings.BASE_DIR / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^]]*\])?==([^\s;]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def test_every_locked_version_lies_within_the_ranges_the_guards_were_tested_in() -> None:
    pins = locked_versions()
    outside = []
    for guard in internals.GUARDS:
        for distribution, minimum, below in guard.ranges():
            version = internals._numbers(pins[distribution])
            if not internals._numbers(minimum) <= version < internals._numbers(below):
                outside.append(f"{guard.name}: {distribution} {pins[distribution]} not in >={minimum},<{below}")

    assert outside == []


def test_a_redis_py_outside_its_range_disables_the_guards_that_lean_on_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    real = internals.installed_version
    monkeypatch.setattr(internals, "installed_version", lambda name: "9.0.0" if name == "redis" else real(name))

    verdicts = internals.check_all()

    assert [name for name, holds in verdicts.items() if not holds] == [
        internals.REDIS_LAYER_POOL.name,
        internals.REDIS_GROUP_JOINS.name,
    ]
    assert all("redis 9.0.0 is outside the tested range >=5.0,<9.0" in text for text in warnings_of(caplog))
    assert internals.waiting_redis_pool({"address": "redis://127.0.0.1:6379"}, size=4, timeout_s=1.0) is None


def test_the_socket_backlog_is_read_when_the_guard_holds_and_unknown_when_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert internals.outbound_backlog_bytes(fake_daphne_send(300)) == 300

    internals.TRANSPORT_BACKLOG.reset()
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
    assert internals.outbound_backlog_bytes(fake_daphne_send(300)) is None


def test_fast_writes_leave_twisted_alone_when_the_guard_does_not_hold(unsupported_versions: None) -> None:
    internals.uninstall_fast_socket_writes()
    stock = tcp.Connection.write

    assert internals.install_fast_socket_writes() is False
    assert tcp.Connection.write is stock


def test_fast_writes_patch_twisted_when_the_guard_holds() -> None:
    internals.uninstall_fast_socket_writes()
    stock = tcp.Connection.write
    try:
        assert internals.install_fast_socket_writes() is True
        assert tcp.Connection.write is not stock
    finally:
        internals.uninstall_fast_socket_writes()
    assert tcp.Connection.write is stock


async def test_the_server_inbox_is_used_only_while_its_guard_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    queue: asyncio.Queue = asyncio.Queue()

    assert internals.server_inbox(queue.get) is queue

    internals.SERVER_INBOX.reset()
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
    assert internals.server_inbox(queue.get) is None


async def test_the_reactor_loop_is_found_only_while_its_guard_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    reactor = SimpleNamespace(_asyncioEventloop=loop)

    assert internals.reactor_loop(reactor) is loop

    internals.REACTOR_LOOP.reset()
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
    assert internals.reactor_loop(reactor) is None


def test_receive_buffers_are_dropped_only_while_their_guard_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = SimpleNamespace(receive_buffer={"closed-channel": object(), "open-channel": object()})

    assert internals.drop_receive_buffer(layer, "closed-channel") is layer.receive_buffer
    assert set(layer.receive_buffer) == {"open-channel"}

    internals.REDIS_RECEIVE_BUFFER.reset()
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
    assert internals.drop_receive_buffer(layer, "open-channel") is None
    assert set(layer.receive_buffer) == {"open-channel"}


async def test_the_embedded_layer_falls_back_to_the_stock_layer_and_still_delivers(unsupported_versions: None) -> None:
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("prices", channel)

    await layer.group_send("prices", {"type": "tick", "seq": 1})

    assert layer.uses_internals is False
    assert layer.delivers_into_inboxes() is False
    assert await asyncio.wait_for(layer.receive(channel), 2) == {"type": "tick", "seq": 1}


async def test_the_embedded_layer_delivers_into_an_inbox_while_its_guard_holds() -> None:
    layer = EmbeddedChannelLayer()
    channel = await layer.new_channel()
    inbox: asyncio.Queue = asyncio.Queue()
    layer.deliver_into(channel, inbox)
    await layer.group_add("prices", channel)

    await layer.group_send("prices", {"type": "tick", "seq": 2})

    assert layer.delivers_into_inboxes() is True
    assert inbox.get_nowait() == {"type": "tick", "seq": 2}


@pytest.fixture
def lean_protocols() -> Iterator[None]:
    internals.uninstall_lean_protocols()
    assert internals.install_lean_protocols() is True
    yield
    internals.uninstall_lean_protocols()


def daphne_ws_factory() -> object:
    from daphne.ws_protocol import WebSocketFactory

    factory = WebSocketFactory(SimpleNamespace(), server="Daphne")
    factory.setProtocolOptions(maxMessagePayloadSize=4096, autoPingTimeout=7)
    return factory


def opened_protocol(factory: object) -> object:
    from twisted.internet.testing import StringTransport

    protocol = factory.buildProtocol(("127.0.0.1", 1))  # type: ignore[attr-defined]
    protocol.makeConnection(StringTransport())
    return protocol


def test_lean_protocols_keep_autobahn_options_on_one_class_not_on_every_connection(lean_protocols: None) -> None:
    factory = daphne_ws_factory()

    first, second = opened_protocol(factory), opened_protocol(factory)

    assert type(first) is type(second)
    options = first.CONFIG_ATTRS  # type: ignore[attr-defined]
    assert not set(options) & set(vars(first)), "an option was copied onto the instance"
    for name in options:
        assert getattr(first, name) == getattr(factory, name), name
    assert first.maxMessagePayloadSize == 4096 and first.autoPingTimeout == 7  # type: ignore[attr-defined]
    # A function-valued option is still called without the protocol as its first argument.
    assert first.perMessageCompressionAccept is factory.perMessageCompressionAccept  # type: ignore[attr-defined]


def test_lean_protocols_take_options_changed_after_the_first_connection(lean_protocols: None) -> None:
    factory = daphne_ws_factory()
    opened_protocol(factory)

    factory.setProtocolOptions(maxMessagePayloadSize=8192)  # type: ignore[attr-defined]

    assert opened_protocol(factory).maxMessagePayloadSize == 8192  # type: ignore[attr-defined]


def test_stock_autobahn_copies_its_options_onto_every_connection() -> None:
    internals.uninstall_lean_protocols()

    protocol = opened_protocol(daphne_ws_factory())

    assert set(protocol.CONFIG_ATTRS) <= set(vars(protocol))  # type: ignore[attr-defined]


def test_lean_protocols_leave_autobahn_alone_when_the_guard_does_not_hold(unsupported_versions: None) -> None:
    from autobahn.websocket import protocol
    from daphne.ws_protocol import WebSocketFactory

    internals.uninstall_lean_protocols()
    stock_build, stock_format = WebSocketFactory.buildProtocol, protocol.pformat

    assert internals.install_lean_protocols() is False
    assert (WebSocketFactory.buildProtocol, protocol.pformat) == (stock_build, stock_format)


def test_the_debug_dump_of_options_reads_as_pprint_when_it_is_shown() -> None:
    import pprint

    value = [("maxMessagePayloadSize", 4096, "WebSocketFactory")] * 5

    assert f"{internals._FormattedWhenShown(value)}" == pprint.pformat(value)


def test_a_process_channel_is_placed_by_its_process_part_only_while_its_guard_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sessions_app.realtime.redis_layer import RedisLayer

    layer = RedisLayer(hosts=[{"address": "redis://127.0.0.1:1/0"}] * 4)
    channels = [f"specific.{layer.client_prefix}!{n}" for n in range(64)]
    process = f"specific.{layer.client_prefix}!"

    assert internals.process_shard_value(channels[0]) == process
    assert internals.process_shard_value("prices") == "prices"  # groups and general channels as they are
    assert {layer.consistent_hash(channel) for channel in channels} == {layer.consistent_hash(process)}

    internals.REDIS_PROCESS_SHARD.reset()
    monkeypatch.setattr(internals, "installed_version", lambda distribution: "99.0.0")
    assert internals.process_shard_value(channels[0]) == channels[0]
    assert len({layer.consistent_hash(channel) for channel in channels}) > 1  # channels-redis's own hashing
