"""Several accounts per user, last step: every order, fill and position has its account (0015), and
the constraints and indexes that go with accounts."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('market_app', '0015_accounts_data'),
    ]

    operations = [
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
