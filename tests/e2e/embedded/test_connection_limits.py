"""Over WS_MAX_CONNECTIONS_PER_USER or _PER_IP the handshake is refused with `too_many_connections`
and close 4030; a closed connection frees its place; a device replacing its own connection is let in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.limits import assert_too_many, devices_of_new_user, open_socket, open_when_admitted
from tests.support.liveserver import DaphneServer, recv_until_closed
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory, running_server


@pytest.fixture(scope="module")
def two_per_user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("limits"), WS_MAX_CONNECTIONS_PER_USER="2") as server:
        yield server


def test_a_users_connection_over_the_limit_is_refused_until_one_closes(two_per_user: DaphneServer) -> None:
    first, second, third = devices_of_new_user(two_per_user, 3)
    with open_socket(two_per_user, first) as ws_first, open_socket(two_per_user, second):
        assert_too_many(two_per_user, third, "WS_MAX_CONNECTIONS_PER_USER")
        ws_first.close()
        with open_when_admitted(two_per_user, third) as ws_third:
            assert ws_third.close_code is None
        (other_user,) = devices_of_new_user(two_per_user, 1)
        with open_socket(two_per_user, other_user):  # the limit is per user
            pass


def test_a_device_replacing_its_own_connection_is_let_in_at_the_limit(two_per_user: DaphneServer) -> None:
    laptop, phone, tablet = devices_of_new_user(two_per_user, 3)
    with (
        open_socket(two_per_user, laptop) as old,
        open_socket(two_per_user, phone),
        open_socket(two_per_user, laptop) as new,  # the same device again
    ):
        messages, code = recv_until_closed(old)
        assert [m["type"] for m in messages] == ["connection_replaced"] and code == 4009
        assert_too_many(two_per_user, tablet, "WS_MAX_CONNECTIONS_PER_USER")  # still two open
        assert new.close_code is None


def test_connections_over_the_address_limit_are_refused_whoever_opens_them(make_server: ServerFactory) -> None:
    server = make_server(WS_MAX_CONNECTIONS_PER_USER="0", WS_MAX_CONNECTIONS_PER_IP="2", **RELAXED_LOGIN_THROTTLE)
    users = [devices_of_new_user(server, 1)[0] for _ in range(3)]
    with open_socket(server, users[0]), open_socket(server, users[1]) as ws:
        assert_too_many(server, users[2], "WS_MAX_CONNECTIONS_PER_IP")
        ws.close()
        with open_when_admitted(server, users[2]):
            pass


def test_behind_a_proxy_the_address_limit_counts_the_forwarded_address(make_server: ServerFactory) -> None:
    server = make_server(args=("--proxy-headers",), WS_MAX_CONNECTIONS_PER_IP="1", **RELAXED_LOGIN_THROTTLE)
    users = [devices_of_new_user(server, 1)[0] for _ in range(3)]

    def via(address: str) -> dict[str, Any]:
        return {"additional_headers": {"X-Forwarded-For": address}}

    with open_socket(server, users[0], **via("203.0.113.7")), open_socket(server, users[1], **via("203.0.113.8")):
        assert_too_many(server, users[2], "WS_MAX_CONNECTIONS_PER_IP", **via("203.0.113.7"))
