import importlib
import itertools
import statistics
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from market_app.liquidity import (
    DEFAULT_LIQUIDITY,
    EMPTY_BOOK,
    SIZE_SIGMA,
    Book,
    BookInput,
    Level,
    LiquidityParams,
    book_of,
    books_of_tick,
    wire_books_of_tick,
)
from market_app.realism import ProfileName, realism_of

TICK = Decimal("0.01")
PARAMS = LiquidityParams(spread_bps=10.0, depth_levels=8, top_size=Decimal(400), depth_decay=1.2, level_gap_ticks=2)
REALISTIC = realism_of("realistic")


def book(
    seq: int = 1,
    *,
    price: str = "200.00",
    params: LiquidityParams = PARAMS,
    profile: str = "realistic",
    symbol: str = "AAPL",
    seed: int = 7,
    volume: int = 1000,
    tick: Decimal = TICK,
) -> Book:
    return book_of(
        price=Decimal(price),
        tick_size=tick,
        params=params,
        realism=realism_of(profile),
        seed=seed,
        seq=seq,
        symbol=symbol,
        volume=volume,
    )


def test_the_same_seed_seq_symbol_and_params_give_the_same_book():
    assert book(5) == book(5)
    assert book(5) != book(6)
    assert book(5) != book(5, symbol="MSFT")
    assert book(5) != book(5, seed=8)


def test_the_book_is_pinned_by_its_seed_not_by_the_process():
    # A fixed expectation: seeding from hash() (which PYTHONHASHSEED varies) or another draw order changes it.
    first = book(1)
    assert (first.bids[0], first.asks[0]) == (
        Level(Decimal("199.90"), Decimal(460)),
        Level(Decimal("200.11"), Decimal(229)),
    )


def test_prices_lie_on_the_tick_grid_with_the_bid_below_the_price_and_the_ask_above():
    for seq in range(1, 300):
        b = book(seq)
        assert b.bid is not None and b.ask is not None
        assert b.bid <= Decimal("200.00") <= b.ask
        assert b.ask - b.bid >= TICK
        for level in b.bids + b.asks:
            assert level.price % TICK == 0
            assert level.size >= 1 and level.size % 1 == 0


def test_levels_step_outward_by_the_configured_gap():
    b = book(3)
    assert len(b.bids) == len(b.asks) == PARAMS.depth_levels
    gap = TICK * PARAMS.level_gap_ticks
    assert all(hi.price - lo.price == gap for hi, lo in zip(b.bids, b.bids[1:], strict=False))
    assert all(hi.price - lo.price == gap for lo, hi in zip(b.asks, b.asks[1:], strict=False))


def test_a_spread_under_one_tick_is_one_tick():
    tight = LiquidityParams(spread_bps=0.01, depth_levels=3, top_size=Decimal(10), depth_decay=1.0, level_gap_ticks=1)
    assert {book(seq, params=tight).spread for seq in range(1, 100)} == {TICK}


def test_a_bid_never_goes_below_one_tick():
    wide = LiquidityParams(spread_bps=5000, depth_levels=20, top_size=Decimal(10), depth_decay=1.0, level_gap_ticks=1)
    for seq in range(1, 50):
        b = book(seq, price="0.05", params=wide)
        assert b.bids and all(level.price >= TICK for level in b.bids)
        assert b.bid is not None and b.ask is not None and b.bid < b.ask


def test_sizes_are_whole_lots():
    params = LiquidityParams(
        spread_bps=5,
        depth_levels=5,
        top_size=Decimal("0.5"),
        depth_decay=1.0,
        level_gap_ticks=1,
        lot_size=Decimal("0.001"),
    )
    for level in book(1, price="43000.00", params=params).asks:
        assert level.size % Decimal("0.001") == 0 and level.size >= Decimal("0.001")


def test_the_frictionless_profile_quotes_the_tick_price_with_the_tick_volume_on_both_sides():
    b = book(4, profile="ideal", volume=1234)
    assert b.bids == b.asks == (Level(Decimal("200.00"), Decimal(1234)),)
    assert b.bid == b.ask == b.mid == Decimal("200.00") and b.bid_size == b.ask_size == Decimal(1234)
    assert book(4, profile="ideal", volume=0) == EMPTY_BOOK


def test_an_empty_side_has_no_top_of_book():
    assert EMPTY_BOOK.bid is None and EMPTY_BOOK.ask_size is None and EMPTY_BOOK.mid is None
    assert EMPTY_BOOK.top_to_wire() == {}


def test_the_wire_form_round_trips_and_keeps_the_requested_depth():
    b = book(9)
    assert Book.from_wire(b.to_wire()) == b
    shallow = b.to_wire(depth=2)
    assert len(shallow["bids"]) == len(shallow["asks"]) == 2
    assert b.top_to_wire() == {
        "bid": float(b.bids[0].price),
        "bidSize": float(b.bids[0].size),
        "ask": float(b.asks[0].price),
        "askSize": float(b.asks[0].size),
    }


