"""In production the per-user limit holds across daphne processes (the counts are in Redis), and
the connections of a process killed with SIGKILL stop counting by themselves."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.support.limits import assert_too_many, devices_of_new_user, open_socket, open_when_admitted
from tests.support.liveserver import DaphneServer, recv_json
from tests.support.production import Cluster, production_cluster

# Entries live three presence flushes: a killed process's connections lapse within 3 s here.
SETTINGS = {"WS_MAX_CONNECTIONS_PER_USER": "2", "PRESENCE_FLUSH_INTERVAL_S": "1"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with production_cluster(tmp_path_factory.mktemp("limits-production"), SETTINGS, servers=2, workers=0) as cluster:
        yield cluster


def test_the_users_limit_counts_connections_on_every_process(cluster: Cluster) -> None:
    first, second = cluster.servers
    laptop, phone, tablet = devices_of_new_user(first, 3)
    with open_socket(first, laptop) as ws_laptop, open_socket(second, phone):
        assert_too_many(first, tablet, "WS_MAX_CONNECTIONS_PER_USER")
        assert_too_many(second, tablet, "WS_MAX_CONNECTIONS_PER_USER")
        with open_socket(second, laptop) as replacing:  # the same device, on the other process
            assert recv_json(ws_laptop)["type"] == "connection_replaced"
            assert replacing.close_code is None
        with open_when_admitted(first, tablet):
            pass


def test_a_killed_processs_connections_stop_counting(cluster: Cluster) -> None:
    doomed = DaphneServer(env=cluster.env).start(cluster.directory)
    survivor = cluster.servers[0]
    laptop, phone, tablet = devices_of_new_user(survivor, 3)
    with open_socket(doomed, laptop), open_socket(doomed, phone):
        assert_too_many(survivor, tablet, "WS_MAX_CONNECTIONS_PER_USER")
        doomed.stop(signal.SIGKILL)  # no disconnect runs, nothing is released
        started = time.monotonic()
        # The dead process's entries lapse after their TTL (three flush intervals, 3 s here); how soon
        # on a loaded machine is a figure, not a bound to assert.
        with open_when_admitted(survivor, tablet, timeout=60):
            print(f"\nadmitted {time.monotonic() - started:.1f} s after the SIGKILL")
