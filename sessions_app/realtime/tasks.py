"""Process-wide background tasks.

A task copies the context of whatever starts it. A process task started by a connection (the
first one to need a process-wide relay), or from a signal handler that interrupted one, would carry that
connection's log fields forever, and asgiref's guard against re-entering its single database
thread: every `database_sync_to_async` call of that task then fails with "Single thread executor
already being used". So process tasks start in an empty context of their own.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def start_process_task(
    coroutine: Coroutine[Any, Any, T], *, name: str, loop: asyncio.AbstractEventLoop | None = None
) -> asyncio.Task[T]:
    """Run `coroutine` as a task of the process, not of the connection or signal that started it."""
    loop = loop or asyncio.get_running_loop()
    return loop.create_task(coroutine, name=name, context=contextvars.Context())
