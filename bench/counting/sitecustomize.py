"""Counts a process's Redis round trips and commands and its SQL statements (bench/handshake_cost.py).

Put on PYTHONPATH with HANDSHAKE_COUNT_FILE set, Python imports it at start-up: it wraps redis-py's
send and pack (sync and asyncio) and adds an execute wrapper to every Django database connection,
then writes the counts to that file four times a second. Without the variable it does nothing.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

_FILE = os.environ.get("HANDSHAKE_COUNT_FILE")
counts: collections.Counter[str] = collections.Counter()


def _name(args: tuple) -> str:
    first = args[0] if args else b"?"
    text = first.decode() if isinstance(first, bytes) else str(first)
    return text.split()[0].upper()


def _install_redis() -> None:
    import redis.asyncio.connection as aconn
    import redis.connection as sconn

    for module, kind in ((aconn, "async"), (sconn, "sync")):
        cls = module.AbstractConnection
        send, pack = cls.send_packed_command, cls.pack_command
        if kind == "async":

            async def asend(self: Any, command: Any, check_health: bool = True, _send: Any = send) -> None:
                counts["redis.trips"] += 1
                await _send(self, command, check_health)

            cls.send_packed_command = asend
        else:

            def ssend(self: Any, command: Any, check_health: bool = True, _send: Any = send) -> None:
                counts["redis.trips"] += 1
                _send(self, command, check_health)

            cls.send_packed_command = ssend

        def counted_pack(self: Any, *args: Any, _pack: Any = pack) -> Any:
            counts["redis.commands"] += 1
            counts[f"redis.{_name(args)}"] += 1
            return _pack(self, *args)

        cls.pack_command = counted_pack

    # Who opens connections: the first caller outside redis-py (a pool that churns shows here).
    aconnect = aconn.AbstractConnection.connect

    async def counted_connect(self: Any, _connect: Any = aconnect) -> None:
        if not self.is_connected:
            counts[f"redis.connect by {_caller()}"] += 1
        await _connect(self)

    aconn.AbstractConnection.connect = counted_connect


def _caller() -> str:
    import traceback

    for frame in reversed(traceback.extract_stack()[:-2]):
        if "/redis/" not in frame.filename and "sitecustomize" not in frame.filename:
            return f"{Path(frame.filename).name}:{frame.name}"
    return "?"


def _install_sql() -> None:
    from django.db.backends.signals import connection_created

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        counts["sql.statements"] += 1
        counts[f"sql.{sql.split(None, 1)[0].upper() if sql else '?'}"] += 1
        return execute(sql, params, many, context)

    def on_created(sender: Any, connection: Any, **kwargs: Any) -> None:
        if wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.append(wrapper)

    connection_created.connect(on_created, weak=False)

    from django.db.backends.base.base import BaseDatabaseWrapper

    commit = BaseDatabaseWrapper.commit

    def counted_commit(self: Any) -> None:
        counts["sql.commits"] += 1
        commit(self)

    BaseDatabaseWrapper.commit = counted_commit


def _dump() -> None:
    assert _FILE
    while True:
        time.sleep(0.25)
        tmp = f"{_FILE}.tmp"
        with open(tmp, "w") as out:
            json.dump(dict(counts), out)
        os.replace(tmp, _FILE)


if _FILE:
    _install_redis()
    _install_sql()
    threading.Thread(target=_dump, name="handshake-counts", daemon=True).start()