def test_harsh_is_wider_and_thinner_than_realistic_on_the_same_draws():
    for seq in range(1, 50):
        realistic, harsh = book(seq), book(seq, profile="harsh")
        assert harsh.spread is not None and realistic.spread is not None
        assert harsh.spread >= realistic.spread
        assert sum(lv.size for lv in harsh.asks) < sum(lv.size for lv in realistic.asks)


@pytest.mark.parametrize(
    "invalid",
    [
        {"spread_bps": -1.0},
        {"depth_levels": 0},
        {"depth_levels": 51},
        {"top_size": Decimal(0)},
        {"depth_decay": 0.0},
        {"level_gap_ticks": 0},
        {"lot_size": Decimal(-1)},
    ],
)
def test_invalid_liquidity_settings_are_refused(invalid):
    fields = {"spread_bps": 5.0, "depth_levels": 5, "top_size": Decimal(10), "depth_decay": 1.0, "level_gap_ticks": 1}
    with pytest.raises(ValueError):
        LiquidityParams(**(fields | invalid))


def test_books_of_tick_gives_every_profile_every_symbol():
    ticks = {
        "AAPL": BookInput(Decimal("190.00"), 100, TICK, DEFAULT_LIQUIDITY),
        "EUR-USD": BookInput(Decimal("1.0850"), 5000, Decimal("0.0001"), DEFAULT_LIQUIDITY),
    }
    books = books_of_tick(ticks, seed=1, seq=2)
    assert set(books) == set(ProfileName)
    assert all(set(per_symbol) == set(ticks) for per_symbol in books.values())
    assert books[ProfileName.REALISTIC]["AAPL"] == book_of(
        price=Decimal("190.00"),
        tick_size=TICK,
        params=DEFAULT_LIQUIDITY,
        realism=REALISTIC,
        seed=1,
        seq=2,
        symbol="AAPL",
        volume=100,
    )


def test_the_wire_books_of_a_tick_are_the_books_in_wire_form_to_the_last_bit() -> None:
    ticks = {
        "AAPL": BookInput(Decimal("190.07"), 100, TICK, PARAMS),
        "EUR-USD": BookInput(Decimal("1.0851"), 5000, Decimal("0.0001"), DEFAULT_LIQUIDITY),
        "BTC-USD": BookInput(
            Decimal("43012.37"),
            5,
            TICK,
            LiquidityParams(
                spread_bps=2,
                depth_levels=10,
                top_size=Decimal("0.5"),
                depth_decay=1.25,
                level_gap_ticks=100,
                lot_size=Decimal("0.001"),
            ),
        ),
        "QUIET": BookInput(Decimal("5.00"), 0, TICK, DEFAULT_LIQUIDITY),
    }
    for seq in range(1, 30):
        books = books_of_tick(ticks, seed=5, seq=seq)
        wire = wire_books_of_tick(ticks, seed=5, seq=seq)
        assert wire == {str(p): {s: b.to_wire() for s, b in per.items()} for p, per in books.items()}


# --- Statistics: seeded, so these are exact reruns, with tolerances a correct model meets by far ---

SAMPLES = 4000


@pytest.mark.parametrize(("profile", "factor"), [("realistic", 1.0), ("harsh", 3.0)])
def test_the_mean_spread_matches_the_instrument_setting_times_the_profile_factor(profile, factor):
    # 10 bps of 200.00 = 0.20 = 20 ticks: wide enough that rounding to whole ticks does not bias the mean.
    spreads = [float(book(seq, profile=profile).spread) for seq in range(1, SAMPLES + 1)]
    expected = 200.0 * 10.0 / 10_000 * factor
    assert statistics.fmean(spreads) == pytest.approx(expected, rel=0.03)
    # The noise is lognormal with sigma SPREAD_SIGMA: its coefficient of variation is about 0.25.
    assert statistics.stdev(spreads) / statistics.fmean(spreads) == pytest.approx(0.25, abs=0.04)


def test_the_price_is_the_mid_on_average():
    offsets = [float(book(seq).mid) - 200.0 for seq in range(1, SAMPLES + 1)]
    assert abs(statistics.fmean(offsets)) < 0.002  # a fifth of a tick


