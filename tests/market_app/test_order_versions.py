"""Values kept by an order's version (market_app.order_versions), without a database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from market_app.order_versions import KeptByVersion, Read, Version

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def version(n: int, at: int = 0) -> Version:
    return (uuid.UUID(int=n), T0 + timedelta(seconds=at))


def reader(values: dict[Version, str], asked: list[list[uuid.UUID]]) -> Callable[[list[uuid.UUID]], Read[str]]:
    def read(order_ids: list[uuid.UUID]) -> Read[str]:
        asked.append(order_ids)
        return {v[0]: (v, text) for v, text in values.items() if v[0] in order_ids}

    return read


def test_values_come_in_the_order_of_their_versions_and_are_read_once() -> None:
    kept: KeptByVersion[str] = KeptByVersion(10)
    asked: list[list[uuid.UUID]] = []
    rows = {version(1): "a", version(2): "b"}

    first = kept.of([version(2), version(1)], reader(rows, asked))
    again = kept.of([version(1), version(2)], reader(rows, asked))

    assert (first, again) == (["b", "a"], ["a", "b"])
    assert asked == [[uuid.UUID(int=2), uuid.UUID(int=1)]]


def test_a_new_version_is_read_and_a_deleted_order_left_out() -> None:
    kept: KeptByVersion[str] = KeptByVersion(10)
    asked: list[list[uuid.UUID]] = []
    kept.of([version(1), version(2)], reader({version(1): "a", version(2): "b"}, asked))

    shown = kept.of([version(1, at=5), version(2)], reader({version(1, at=5): "a2"}, asked))
    gone = kept.of([version(3)], reader({}, asked))

    assert (shown, gone) == (["a2", "b"], [])
    assert asked[1:] == [[uuid.UUID(int=1)], [uuid.UUID(int=3)]]


def test_an_order_written_after_its_version_was_listed_is_kept_under_the_version_read() -> None:
    kept: KeptByVersion[str] = KeptByVersion(10)
    asked: list[list[uuid.UUID]] = []
    kept.of([version(1)], reader({version(1, at=9): "newer"}, asked))

    assert kept.of([version(1, at=9)], reader({}, asked)) == ["newer"]
    assert len(asked) == 1


def test_only_the_versions_used_last_are_kept() -> None:
    kept: KeptByVersion[str] = KeptByVersion(2)
    asked: list[list[uuid.UUID]] = []
    rows = {version(n): str(n) for n in range(3)}
    kept.of([version(0), version(1)], reader(rows, asked))
    kept.of([version(0)], reader(rows, asked))  # 0 used last: 1 goes first
    kept.of([version(2)], reader(rows, asked))

    kept.of([version(0), version(1)], reader(rows, asked))

    assert asked[-1] == [uuid.UUID(int=1)]
