"""Process-wide tasks start in a context of their own, whoever starts them."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from sessions_app.realtime.logs import bind, log_context
from sessions_app.realtime.process import start_process_task


# asgiref's sync_to_async is what database_sync_to_async runs on (its one thread for database
# work), without the connection clean-up that would need a test database.
async def _uses_the_database_thread() -> str:
    return await sync_to_async(lambda: "ran")()


async def _started_from_inside_a_database_call(start) -> asyncio.Task[str]:
    """Start a task the way a signal handler does: scheduled from code a database call interrupted."""
    loop = asyncio.get_running_loop()
    started: asyncio.Future[asyncio.Task[str]] = loop.create_future()

    def in_the_database_thread() -> None:
        loop.call_soon_threadsafe(lambda: started.set_result(start(_uses_the_database_thread())))

    await sync_to_async(in_the_database_thread)()
    return await started


async def test_a_process_task_started_from_inside_a_database_call_can_still_use_the_database() -> None:
    task = await _started_from_inside_a_database_call(lambda coro: start_process_task(coro, name="test"))
    assert await task == "ran"


async def test_a_plain_task_started_there_inherits_the_guard_that_refuses_the_database() -> None:
    # What start_process_task exists for: the copied context says "already in the database thread".
    task = await _started_from_inside_a_database_call(asyncio.ensure_future)
    with pytest.raises(RuntimeError, match="would deadlock"):
        await task


async def test_a_process_task_does_not_carry_the_log_fields_of_the_connection_that_started_it() -> None:
    async def fields() -> dict | None:
        return log_context.get()

    bind(connectionId="c-1", userId=7)
    assert await start_process_task(fields(), name="test") is None