@pytest.mark.parametrize(("profile", "factor"), [("realistic", 1.0), ("harsh", 0.3)])
def test_the_mean_size_of_each_level_follows_top_size_and_its_decay(profile, factor):
    books = [book(seq, profile=profile) for seq in range(1, SAMPLES + 1)]
    for k in range(PARAMS.depth_levels):
        expected = 400 * 1.2**k * factor
        sizes = [float(b.bids[k].size) for b in books] + [float(b.asks[k].size) for b in books]
        assert statistics.fmean(sizes) == pytest.approx(expected, rel=0.03), f"level {k}"
        cv = statistics.stdev(sizes) / statistics.fmean(sizes)
        assert cv == pytest.approx((2.718281828 ** (SIZE_SIGMA**2) - 1) ** 0.5, abs=0.04), f"level {k}"


def test_a_decay_below_one_thins_the_book_outward():
    thinning = LiquidityParams(spread_bps=5, depth_levels=6, top_size=Decimal(1000), depth_decay=0.5, level_gap_ticks=1)
    books = [book(seq, params=thinning) for seq in range(1, 1001)]
    means = [statistics.fmean(float(b.asks[k].size) for b in books) for k in range(6)]
    assert all(outer < inner for inner, outer in itertools.pairwise(means))
    assert means[5] == pytest.approx(1000 * 0.5**5, rel=0.05)


# --- Invariants for any settings (hypothesis) ---

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
settings_ = st.builds(
    LiquidityParams,
    spread_bps=st.floats(min_value=0, max_value=500),
    depth_levels=st.integers(min_value=1, max_value=50),
    top_size=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000000"), places=3),
    depth_decay=st.floats(min_value=0.1, max_value=3),
    level_gap_ticks=st.integers(min_value=1, max_value=200),
    lot_size=st.sampled_from([Decimal("0.001"), Decimal("1"), Decimal("100")]),
)


@given(
    price=prices,
    params=settings_,
    seq=st.integers(min_value=1, max_value=10**9),
    profile=st.sampled_from(["realistic", "harsh"]),
)
@hypothesis_settings(max_examples=200, deadline=None)
def test_any_book_is_on_the_grid_sorted_outward_and_never_crossed(
    price: Decimal, params: LiquidityParams, seq: int, profile: str
) -> None:
    b = book(seq, price=str(price), params=params, profile=profile)
    assert len(b.asks) == params.depth_levels and 1 <= len(b.bids) <= params.depth_levels
    assert b.bid is not None and b.ask is not None and TICK <= b.bid < b.ask
    assert b.bid <= max(price, TICK) <= b.ask or b.bid == TICK
    assert [lv.price for lv in b.bids] == sorted((lv.price for lv in b.bids), reverse=True)
    assert [lv.price for lv in b.asks] == sorted(lv.price for lv in b.asks)
    for level in b.bids + b.asks:
        assert level.price % TICK == 0 and level.size >= params.lot_size and level.size % params.lot_size == 0
    wire = wire_books_of_tick(
        {"X": BookInput(price, 1, TICK, params)}, seed=7, seq=seq, profiles=(ProfileName(profile),)
    )
    assert Book.from_wire(wire[profile]["X"]) == book_of(
        price=price, tick_size=TICK, params=params, realism=realism_of(profile), seed=7, seq=seq, symbol="X"
    )


# --- The seeded instruments' own settings (migration 0005) ---

SEEDED = importlib.import_module("market_app.migrations.0005_default_instrument_liquidity").LIQUIDITY
SEEDED_PRICES = {
    "AAPL": ("190.00", "0.01"),
    "MSFT": ("420.00", "0.01"),
    "NVDA": ("880.00", "0.01"),
    "AMZN": ("180.00", "0.01"),
    "TSLA": ("175.00", "0.01"),
    "SPY": ("520.00", "0.01"),
    "BTC-USD": ("43000.00", "0.01"),
    "EUR-USD": ("1.0850", "0.0001"),
}


@pytest.mark.parametrize("symbol", sorted(SEEDED_PRICES))
def test_each_seeded_instrument_quotes_its_own_spread_and_top_size(symbol: str) -> None:
    spread_bps, levels, top, decay, gap, lot = SEEDED[symbol]
    params = LiquidityParams(spread_bps, levels, Decimal(top), decay, gap, Decimal(lot))
    price, tick = SEEDED_PRICES[symbol]
    books = [book(seq, price=price, params=params, symbol=symbol, tick=Decimal(tick)) for seq in range(1, 2001)]
    target_ticks = float(price) * spread_bps / 10_000 / float(tick)
    spreads = [float(b.spread / Decimal(tick)) for b in books]
    if target_ticks >= 4:  # wide enough that whole ticks do not bias the mean
        assert statistics.fmean(spreads) == pytest.approx(target_ticks, rel=0.04)
    else:
        assert min(spreads) >= 1 and statistics.fmean(spreads) <= max(1.0, target_ticks) * 1.3
    tops = [float(level.size) for b in books for level in (b.bids[0], b.asks[0])]
    assert statistics.fmean(tops) == pytest.approx(float(top), rel=0.04)
