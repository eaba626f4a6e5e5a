"""End every active session past its expiresAt now (servers also do this every minute)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from sessions_app.services import sessions_expire_due


class Command(BaseCommand):
    help = "Expire every active session past its expiresAt (and stop their simulators); prints how many."

    def handle(self, *args: object, **options: object) -> None:
        count = sessions_expire_due()
        self.stdout.write(f"expired {count} session(s)")
