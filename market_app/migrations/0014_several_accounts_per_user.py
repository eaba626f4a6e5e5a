"""Several accounts per user: each user's one account becomes their default and current account
("Main"), and their orders, fills and positions move into it. Nothing is lost: a user with trading
data and no account row (none was ever made, as `account_for` makes them on first use) gets one."""

from decimal import Decimal

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
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
        ('market_app', '0013_account_loss_day_of_own_markets'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(name='account', options={'ordering': ['created_at', 'id']}),
        migrations.AlterField(
            model_name='account',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='trading_accounts', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(model_name='account', name='name', field=models.CharField(default='Main', max_length=64)),
        migrations.AddField(model_name='account', name='is_default', field=models.BooleanField(default=True)),
        migrations.AddField(model_name='account', name='is_current', field=models.BooleanField(default=True)),
        migrations.AddField(
            model_name='account',
            name='profile',
            field=models.CharField(blank=True, choices=[('ideal', 'ideal (no spread, fees or latency)'), ('realistic', 'realistic'), ('harsh', 'harsh (wide spreads, thin books, slow, expensive)')], help_text="Empty: the service's default.", max_length=10),
        ),
        migrations.AddField(
            model_name='account',
            name='closed_at',
            field=models.DateTimeField(blank=True, help_text='Closed accounts keep their history.', null=True),
        ),
        migrations.AddField(
            model_name='order',
            name='account',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='orders', to='market_app.account'),
        ),
        migrations.AddField(
            model_name='fill',
            name='account',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='fills', to='market_app.account'),
        ),
        migrations.AddField(
            model_name='position',
            name='account',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name='positions', to='market_app.account'),
        ),
        migrations.RunPython(into_default_accounts, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='order',
            name='account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='orders', to='market_app.account'),
        ),
        migrations.AlterField(
            model_name='fill',
            name='account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='fills', to='market_app.account'),
        ),
        migrations.AlterField(
            model_name='position',
            name='account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='positions', to='market_app.account'),
        ),
        migrations.RemoveConstraint(model_name='position', name='one_position_per_instrument'),
        migrations.AddConstraint(
            model_name='position',
            constraint=models.UniqueConstraint(fields=('account', 'instrument'), name='one_position_per_instrument'),
        ),
        migrations.RemoveIndex(model_name='order', name='order_user_created'),
        migrations.AddIndex(
            model_name='order',
            index=models.Index(fields=['account', '-created_at'], name='order_account_created'),
        ),
        migrations.AddIndex(
            model_name='fill',
            index=models.Index(fields=['account', 'created_at'], name='fill_account_created'),
        ),
        migrations.AddConstraint(
            model_name='account',
            constraint=models.UniqueConstraint(condition=models.Q(('is_default', True)), fields=('user',), name='one_default_account'),
        ),
        migrations.AddConstraint(
            model_name='account',
            constraint=models.UniqueConstraint(condition=models.Q(('is_current', True)), fields=('user',), name='one_current_account'),
        ),
        migrations.AddConstraint(
            model_name='account',
            constraint=models.UniqueConstraint(condition=models.Q(('closed_at__isnull', True)), fields=('user', 'name'), name='one_open_account_per_name'),
        ),
    ]
