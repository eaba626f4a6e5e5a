"""The admin's simulator list names each simulator's market: the shared feed, a synthetic walk, or a
replay's dataset with the bar its clock reached."""

from __future__ import annotations

import pytest
from django.test import Client

from simulator_app import services
from simulator_app.clock import ClockSettings
from simulator_app.models import Simulator
from tests.support.factories import make_session, make_worker

pytestmark = [pytest.mark.django_db]


def test_the_list_names_each_simulators_market(admin_client: Client) -> None:
    make_worker()
    shared, replay = make_session(), make_session()
    services.simulator_start(user_id=shared.user_id, session_id=shared.id)
    market = {"source": "replay", "datasetId": "7", "symbols": ["AAA"], "start": 0, "end": 9, "seed": 1, "bars": 10}
    replayed = services.simulator_start(
        user_id=replay.user_id, session_id=replay.id, market=market, clock=ClockSettings()
    )
    Simulator.objects.filter(pk=replayed.pk).update(state={"clock": {"position": 3}})

    page = admin_client.get("/admin/simulator_app/simulator/").content.decode()

    assert "replay of dataset 7, bar 4 of 10" in page
    assert '<td class="field-market_shown">shared</td>' in page
