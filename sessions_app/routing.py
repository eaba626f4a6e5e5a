from django.urls import path

from sessions_app.consumers import SessionConsumer

websocket_urlpatterns = [
    path("ws/session/", SessionConsumer.as_asgi()),
]
