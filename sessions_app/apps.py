from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sessions_app import handlers, http_messages, messages, openapi
        from sessions_app.api.operations import OPERATIONS
        from sessions_app.realtime.message_routes import register_family

        # `handlers` registers the session and connection handlers and events when imported.
        assert handlers
        register_family(
            "sessions", client=messages.CLIENT_MESSAGES, server=messages.SERVER_MESSAGES, http=http_messages.HTTP_MODELS
        )
        openapi.register_operations(OPERATIONS)
