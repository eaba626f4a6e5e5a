from django.apps import AppConfig


class MarketAppConfig(AppConfig):
    name = "market_app"
    verbose_name = "Market"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the market message, event and connection handlers with the session dispatcher.
        from market_app import handlers  # noqa: F401
