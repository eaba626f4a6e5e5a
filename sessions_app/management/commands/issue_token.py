from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app import services
from sessions_app.realtime.errors import ProtocolError
from sessions_app.realtime.message_base import epoch_ms


class Command(BaseCommand):
    help = "Issue an access token for a user (creating the user with --create) and print it as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--create", action="store_true", help="Create the user if missing.")
        parser.add_argument("--password", help="Password for a user created with --create.")
        parser.add_argument("--device-id", help="Register or reuse this device ID (default: a new one).")
        parser.add_argument("--ttl", type=int, help="Lifetime in seconds (default AUTH_TOKEN_TTL_S).")

    def handle(
        self,
        *args: object,
        username: str,
        create: bool = False,
        password: str | None = None,
        device_id: str | None = None,
        ttl: int | None = None,
        **options: object,
    ) -> None:
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            if not create:
                raise CommandError(f"no user {username!r}; pass --create to make one")
            user = users.objects.create_user(username=username, password=password or None)
        try:
            issued = services.token_issue(user=user, device_id=device_id, ttl_s=ttl)
        except ProtocolError as error:
            raise CommandError(f"{error.code}: {error.message}") from None
        payload = {
            "token": issued.token,
            "deviceId": issued.device.device_id,
            "expiresAt": epoch_ms(issued.expires_at),
            "userId": str(user.pk),
        }
        self.stdout.write(json.dumps(payload))
