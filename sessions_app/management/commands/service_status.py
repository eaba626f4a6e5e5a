"""Print what is connected and running right now, as JSON (for operators and scripts)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from sessions_app.selectors import service_counts


class Command(BaseCommand):
    help = "Show connections per server process, sessions and simulators by status, live workers and open orders."

    def handle(self, *args: object, **options: object) -> None:
        self.stdout.write(json.dumps(service_counts(), indent=2, sort_keys=True))
