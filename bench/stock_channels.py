"""The stock-Channels baseline for the benchmarks: what a typical Channels app looks like
(AsyncJsonWebsocketConsumer, stock dispatch, a group per connection), answering the same
heartbeat_ack as the service, and forwarding each `market.tick` its group hears as `exchange_data`
(the per-connection group_send fan-out: bench/baselines.py publishes). `/ws/stock-auth/` is the
fair peer of the service's handshake: a connect that looks its token up with one SELECT (the query
DRF's TokenAuthentication makes, the token row joined with its user, here on the service's token
table), then accepts and sends a first message. Run by bench/session_core.py and bench/suite.py
under daphne; not part of the service."""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.stock_settings"  # stock Channels, on its own in-memory layer

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from urllib.parse import parse_qs  # noqa: E402

from channels.db import database_sync_to_async  # noqa: E402
from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from sessions_app.models import AccessToken  # noqa: E402
from sessions_app.tokens import hash_access_token  # noqa: E402


class StockHeartbeatConsumer(AsyncJsonWebsocketConsumer):
    groups = ["stock-broadcast"]

    async def receive_json(self, content: dict, **kwargs: object) -> None:
        import time

        await self.send_json(
            {
                "type": "heartbeat_ack",
                "timestamp": int(time.time() * 1000),
                "clientTimestamp": content.get("timestamp"),
                "deviceId": content.get("deviceId"),
                "deviceIdValid": True,
                "connectionQualityUpdate": "good",
                "sessionStatus": "valid",
                "simulatorStatus": "stopped",
            }
        )

    async def market_tick(self, event: dict) -> None:
        await self.send_json(
            {"type": "exchange_data", "timestamp": event["timestamp"], "symbols": event["symbols"], "seq": event["seq"]}
        )


def user_of_token(raw: str) -> int | None:
    token = AccessToken.objects.select_related("user").filter(key_hash=hash_access_token(raw)).first()
    return token.user_id if token is not None and token.user.is_active else None


class StockTokenConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        import time

        raw = (parse_qs(self.scope.get("query_string", b"").decode()).get("token") or [""])[0]
        user_id = await database_sync_to_async(user_of_token)(raw)
        if user_id is None:
            await self.close(code=4001)
            return
        await self.accept()
        await self.send_json({"type": "connected", "userId": str(user_id), "timestamp": int(time.time() * 1000)})

    async def receive_json(self, content: dict, **kwargs: object) -> None:
        await self.send_json({"type": "heartbeat_ack", "clientTimestamp": content.get("timestamp")})


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                path("ws/stock/", StockHeartbeatConsumer.as_asgi()),
                path("ws/stock-auth/", StockTokenConsumer.as_asgi()),
            ]
        ),
    }
)
