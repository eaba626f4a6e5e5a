"""One channel's queue in a channel layer of ours (memory_layer, redis_layer): the messages
waiting and the receivers waiting.

A deque made on the first message and a future per waiting receiver, where an asyncio.Queue
keeps three deques (2.3 KB): almost every channel is an idle connection's, one receiver waiting
and nothing queued, so this is idle memory per connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """A channel's messages and its waiting receivers."""

    __slots__ = ("messages", "waiters")

    def __init__(self) -> None:
        self.messages: deque[T] | None = None
        self.waiters: list[asyncio.Future[T]] = []

    def put(self, message: T, capacity: int) -> bool:
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(message)
                return True
        if self.messages is None:
            self.messages = deque()
        if len(self.messages) >= capacity:
            return False
        self.messages.append(message)
        return True

    async def get(self) -> T:
        if self.messages:
            message = self.messages.popleft()
            if not self.messages:
                self.messages = None
            return message
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over as it was cancelled: keep it
                self.messages = self.messages or deque()
                self.messages.appendleft(waiter.result())
            elif waiter in self.waiters:
                self.waiters.remove(waiter)
            raise
