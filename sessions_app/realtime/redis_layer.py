"""The production channel layer: channels-redis, with a connection pool that waits when it is full
and group joins that share a round trip.

Named by CHANNEL_LAYERS in config/settings.py when REDIS_URL is set. The pool itself comes from
internals (it overrides channels-redis's pool factory, behind a version guard).
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer
from django.conf import settings

from sessions_app.realtime import internals


class RedisLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> Any:
        pool = internals.waiting_redis_pool(
            self.hosts[index], size=settings.CHANNEL_LAYER_POOL_SIZE, timeout_s=settings.CHANNEL_LAYER_POOL_TIMEOUT_S
        )
        return pool if pool is not None else super().create_pool(index)

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """group_add for several groups in one round trip per Redis shard."""
        if not await internals.redis_group_add_many(self, groups, channel):
            for group in groups:
                await self.group_add(group, channel)
