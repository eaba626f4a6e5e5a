"""Answering a request later (a simulated latency) without holding up the connection meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sessions_app.realtime.consumer import Connection
from sessions_app.realtime.logs import bind, log_context

logger = logging.getLogger(__name__)

_waiting: set[asyncio.Task[None]] = set()  # referenced until done, or the collector could drop them


def answer_later(
    conn: Connection, delay_s: float, finish: Callable[[], Awaitable[None]], *, request_id: str | None
) -> None:
    """Run `finish` after `delay_s`: heartbeats and pushes go on meanwhile. It then takes the
    connection's turn like a frame, so its reply still comes before the pushes its work causes;
    its failure takes the one error path (only logged once the socket closed: its work still counts)."""

    async def later() -> None:
        await asyncio.sleep(delay_s)
        async with conn.turn:
            context = bind(requestId=request_id) if request_id is not None else None
            try:
                await finish()
            except Exception as error:
                if conn.ending:
                    logger.warning("a deferred answer failed after its socket closed", exc_info=error)
                else:
                    await conn.answer_failure(error, request_id)
            finally:
                if context is not None:
                    log_context.reset(context)

    task = asyncio.ensure_future(later())
    _waiting.add(task)
    task.add_done_callback(_waiting.discard)
