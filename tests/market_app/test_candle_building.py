from decimal import Decimal

from market_app.candles import CandleBar, CandleBuilder, bar_start
from market_app.prices import Quote

D = Decimal


def tick(price: object, volume: int) -> Quote:
    return Quote(price=D(price), open=D(1), volume=volume)


def test_a_bar_starts_at_a_multiple_of_its_interval() -> None:
    assert bar_start(1_234_567, "1s") == 1_234_000
    assert bar_start(1_234_567, "1m") == 1_200_000
    assert bar_start(1_234_567, "5m") == 1_200_000
    assert bar_start(300_000, "5m") == 300_000


def test_ticks_within_a_bar_set_its_open_high_low_close_and_sum_its_volume() -> None:
    builder = CandleBuilder(("1s",))
    for ms, price, volume in [(10_000, "10", 5), (10_200, "12", 1), (10_400, "9", 2), (10_999, "11", 3)]:
        assert builder.add_tick(ms, {"X": tick(price, volume)}) == []
    assert builder.open_bars["X"]["1s"] == CandleBar(10_000, D(10), D(12), D(9), D(11), 11)


def test_the_first_tick_of_a_later_bar_closes_the_open_one() -> None:
    builder = CandleBuilder(("1s", "1m"))
    builder.add_tick(59_500, {"X": tick("10", 1)})
    closed = builder.add_tick(60_100, {"X": tick("11", 2)})
    assert [(c.symbol, c.interval, c.bar) for c in closed] == [
        ("X", "1s", CandleBar(59_000, D(10), D(10), D(10), D(10), 1)),
        ("X", "1m", CandleBar(0, D(10), D(10), D(10), D(10), 1)),
    ]
    assert builder.open_bars["X"]["1s"] == CandleBar(60_000, D(11), D(11), D(11), D(11), 2)


def test_an_interval_without_ticks_has_no_bar() -> None:
    builder = CandleBuilder(("1s",))
    builder.add_tick(1_000, {"X": tick(1, 1)})
    closed = builder.add_tick(5_000, {"X": tick(2, 1)})
    assert [c.bar.start_ms for c in closed] == [1_000]
    assert builder.open_bars["X"]["1s"].start_ms == 5_000


def test_a_tick_from_a_clock_that_stepped_back_leaves_the_open_bar_alone() -> None:
    builder = CandleBuilder(("1s",))
    builder.add_tick(5_000, {"X": tick(2, 1)})
    assert builder.add_tick(3_000, {"X": tick(9, 7)}) == []
    assert builder.open_bars["X"]["1s"] == CandleBar(5_000, D(2), D(2), D(2), D(2), 1)


def test_symbols_build_their_bars_apart_and_the_wire_form_names_the_interval() -> None:
    builder = CandleBuilder()
    builder.add_tick(61_000, {"X": tick("1.5", 10), "Y": tick("200.25", 3)})
    wire = builder.to_wire()
    assert set(wire) == {"X", "Y"} and set(wire["X"]) == {"1s", "1m", "5m"}
    assert wire["Y"]["1m"] == {
        "interval": "1m",
        "start": 60_000,
        "open": 200.25,
        "high": 200.25,
        "low": 200.25,
        "close": 200.25,
        "volume": 3,
    }


def test_five_minutes_of_half_second_ticks_make_600_second_bars_5_minute_bars_and_one_5_minute_bar() -> None:
    builder = CandleBuilder()
    closed = []
    for n in range(600):  # 0 .. 299.5 s
        closed += builder.add_tick(n * 500, {"X": tick(100 + n % 7, 1)})
    closed += builder.add_tick(300_000, {"X": tick(100, 1)})
    counts = {interval: sum(1 for c in closed if c.interval == interval) for interval in ("1s", "1m", "5m")}
    assert counts == {"1s": 300, "1m": 5, "5m": 1}
    five = next(c.bar for c in closed if c.interval == "5m")
    assert (five.open, five.high, five.low, five.volume) == (D(100), D(106), D(100), 600)
    assert sum(c.bar.volume for c in closed if c.interval == "1s") == 600


def test_update_keeps_the_same_open_bars_as_add_tick_without_returning_the_closed_ones() -> None:
    adding, updating = CandleBuilder(), CandleBuilder()
    for n in range(200):  # daily-bar gaps and second-bar gaps alike
        ms = n * (86_400_000 if n % 2 else 700)
        quotes = {"X": tick(100 + n % 5, n), "Y": tick(50 - n % 3, 1)}
        adding.add_tick(ms, quotes)
        assert updating.update(ms, quotes) is None
        assert updating.to_wire() == adding.to_wire()
        assert updating.open_bars == adding.open_bars
