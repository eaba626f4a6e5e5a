"""ASGI entry point: HTTP (Django, DRF, admin) and the session WebSocket."""

import gc
import os

from django.core.asgi import get_asgi_application

# What loads here lives as long as the process: collecting it while it loads was a fifth of this
# import's CPU, and each later full collection walked it again. It is frozen at the end, as the
# server freezes what it makes before serving (sessions_app/realtime/process.py).
gc.disable()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.SERVE_STATIC:
    # The admin's CSS and JS straight from the apps; in production a proxy serves `collectstatic` output.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)
else:
    from config.staticfiles import require_manifest

    require_manifest()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from sessions_app.realtime import process  # noqa: E402
from sessions_app.realtime.routing import websocket_application  # noqa: E402
from simulator_app import in_process as simulator_in_process  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application()})

# The composition root: under daphne the process runs the apps' start and stop work (the
# in-process simulator worker and the orphan sweep) besides its own.
process.install(on_start=[simulator_in_process.start_in_server], on_stop=[simulator_in_process.stop_in_server])
gc.freeze()
gc.enable()
