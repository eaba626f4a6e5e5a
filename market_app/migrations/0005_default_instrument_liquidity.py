from decimal import Decimal

from django.db import migrations

# symbol: spread (bps), levels per side, top size, decay per level, gap between levels (ticks), lot size.
# Spreads and sizes in the range of each market's usual quote: liquid large caps a tick or two, a
# busy ETF tighter, bitcoin a few dollars wide in fractional coins, the euro a pip in 1,000-unit lots.
LIQUIDITY = {
    "AAPL": (1.0, 10, "300", 1.10, 1, "1"),
    "MSFT": (1.0, 10, "200", 1.10, 1, "1"),
    "NVDA": (1.5, 10, "150", 1.10, 1, "1"),
    "AMZN": (1.5, 10, "300", 1.10, 1, "1"),
    "TSLA": (2.0, 10, "250", 1.15, 1, "1"),
    "SPY": (0.5, 10, "1000", 1.05, 1, "1"),
    "BTC-USD": (2.0, 10, "0.5", 1.25, 100, "0.001"),
    "EUR-USD": (0.5, 10, "100000", 1.20, 1, "1000"),
}


def set_liquidity(apps, schema_editor):
    Instrument = apps.get_model("market_app", "Instrument")
    for symbol, (spread, levels, top, decay, gap, lot) in LIQUIDITY.items():
        Instrument.objects.filter(symbol=symbol).update(
            spread_bps=spread,
            book_levels=levels,
            book_top_size=Decimal(top),
            book_decay=decay,
            book_level_gap_ticks=gap,
            lot_size=Decimal(lot),
        )


class Migration(migrations.Migration):
    dependencies = [("market_app", "0004_instrument_liquidity_and_candles")]

    operations = [migrations.RunPython(set_liquidity, migrations.RunPython.noop)]
