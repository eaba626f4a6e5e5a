"""The shared price feed: one producer at a time (a lease with a fencing epoch), continuity
across producers, the seed, replay mode, and ticks published to the ticks group."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings
from django.utils import timezone

from market_app import selectors, services
from market_app.feed import FeedProducer, build_source, instrument_specs
from market_app.groups import ticks_group
from market_app.models import MarketFeed
from market_app.prices import ReplaySource
from tests.support.factories import make_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("default_instruments")]


def lapse_feed_lease() -> None:
    MarketFeed.objects.filter(pk=1).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_one_worker_produces_the_feed_until_its_lease_lapses_and_is_then_fenced_out() -> None:
    first, second = make_worker(), make_worker()
    claim = services.feed_claim(worker_id=first)
    assert claim is not None
    assert services.feed_claim(worker_id=second) is None

    lapse_feed_lease()
    takeover = services.feed_claim(worker_id=second)
    assert takeover is not None and takeover.epoch == claim.epoch + 1
    assert not services.feed_advance(worker_id=first, epoch=claim.epoch, seq=99, quotes={})
    assert not services.feed_renew(worker_id=first, epoch=claim.epoch)
    assert MarketFeed.objects.get(pk=1).seq == 0


def test_a_released_feed_is_taken_over_at_once_from_the_last_persisted_tick() -> None:
    first, second = make_worker(), make_worker()
    claim = services.feed_claim(worker_id=first)
    assert claim is not None
    specs = instrument_specs(selectors.active_instruments())
    source = build_source(specs, claim.seed)
    quotes = source.next_tick(1, source.first_tick())
    assert services.feed_advance(worker_id=first, epoch=claim.epoch, seq=1, quotes=quotes)
    services.feed_release(worker_id=first)

    takeover = services.feed_claim(worker_id=second)
    assert takeover is not None and takeover.seq == 1 and takeover.quotes == quotes
    # Same seed, same tick, same previous quotes: the new producer continues the same random walk.
    assert build_source(specs, takeover.seed).next_tick(2, takeover.quotes) == source.next_tick(2, quotes)


@override_settings(MARKET_SEED=None)
def test_without_market_seed_a_seed_is_chosen_once_and_kept() -> None:
    first_worker, next_worker = make_worker(), make_worker()
    first = services.feed_claim(worker_id=first_worker)
    assert first is not None
    services.feed_release(worker_id=first_worker)
    again = services.feed_claim(worker_id=next_worker)
    assert again is not None and first.seed == again.seed


@override_settings(MARKET_SEED=1234)
def test_market_seed_sets_the_random_walk() -> None:
    claim = services.feed_claim(worker_id=make_worker())
    assert claim is not None and claim.seed == 1234


@override_settings(MARKET_SOURCE="replay")
def test_replay_mode_plays_the_bar_file() -> None:
    source = build_source((), seed=0)
    assert isinstance(source, ReplaySource)
    assert {"AAPL", "MSFT", "BTC-USD"} <= set(source.first_tick())


@override_settings(MARKET_TICK_MS=20, SIMULATOR_LEASE_TTL_MS=2000)
async def test_the_producer_persists_each_tick_and_publishes_it_once_to_the_ticks_group() -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(ticks_group(), listener)
    worker = await database_sync_to_async(make_worker)()
    producer = FeedProducer(worker)
    await producer.maintain()
    try:
        ticks = [await asyncio.wait_for(layer.receive(listener), 2) for _ in range(5)]
    finally:
        await producer.stop(release=True)
    feed = await database_sync_to_async(MarketFeed.objects.get)(pk=1)

    assert [t["seq"] for t in ticks] == list(range(ticks[0]["seq"], ticks[0]["seq"] + 5))
    assert feed.seq >= ticks[-1]["seq"] and feed.worker_id is None  # released
    assert set(ticks[0]["symbols"]) == {i.symbol for i in await database_sync_to_async(selectors.active_instruments)()}


def test_two_producers_never_publish_the_same_feed_at_once() -> None:
    first, second = make_worker(), make_worker()

    async def both() -> tuple[bool, bool]:
        one, two = FeedProducer(first), FeedProducer(second)
        await one.maintain()
        await two.maintain()
        producing = (one.producing, two.producing)
        await one.stop(release=True)
        await two.stop(release=True)
        return producing

    assert async_to_sync(both)() == (True, False)


async def test_a_worker_stopping_hands_over_a_feed_it_claimed_but_never_recorded() -> None:
    # The claim committed while the coroutine that asked for it was canceled (the worker stopping):
    # the producer holds no claim in memory, the database says the worker holds the feed.
    worker_id = await database_sync_to_async(make_worker)()
    assert await database_sync_to_async(services.feed_claim)(worker_id=worker_id) is not None
    producer = FeedProducer(worker_id)
    assert producer.claim is None

    await producer.stop(release=True)

    feed = await database_sync_to_async(MarketFeed.objects.get)(pk=1)
    assert feed.worker_id is None
    other = await database_sync_to_async(make_worker)()
    assert await database_sync_to_async(services.feed_claim)(worker_id=other) is not None
