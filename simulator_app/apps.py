from django.apps import AppConfig


class SimulatorAppConfig(AppConfig):
    name = "simulator_app"
    verbose_name = "Simulators"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the simulator message and event handlers with the session dispatcher.
        from simulator_app import handlers  # noqa: F401
