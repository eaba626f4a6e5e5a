"""Write to a TCP socket at once when nothing is queued before it (daphne's Twisted transport).

Twisted's transport buffers every write and sends it on the next loop iteration: each frame
costs registering the socket for writing, an extra pass through the event loop, the send, and
unregistering it (two epoll_ctl calls per frame). Asyncio's own transports try the send
straight away and buffer only what the kernel did not take; this does the same for Twisted's
plain (non-TLS) TCP connections. Order is kept: the fast path is taken only when the
transport's buffer is empty, and anything left over goes through Twisted's buffer as before.
Measured in bench/suite.py (README "Performance").
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    """Patch twisted.internet.tcp.Connection.write once per process (idempotent)."""
    global _installed
    if _installed:
        return
    from twisted.internet import tcp

    buffered_write = tcp.Connection.write

    def write(self: Any, data: bytes) -> None:
        if (
            data
            and not self.TLS
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self._tempDataLen
            and len(self.dataBuffer) == self.offset
        ):
            sent = self.writeSomeData(data)
            if isinstance(sent, int):  # else the connection is lost: Twisted's own path reports it
                if sent == len(data):
                    return
                data = bytes(memoryview(data)[sent:])
        buffered_write(self, data)

    tcp.Connection.write = write
    _installed = True
