from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sessions_app import handlers, http_messages, messages, openapi, services
        from sessions_app.api.operations import OPERATIONS
        from sessions_app.handshake import Sessions
        from sessions_app.realtime import register_family, use_chores, use_session_handler

        # `handlers` registers the session and connection handlers and events when imported.
        assert handlers
        register_family(
            "sessions", client=messages.CLIENT_MESSAGES, server=messages.SERVER_MESSAGES, http=http_messages.HTTP_MODELS
        )
        use_session_handler(Sessions())
        use_chores(services.Chores())
        openapi.register_operations(OPERATIONS)
