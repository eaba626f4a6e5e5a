"""What was read or built of an order, kept by the order's version.

An order's row changes only with its `updated_at` (every write of an order sets it), so a version
`(id, updated_at)` names one content for good. Snapshots and the worker's matching read the versions of
the orders they need (two columns) and the rows only of versions they have not seen: with 40 resting
orders, reading and building them every time was most of the cost of a fill.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Generic, TypeVar

Version = tuple[uuid.UUID, datetime]
T = TypeVar("T")
Read = dict[uuid.UUID, tuple[Version, T]]  # by id: its current version and value


class KeptByVersion(Generic[T]):
    """The values of the `size` versions used last, shared by the process's database threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[Version, T] = OrderedDict()
        self._lock = threading.Lock()

    def of(
        self, versions: Iterable[Version], read: Callable[[list[uuid.UUID]], dict[uuid.UUID, tuple[Version, T]]]
    ) -> list[T]:
        """The value of each version, in their order; `read` gets the ids of those not kept and returns,
        by id, each one's current version and value (an order written since its version was listed comes
        newer; one deleted since is left out)."""
        versions = list(versions)
        with self._lock:
            found = {version: self._kept.get(version) for version in versions}
        missing = [order_id for (order_id, _), value in found.items() if value is None]
        fresh = read(missing) if missing else {}
        values = []
        with self._lock:
            for version in versions:
                current, value = fresh.get(version[0], (version, found[version]))
                if value is None:
                    continue
                self._kept[current] = value
                self._kept.move_to_end(current)
                values.append(value)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return values
