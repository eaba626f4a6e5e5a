"""A server process keeps what start-up made out of later collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sessions_app.realtime.process import GC_YOUNG_THRESHOLD, settle_garbage_collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
def test_objects_alive_at_start_up_are_frozen_and_young_collections_are_rarer() -> None:
    alive_at_start_up = {"settings": object()}
    settle_garbage_collector()

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > 700  # CPython's default
    # Frozen objects are in no generation: a full collection no longer walks them.
    assert not any(o is alive_at_start_up for o in gc.get_objects())
    assert alive_at_start_up["settings"] is not None
