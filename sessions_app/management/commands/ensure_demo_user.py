from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Create (or reset) the demo trader `demo` / `demo-password` and the admin `admin` / `admin-password`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-admin", action="store_true", help="Only the demo trader.")

    def handle(self, *args: object, no_admin: bool = False, **options: object) -> None:
        users = get_user_model()
        demo, _ = users.objects.get_or_create(username=DEMO_USERNAME)
        demo.set_password(DEMO_PASSWORD)
        demo.save()
        self.stdout.write(f"demo trader: {DEMO_USERNAME} / {DEMO_PASSWORD}")
        if not no_admin:
            admin, _ = users.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
            admin.is_staff = admin.is_superuser = True
            admin.set_password("admin-password")
            admin.save()
            self.stdout.write("admin: admin / admin-password (at /admin/)")
