"""Several accounts per user, first step: the new columns (the orders', fills' and positions' account
still empty). 0015 fills them, 0016 makes them required: on PostgreSQL a data change and a table
change cannot share a transaction (pending trigger events)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


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
    ]
