"""The price engine (market_app.prices): determinism, restarts, ticks, statistics, replay and the bar file format."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from market_app.bar_files import BarFileError, load_bars
from market_app.prices import (
    TRADING_YEAR_SECONDS,
    VOLUME_NOISE_SIGMA,
    InstrumentSpec,
    PriceSource,
    Quote,
    RandomWalkSource,
    ReplaySource,
)

EXAMPLE_BARS = Path(__file__).resolve().parents[2] / "market_app" / "data" / "example_bars.csv"
HEADER = "timestamp,symbol,open,high,low,close,volume\n"

AAPL = InstrumentSpec("AAPL", Decimal("0.01"), Decimal("190.00"), volatility=0.30, drift=0.05, base_volume=100)
MSFT = InstrumentSpec("MSFT", Decimal("0.01"), Decimal("420.00"), volatility=0.25, drift=0.04, base_volume=80)
BTC = InstrumentSpec("BTC-USD", Decimal("0.5"), Decimal("43000"), volatility=0.60, drift=0.0, base_volume=5)


def walk(source: PriceSource, ticks: int) -> list[dict[str, Quote]]:
    """The quotes at seq 0 .. ticks."""
    feed = [source.first_tick()]
    for seq in range(1, ticks + 1):
        feed.append(source.next_tick(seq, feed[-1]))
    return feed


def prices(feed: list[dict[str, Quote]], symbol: str) -> list[Decimal]:
    return [quotes[symbol].price for quotes in feed]


def random_source(*specs: InstrumentSpec, seed: int = 7) -> RandomWalkSource:
    return RandomWalkSource(specs or (AAPL, MSFT, BTC), seed=seed, tick_ms=1000)


def test_the_same_seed_replays_the_same_prices() -> None:
    assert walk(random_source(seed=7), 300) == walk(random_source(seed=7), 300)


def test_a_different_seed_gives_different_prices() -> None:
    assert prices(walk(random_source(seed=7), 300), "AAPL") != prices(walk(random_source(seed=8), 300), "AAPL")


def test_the_order_instruments_are_listed_in_does_not_change_their_prices() -> None:
    assert walk(RandomWalkSource([AAPL, MSFT, BTC], seed=3, tick_ms=1000), 50) == walk(
        RandomWalkSource([BTC, MSFT, AAPL], seed=3, tick_ms=1000), 50
    )


def test_a_feed_restarted_from_persisted_state_continues_like_an_uninterrupted_one() -> None:
    uninterrupted = walk(random_source(), 200)

    first_life = walk(random_source(), 80)
    persisted = json.dumps(
        {"seq": 80, "quotes": {symbol: quote.to_state() for symbol, quote in first_life[-1].items()}}
    )

    state = json.loads(persisted)
    restarted_source = random_source()  # a new process: a fresh object built from the same settings
    quotes = {symbol: Quote.from_state(data) for symbol, data in state["quotes"].items()}
    second_life = []
    for seq in range(state["seq"] + 1, 201):
        quotes = restarted_source.next_tick(seq, quotes)
        second_life.append(quotes)

    assert first_life + second_life == uninterrupted


def test_prices_stay_multiples_of_the_tick_size_and_never_go_below_one_tick() -> None:
    crashing = InstrumentSpec("PENNY", Decimal("0.05"), Decimal("0.40"), volatility=3.0, drift=-50.0, base_volume=1)
    # A market day per tick, so the crash reaches the floor within a few hundred ticks.
    feed = walk(RandomWalkSource([crashing, BTC], seed=5, tick_ms=1000, time_scale=86400), 500)
    for symbol, tick in (("PENNY", crashing.tick_size), ("BTC-USD", BTC.tick_size)):
        for price in prices(feed, symbol):
            assert price % tick == 0, price
            assert price >= tick, price
    assert crashing.tick_size in prices(feed, "PENNY")  # the floor was actually reached


def test_the_first_tick_is_the_start_price_with_no_volume() -> None:
    first = random_source().first_tick()
    assert first["AAPL"] == Quote(price=Decimal("190.00"), open=Decimal("190.00"), volume=0)
    assert set(first) == {"AAPL", "MSFT", "BTC-USD"}


def test_log_returns_and_volumes_of_a_realistic_feed_have_the_statistics_of_the_model() -> None:
    ticks, volatility, drift, base_volume = 5000, 0.3, 0.05, 100
    spec = InstrumentSpec("X", Decimal("0.01"), Decimal("100.00"), volatility, drift, base_volume)
    feed = walk(RandomWalkSource([spec], seed=11, tick_ms=1000, time_scale=60), ticks)
    series = [float(price) for price in prices(feed, "X")]
    returns = [math.log(after / before) for before, after in itertools.pairwise(series)]

    dt = 1000 / 1000 * 60 / TRADING_YEAR_SECONDS
    expected_sd = volatility * math.sqrt(dt)
    expected_mean = (drift - volatility**2 / 2) * dt
    standard_error = expected_sd / math.sqrt(ticks)
    assert statistics.stdev(returns) == pytest.approx(expected_sd, rel=0.15)
    assert abs(statistics.fmean(returns) - expected_mean) < 4 * standard_error

    # volume = base * noise * (1 + |Z|) with E[noise] = 1 (lognormal, mean-corrected) and E|Z| = sqrt(2/pi).
    assert VOLUME_NOISE_SIGMA > 0
    expected_volume = base_volume * (1 + math.sqrt(2 / math.pi))
    volumes = [quotes["X"].volume for quotes in feed[1:]]
    assert all(isinstance(volume, int) and volume >= 0 for volume in volumes)
    assert statistics.fmean(volumes) == pytest.approx(expected_volume, rel=0.25)


def test_one_steps_log_return_has_mean_drift_minus_half_variance_times_dt() -> None:
    # At realistic settings drift and the Ito term are far below the noise. Sampling many independent single steps
    # from the same price (next_tick is pure in seq and previous) with a long dt makes both visible.
    volatility, drift, samples = 2.0, 5.0, 5000
    spec = InstrumentSpec("X", Decimal("0.01"), Decimal("100.00"), volatility, drift, base_volume=100)
    source = RandomWalkSource([spec], seed=13, tick_ms=1000, time_scale=0.04 * TRADING_YEAR_SECONDS)
    start = source.first_tick()
    returns = [math.log(source.next_tick(seq, start)["X"].price / Decimal("100")) for seq in range(1, samples + 1)]

    expected_sd = volatility * math.sqrt(source.dt)
    standard_error = expected_sd / math.sqrt(samples)
    assert source.dt == pytest.approx(0.04)
    assert statistics.stdev(returns) == pytest.approx(expected_sd, rel=0.15)
    # Without the -vol**2/2 term the mean would be 14 standard errors higher; without drift 35 lower.
    assert abs(statistics.fmean(returns) - (drift - volatility**2 / 2) * source.dt) < 4 * standard_error


def test_to_wire_gives_the_protocols_shape_with_change_measured_from_open() -> None:
    wire = Quote(price=Decimal("101.25"), open=Decimal("100.00"), volume=7).to_wire()
    assert wire == {"price": 101.25, "change": 1.25, "volume": 7}
    assert [type(wire[key]) for key in ("price", "change", "volume")] == [float, float, int]


def test_change_is_price_minus_open_along_a_random_feed() -> None:
    feed = walk(random_source(), 50)
    opening = feed[0]["MSFT"].price
    for quotes in feed:
        assert quotes["MSFT"].open == opening
        assert quotes["MSFT"].change == quotes["MSFT"].price - opening


def test_state_round_trips_through_json_keeping_exact_decimals() -> None:
    quote = Quote(price=Decimal("123.45"), open=Decimal("120.00"), volume=17)
    assert quote.to_state() == {"price": "123.45", "open": "120.00", "volume": 17}
    restored = Quote.from_state(json.loads(json.dumps(quote.to_state())))
    assert restored == quote
    assert str(restored.open) == "120.00"


def test_an_instrument_missing_from_previous_starts_from_its_first_quote_without_disturbing_the_others() -> None:
    source = random_source()
    feed = walk(source, 10)
    without_msft = {symbol: quote for symbol, quote in feed[9].items() if symbol != "MSFT"}

    quotes = source.next_tick(10, without_msft)

    assert quotes["MSFT"] == source.first_tick()["MSFT"]
    assert quotes["AAPL"] == feed[10]["AAPL"]
    assert quotes["BTC-USD"] == feed[10]["BTC-USD"]


def test_replay_plays_the_example_files_closes_in_order_and_wraps_around_at_the_end() -> None:
    bars = load_bars(EXAMPLE_BARS)
    assert sorted(bars) == ["AAPL", "BTC-USD", "MSFT"]
    assert {len(symbol_bars) for symbol_bars in bars.values()} == {60}

    feed = walk(ReplaySource(bars), 125)

    for symbol, symbol_bars in bars.items():
        closes = [bar.close for bar in symbol_bars]
        assert prices(feed, symbol) == closes + closes + closes[:6]
        assert {quotes[symbol].open for quotes in feed} == {symbol_bars[0].open}
        assert [quotes[symbol].volume for quotes in feed[:60]] == [bar.volume for bar in symbol_bars]


def test_replay_depends_only_on_seq() -> None:
    source = ReplaySource(load_bars(EXAMPLE_BARS))
    empty: Mapping[str, Quote] = {}
    assert source.next_tick(42, empty) == source.next_tick(42, source.first_tick())


def test_load_bars_keeps_the_timestamp_text_and_the_example_file_is_consistent() -> None:
    bars = load_bars(EXAMPLE_BARS)
    first = bars["AAPL"][0]
    assert first.timestamp == "2026-01-05T14:30:00Z"
    assert first.low <= min(first.open, first.close) <= max(first.open, first.close) <= first.high


def test_load_bars_accepts_columns_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("symbol,volume,close,low,high,open,timestamp\nAAPL,12,10.5,9.5,11,10,2026-01-05T14:30:00Z\n")
    [bar] = load_bars(path)["AAPL"]
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        Decimal("10"),
        Decimal("11"),
        Decimal("9.5"),
        Decimal("10.5"),
        12,
    )


GOOD_ROW = "2026-01-05T14:30:00Z,AAPL,190.00,190.50,189.50,190.20,1000\n"


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        ("timestamp,symbol,open,high,low,close\n" + GOOD_ROW, 1, "header"),
        ("timestamp,symbol,open,high,low,close,volume,extra\n" + GOOD_ROW, 1, "header"),
        (HEADER + GOOD_ROW + "2026-01-05T14:31:00Z,AAPL,abc,190.50,189.50,190.20,1000\n", 3, "open is not a number"),
        (HEADER + GOOD_ROW + "2026-01-05T14:31:00Z,AAPL,190.00,189.00,190.50,190.20,1000\n", 3, "below low"),
        (HEADER + "2026-01-05T14:31:00Z,AAPL,190.00,190.50,189.50,190.20,-5\n", 2, "volume"),
        (HEADER + "2026-01-05T14:31:00Z,AAPL,190.00,190.50,189.50,191.20,5\n", 2, "close 191.20 is outside"),
        (HEADER + "yesterday,AAPL,190.00,190.50,189.50,190.20,5\n", 2, "ISO 8601"),
        (HEADER + "2026-01-05T14:31:00Z,AAPL,190.00,190.50\n", 2, "expected 7 fields"),
    ],
    ids=[
        "missing column",
        "extra column",
        "non-numeric price",
        "high below low",
        "negative volume",
        "close above high",
        "bad timestamp",
        "short row",
    ],
)
def test_load_bars_rejects_a_bad_file_naming_the_line(tmp_path: Path, content: str, line: int, problem: str) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(content)
    with pytest.raises(BarFileError) as error:
        load_bars(path)
    assert str(path) in str(error.value)
    assert f"line {line}:" in str(error.value)
    assert problem in str(error.value)


def test_load_bars_rejects_a_missing_file_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(BarFileError, match=r"nowhere\.csv"):
        load_bars(path)
