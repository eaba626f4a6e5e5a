"""tradesim: the Python client of the trading simulator's session service (docs/protocol.md).

import asyncio
from tradesim import Client

async def main() -> None:
    async with Client("http://127.0.0.1:8000") as client:
        client.on("exchange_data", lambda tick: print(tick["symbols"]))
        await client.connect(username="demo", password="demo-password")
        await client.request("start_simulator")
        placed = await client.request("place_order", symbol="AAPL", side="buy", orderType="market", quantity=1)
        print(placed["order"]["orderId"])

asyncio.run(main())
"""

from tradesim.books import BookKeeper, OrderBook
from tradesim.client import FINAL_CODES, RECONNECT_CODES, Client, default_device_file
from tradesim.errors import ApiError, NotConnected, ProtocolError, RequestTimeout, SessionEnded, TradesimError
from tradesim.stream import QualityMeter, StreamStats, StreamTracker, backoff_delay_ms

__all__ = [
    "FINAL_CODES",
    "RECONNECT_CODES",
    "ApiError",
    "BookKeeper",
    "Client",
    "NotConnected",
    "OrderBook",
    "ProtocolError",
    "QualityMeter",
    "RequestTimeout",
    "SessionEnded",
    "StreamStats",
    "StreamTracker",
    "TradesimError",
    "backoff_delay_ms",
    "default_device_file",
]
__version__ = "0.1.0"
