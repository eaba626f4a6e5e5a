from django.apps import AppConfig


class SimulatorAppConfig(AppConfig):
    name = "simulator_app"
    default_auto_field = "django.db.models.BigAutoField"
