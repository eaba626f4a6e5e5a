"""The equity sampler (market_app.sampling) and the market in a worker, which drives it on each tick."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings
from django.utils import timezone

from market_app.events import MarketTickEvent
from market_app.in_worker import MarketInWorker
from market_app.models import Account, EquitySample, MarginCall
from market_app.prices import Quote
from market_app.sampling import EquitySampler
from simulator_app.models import SimulatorStatus
from simulator_app.simulation_run import SimulationRun
from simulator_app.worker import Worker
from tests.market_app.test_margin_accounts import called_account, margin_trader
from tests.market_app.test_trading_services import holding, set_prices, trader
from tests.support.factories import make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("default_instruments", "commission_free"),
]

D = Decimal
T0 = 1_800_000_000_000


def tick(seq: int, at_ms: int, aapl: float = 150.0) -> MarketTickEvent:
    return {
        "type": "market.tick",
        "seq": seq,
        "timestamp": at_ms,
        "symbols": {"AAPL": {"price": aapl, "change": 0.0, "volume": 1000}},
    }


def run_of(user_id: int, status: str = SimulatorStatus.RUNNING) -> SimulationRun:
    return SimulationRun(simulator_id=uuid.uuid4(), epoch=1, user_id=user_id, session_id=uuid.uuid4(), status=status)


def test_a_sample_is_due_on_the_first_tick_and_then_once_per_interval() -> None:
    sampler = EquitySampler(interval_s=10)
    assert sampler.due(T0)
    sampler.last_sample_ms = T0
    assert not sampler.due(T0 + 9_999)
    assert sampler.due(T0 + 10_000)


async def test_the_sampler_values_running_users_at_the_ticks_prices_and_skips_the_rest() -> None:
    who = await database_sync_to_async(trader)()
    await database_sync_to_async(set_prices)({"AAPL": "100"})
    await database_sync_to_async(holding)(who, 10, "100")  # cash 99,000, 10 AAPL
    idle = await database_sync_to_async(make_user)()
    sampler = EquitySampler(interval_s=10)
    quotes = {"AAPL": Quote(price=D(150), open=D(150), volume=1000)}
    runs = [run_of(who.user_id), run_of(idle.pk, SimulatorStatus.STOPPING)]

    assert await sampler.on_tick(tick(5, T0), quotes, runs) == 1
    assert await sampler.on_tick(tick(6, T0 + 5_000), quotes, runs) == 0  # within the interval
    assert await sampler.on_tick(tick(7, T0 + 10_000), quotes, runs) == 1

    samples = await database_sync_to_async(list)(
        EquitySample.objects.order_by("at").values_list("tick_seq", "equity", "cash", "positions_value")
    )
    assert samples == [(5, D(100_500), D(99_000), D(1_500)), (7, D(100_500), D(99_000), D(1_500))]
    assert not await database_sync_to_async(Account.objects.filter(user_id=idle.pk).exists)()


async def test_a_user_who_never_traded_is_sampled_at_the_starting_cash() -> None:
    user = await database_sync_to_async(make_user)()
    sampler = EquitySampler(interval_s=1)
    assert await sampler.on_tick(tick(1, T0), {}, [run_of(user.pk)]) == 1
    sample = await database_sync_to_async(EquitySample.objects.get)()
    assert (sample.equity, sample.positions_value) == (D(100_000), D(0))


@override_settings(EQUITY_SAMPLE_INTERVAL_S=1)
async def test_the_worker_writes_samples_from_the_ticks_it_receives() -> None:
    who = await database_sync_to_async(trader)()
    worker = Worker(runner="inprocess")
    market = MarketInWorker(worker)
    run = run_of(who.user_id)
    worker.runs[run.simulator_id] = run
    for seq in range(1, 6):  # five ticks half a second apart: samples at 0, 1 and 2 s
        await market.on_message(dict(tick(seq, T0 + 500 * (seq - 1))))
    seqs = await database_sync_to_async(list)(EquitySample.objects.values_list("tick_seq", flat=True).order_by("at"))
    assert seqs == [1, 3, 5]


@override_settings(EQUITY_SAMPLE_RETENTION_DAYS=7)
async def test_samples_past_the_retention_are_pruned() -> None:
    who = await database_sync_to_async(trader)()
    account = await database_sync_to_async(Account.objects.get_or_create)(
        user_id=who.user_id, defaults={"cash": D(1), "starting_cash": D(1)}
    )
    now = timezone.now()
    for age in (8, 6):
        await database_sync_to_async(EquitySample.objects.create)(
            account=account[0], at=now - timedelta(days=age), tick_seq=age, equity=D(1), cash=D(1), positions_value=D(0)
        )
    sampler = EquitySampler(interval_s=1)
    assert await sampler.prune_if_due() == 1
    assert await sampler.prune_if_due() == 0  # not again within the hour
    assert await database_sync_to_async(list)(EquitySample.objects.values_list("tick_seq", flat=True)) == [6]


async def test_an_equity_sample_stops_a_user_whose_daily_loss_limit_it_finds_reached() -> None:
    who = await database_sync_to_async(trader)()
    await database_sync_to_async(set_prices)({"AAPL": "100"})
    await database_sync_to_async(holding)(who, 10, "100")  # 1,000 of AAPL
    await database_sync_to_async(Account.objects.filter(user_id=who.user_id).update)(daily_loss_limit=D(200))
    sampler = EquitySampler(interval_s=10)
    runs = [run_of(who.user_id)]

    def at(price: str) -> dict[str, Quote]:
        return {"AAPL": Quote(price=D(price), open=D(price), volume=1000)}

    await sampler.on_tick(tick(5, T0, 100.0), at("100"), runs)  # the day's first sample
    await sampler.on_tick(tick(6, T0 + 10_000, 80.0), at("80"), runs)  # 200 down

    account = await database_sync_to_async(Account.objects.get)(user_id=who.user_id)
    assert (account.loss_day_start_equity, account.loss_halted_day) == (D(100_000), "feed:0")


async def test_the_sampler_issues_a_margin_call_on_a_margin_account_below_its_maintenance() -> None:
    who = await database_sync_to_async(margin_trader)()
    await database_sync_to_async(called_account)(who)
    quotes = {"AAPL": Quote(price=D(50), open=D(50), volume=1000), "MSFT": Quote(price=D(200), open=D(200), volume=1)}
    sampler = EquitySampler(interval_s=10)
    assert await sampler.on_tick(tick(5, T0, aapl=50.0), quotes, [run_of(who.user_id)]) == 1
    call = await database_sync_to_async(MarginCall.objects.get)()
    assert (call.status, call.equity, call.issued_at) == ("open", D(2_500), datetime.fromtimestamp(T0 / 1000, UTC))
