"""Settings of the stock-Channels baseline (bench/stock_channels.py): the service's, except that
where the service runs its own embedded layer the baseline runs Channels' InMemoryChannelLayer, so
the baseline is stock Channels and not Channels on our layer. In production both use channels-redis."""

from config.settings import *  # noqa: F403

if CHANNEL_LAYERS["default"]["BACKEND"].endswith(".EmbeddedChannelLayer"):  # noqa: F405
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
