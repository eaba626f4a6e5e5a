"""Fill the sessions floor's copy of each user's newest simulator (sessions_app.UserSimulatorStatus),
which the simulator services keep current from now on."""

from django.db import migrations


def copy_statuses(apps, schema_editor):
    Simulator = apps.get_model("simulator_app", "Simulator")
    UserSimulatorStatus = apps.get_model("sessions_app", "UserSimulatorStatus")
    newest = {}
    for simulator in Simulator.objects.order_by("user_id", "created_at").iterator():
        newest[simulator.user_id] = simulator
    UserSimulatorStatus.objects.bulk_create(
        [
            UserSimulatorStatus(
                user_id=user_id,
                simulator_id=simulator.id,
                status=simulator.status,
                profile=simulator.profile,
                created_at=simulator.created_at,
                version=simulator.version,
            )
            for user_id, simulator in newest.items()
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("simulator_app", "0003_simulator_profile"),
        ("sessions_app", "0003_user_simulator_status"),
    ]

    operations = [migrations.RunPython(copy_statuses, migrations.RunPython.noop)]
