from django.apps import AppConfig

from sessions_app.realtime import internals


class RealtimeConfig(AppConfig):
    name = "sessions_app.realtime"
    label = "realtime"
    verbose_name = "Socket kernel"

    def ready(self) -> None:
        # Each private part of a library it cannot use is reported once, now, at start-up.
        internals.check_all()
