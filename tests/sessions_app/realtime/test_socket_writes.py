"""The immediate-write patch of Twisted's TCP transport (sessions_app/realtime/internals.py), on real sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from twisted.internet import tcp
from twisted.internet.protocol import Protocol

from sessions_app.realtime import internals


class RecordingReactor:
    """Just enough of a reactor to see whether the transport asked to be woken up for writing."""

    def __init__(self) -> None:
        self.writers: list[object] = []

    def addWriter(self, writer: object) -> None:
        if writer not in self.writers:  # like a real reactor: registering twice is once
            self.writers.append(writer)

    def removeWriter(self, writer: object) -> None:
        self.writers.remove(writer)


@pytest.fixture
def connection() -> Iterator[tuple[tcp.Connection, socket.socket, RecordingReactor]]:
    assert internals.install_fast_socket_writes()
    ours, theirs = socket.socketpair()
    reactor = RecordingReactor()
    conn = tcp.Connection(ours, Protocol(), reactor)  # type: ignore[arg-type]
    conn.connected = 1
    yield conn, theirs, reactor
    ours.close()
    theirs.close()


def receive(sock: socket.socket, size: int) -> bytes:
    sock.settimeout(2)
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def test_a_frame_goes_out_at_once_without_waking_the_loop(connection: tuple) -> None:
    conn, peer, reactor = connection
    conn.write(b"hello")
    assert receive(peer, 5) == b"hello"
    assert reactor.writers == [] and conn._tempDataLen == 0


def test_what_the_kernel_does_not_take_is_buffered_and_later_writes_queue_behind_it(connection: tuple) -> None:
    conn, peer, reactor = connection
    big = bytes(range(256)) * 40_000  # 10 MB: more than a socket buffer holds
    conn.write(big)
    assert reactor.writers == [conn]  # the rest waits for the loop
    conn.doWrite()  # the peer reads nothing yet: the rest moves to Twisted's send buffer
    assert len(conn.dataBuffer) > conn.offset and conn._tempDataLen == 0
    received = receive(peer, 65_536)  # the kernel has room again, Twisted still holds the rest
    conn.write(b"after")  # must queue behind it, not jump the queue
    peer.settimeout(2)
    while len(received) < len(big) + 5:
        conn.doWrite()
        try:
            received += peer.recv(1 << 20)
        except TimeoutError:
            break
    assert received == big + b"after"


def test_a_closing_connection_is_left_to_twisted(connection: tuple) -> None:
    conn, _, reactor = connection
    conn.disconnecting = True
    conn.write(b"late")
    assert reactor.writers == [conn]  # buffered, as Twisted would
