from django.apps import AppConfig


class MarketAppConfig(AppConfig):
    name = "market_app"
    verbose_name = "Market"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from market_app import errors, handlers, messages, metrics, receivers
        from market_app.api.operations import OPERATIONS
        from sessions_app.openapi import register_operations
        from sessions_app.realtime.message_routes import register_family
        from sessions_app.selectors import counted_in_service_status
        from simulator_app.signals import (
            clock_changed,
            leases_renewed,
            run_started,
            simulator_ended,
            worker_started,
            worker_stopping,
        )

        # `errors`, `handlers` and `metrics` register the codes, handlers and metrics when imported.
        assert errors and handlers and metrics
        register_family("market", client=messages.CLIENT_MESSAGES, server=messages.SERVER_MESSAGES)
        simulator_ended.connect(receivers.cancel_orders_of_ended_simulator, dispatch_uid="market-simulator-ended")
        worker_started.connect(receivers.start_market_in_worker, dispatch_uid="market-worker-started")
        run_started.connect(receivers.load_orders_of_started_run, dispatch_uid="market-run-started")
        leases_renewed.connect(receivers.follow_renewed_leases, dispatch_uid="market-leases-renewed")
        clock_changed.connect(receivers.play_changed_clock, dispatch_uid="market-clock-changed")
        worker_stopping.connect(receivers.stop_market_in_worker, dispatch_uid="market-worker-stopping")
        counted_in_service_status(receivers.service_counts)
        register_operations(OPERATIONS)
