"""Several accounts per user: each user's one account becomes their default and current account
("Main"), and their orders, fills and positions move into it. Nothing is lost: a user with trading
data and no account row (none was ever made, as `account_for` makes them on first use) gets one."""

from decimal import Decimal

from django.conf import settings
from django.db import migrations
from django.db.models import OuterRef, Subquery


def into_default_accounts(apps, schema_editor):
    Account = apps.get_model("market_app", "Account")
    users = set()
    for name in ("Order", "Fill", "Position"):
        users.update(apps.get_model("market_app", name).objects.values_list("user_id", flat=True).distinct())
    have = set(Account.objects.values_list("user_id", flat=True))
    cash = Decimal(settings.MARKET_STARTING_CASH)
    Account.objects.bulk_create([Account(user_id=u, cash=cash, starting_cash=cash) for u in sorted(users - have)])
    account = Subquery(Account.objects.filter(user_id=OuterRef("user_id")).values("pk")[:1])
    for name in ("Order", "Fill", "Position"):
        apps.get_model("market_app", name).objects.update(account_id=account)


class Migration(migrations.Migration):

    dependencies = [
        ('market_app', '0014_several_accounts_per_user'),
    ]

    operations = [
        migrations.RunPython(into_default_accounts, migrations.RunPython.noop),
    ]
