from django.apps import AppConfig


class SimulatorAppConfig(AppConfig):
    name = "simulator_app"
    verbose_name = "Simulators"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sessions_app.realtime.message_routes import register_family
        from sessions_app.selectors import counted_in_service_status
        from sessions_app.signals import session_ended
        from simulator_app import errors, handlers, messages, receivers

        # `errors`, `handlers` and `receivers` register the codes, handlers and metrics when imported.
        assert errors and handlers
        register_family("simulator", client=messages.CLIENT_MESSAGES, server=messages.SERVER_MESSAGES)
        session_ended.connect(receivers.stop_simulator_of_ended_session, dispatch_uid="simulator-session-ended")
        counted_in_service_status(receivers.service_counts)
