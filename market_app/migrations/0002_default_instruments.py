from decimal import Decimal

from django.db import migrations

# symbol, name, tick size, starting price, annualized volatility, annualized drift, volume per tick
DEFAULT_INSTRUMENTS = [
    ("AAPL", "Apple Inc.", "0.01", "190.00", 0.25, 0.08, 1_200),
    ("MSFT", "Microsoft Corp.", "0.01", "420.00", 0.22, 0.08, 900),
    ("NVDA", "NVIDIA Corp.", "0.01", "880.00", 0.50, 0.15, 1_500),
    ("AMZN", "Amazon.com Inc.", "0.01", "180.00", 0.30, 0.07, 1_000),
    ("TSLA", "Tesla Inc.", "0.01", "175.00", 0.60, 0.05, 1_400),
    ("SPY", "SPDR S&P 500 ETF", "0.01", "520.00", 0.15, 0.06, 3_000),
    ("BTC-USD", "Bitcoin / US dollar", "0.01", "43000.00", 0.65, 0.10, 5),
    ("EUR-USD", "Euro / US dollar", "0.0001", "1.0850", 0.07, 0.00, 50_000),
]


def create(apps, schema_editor):
    Instrument = apps.get_model("market_app", "Instrument")
    for order, (symbol, name, tick, price, volatility, drift, volume) in enumerate(DEFAULT_INSTRUMENTS):
        Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={
                "name": name,
                "tick_size": Decimal(tick),
                "start_price": Decimal(price),
                "volatility": volatility,
                "drift": drift,
                "base_volume": volume,
                "sort_order": order,
            },
        )
    MarketFeed = apps.get_model("market_app", "MarketFeed")
    MarketFeed.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("market_app", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
