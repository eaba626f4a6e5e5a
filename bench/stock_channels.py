"""The stock-Channels baseline for the benchmarks: what a typical Channels app looks like
(AsyncJsonWebsocketConsumer, stock dispatch, a group per connection), answering the same
heartbeat_ack as the service, and forwarding each `market.tick` its group hears as `exchange_data`
(the per-connection group_send fan-out: bench/baselines.py publishes). Run by bench/session_core.py
and bench/suite.py under daphne; not part of the service."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


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


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([path("ws/stock/", StockHeartbeatConsumer.as_asgi())]),
    }
)
