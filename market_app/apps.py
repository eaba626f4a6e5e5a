from django.apps import AppConfig


class MarketAppConfig(AppConfig):
    name = "market_app"
    verbose_name = "Market"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from market_app import errors, handlers, messages, metrics, receivers
        from market_app.api.operations import OPERATIONS
        from market_app.worker_matching import MarketInWorker
        from sessions_app.openapi import register_operations
        from sessions_app.realtime import register_family
        from sessions_app.selectors import counted_in_service_status
        from simulator_app.extensions import runs_in_workers
        from simulator_app.signals import simulator_ended

        # `errors`, `handlers` and `metrics` register the codes, handlers and metrics when imported.
        assert errors and handlers and metrics
        register_family("market", client=messages.CLIENT_MESSAGES, server=messages.SERVER_MESSAGES)
        simulator_ended.connect(receivers.cancel_orders_of_ended_simulator, dispatch_uid="market-simulator-ended")
        counted_in_service_status(receivers.service_counts)
        runs_in_workers(MarketInWorker)
        register_operations(OPERATIONS)
