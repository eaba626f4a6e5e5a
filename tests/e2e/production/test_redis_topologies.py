"""Production mode on Redis beyond one server (docs/redis.md): two daphne processes and a worker
sharing two Redis shards, and the same on a Sentinel-managed master that fails over mid-trading.
Clients recover as the protocol says and every numbered push is counted: none lost, none twice;
a failover costs at worst a resync."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.faults import (
    DEVICES,
    NET_FILLS_AND_POSITIONS,
    SETTINGS,
    USERS,
    RedisServer,
    Trading,
    assert_nothing_lost_or_doubled,
    recovered_once,
    session_ids,
    traders_for,
)
from tests.support.liveserver import recv_json, recv_until_closed, request, send_json, wait_until
from tests.support.production import Cluster, production_cluster, redis_keys
from tests.support.redis_servers import MASTER_NAME, SentinelGroup, redis_shards, sentinel_group


@contextmanager
def cluster_on_shards(directory: Path) -> Iterator[tuple[Cluster, list[RedisServer]]]:
    with redis_shards(directory, 2) as shards:
        urls = ",".join(shard.url for shard in shards)
        with production_cluster(
            directory, {**SETTINGS, "REDIS_URL": "", "REDIS_URLS": urls}, servers=2, workers=1
        ) as cluster:
            yield cluster, shards


def keys_on(shard: RedisServer, pattern: str) -> set[str]:
    return set(redis_keys(shard.url, pattern))


def test_two_processes_on_two_shards_replace_push_across_and_recover_a_killed_ones_clients(tmp_path: Path) -> None:
    with cluster_on_shards(tmp_path) as (cluster, shards):
        first, second = cluster.servers
        prefix = cluster.env["CHANNEL_LAYER_PREFIX"]
        # A device's connection on one process is replaced by one on the other.
        creds = first.issue_token("replaced")
        with first.connect(creds["token"], creds["deviceId"]) as old:
            old_connected = recv_json(old)
            with second.connect(creds["token"], creds["deviceId"]) as new:
                assert recv_json(new)["sessionId"] == old_connected["sessionId"]
                messages, code = recv_until_closed(old)
                send_json(new, request("request_session_info", creds["deviceId"], "after"))
                assert recv_json(new)["status"] == "active"
        assert [m["type"] for m in messages] == ["connection_replaced"] and code == 4009

        # Orders placed through one process reach every client of their user on both.
        traders, tokens = traders_for(cluster)
        trading = Trading(cluster.servers[1], tokens, count=12)
        time.sleep(1.0)
        # Each session's stream is on its own shard, and both shards hold some.
        sessions = session_ids(cluster)
        streams = [keys_on(shard, f"{prefix}:stream:*:m") for shard in shards]
        assert all(streams) and not streams[0] & streams[1]
        assert {key.split(":")[-2] for key in streams[0] | streams[1]} >= set(sessions.values())
        # Then the first process dies: its clients reconnect to the second and recover by replay.
        killed_at = time.monotonic()
        first.stop(signal.SIGKILL)
        placed = trading.finish()
        on_killed = recovered_once(traders, USERS * DEVICES // 2)
        assert len(on_killed) == USERS * DEVICES // 2
        checked = assert_nothing_lost_or_doubled(traders, placed)
        assert all(r.recovered for t in on_killed for r in t.recoveries), [t.recoveries for t in on_killed]
        assert not any(t.resyncs for t in traders), [(t.name, t.resyncs) for t in traders if t.resyncs]
        worst = max(r.recovered_at - killed_at for t in on_killed for r in t.recoveries)
        print(f"\ntwo shards: {len(on_killed)} clients recovered by replay (worst {worst:.2f} s); {checked} pushes")
        for trader in traders:
            trader.stop()


@contextmanager
def cluster_on_sentinels(directory: Path) -> Iterator[tuple[Cluster, SentinelGroup]]:
    with sentinel_group(directory / "redis") as group:
        settings = {
            **SETTINGS,
            # The resync is what these tests watch: a failover on a loaded machine may take longer
            # than the watchdog's default bound, which would send the clients elsewhere instead.
            "CHANNEL_LAYER_WATCHDOG_MS": "60000",
            "REDIS_URL": "",
            "REDIS_SENTINELS": group.addresses,
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
        }
        with production_cluster(directory, settings, servers=2, workers=1) as cluster:
            yield cluster, group


@pytest.mark.parametrize("how", ["sentinel_failover", "master_killed"])
def test_a_sentinel_failover_mid_trading_costs_clients_at_most_a_resync_and_no_order_update(
    tmp_path: Path, how: str
) -> None:
    (tmp_path / "redis").mkdir()
    with cluster_on_sentinels(tmp_path) as (cluster, group):
        traders, tokens = traders_for(cluster)
        trading = Trading(cluster.servers[1], tokens, count=16)
        time.sleep(1.0)
        old_master = group.master()
        failed_at = time.monotonic()
        if how == "sentinel_failover":
            group.failover()
        else:
            old_master.kill()
            group.wait_for_new_master(old_master.port)
        promoted_in = time.monotonic() - failed_at
        placed = trading.finish()
        # Every order reached every client of its user in its final state, and no push came twice.
        checked = assert_nothing_lost_or_doubled(traders, placed)
        # The streams changed epoch with the master: each client was resynchronised (at most that),
        # over the socket it had, with no reconnect.
        assert wait_until(lambda: all(t.resyncs for t in traders), 20), [t.name for t in traders if not t.resyncs]
        resynced_in = time.monotonic() - failed_at
        reasons = Counter(r["reason"] for t in traders for r in t.resyncs)
        # epoch_changed: the stream's new history; gap: a push the layer lost in the switch-over.
        assert set(reasons) <= {"epoch_changed", "gap"} and reasons["epoch_changed"] >= 1, reasons
        assert all(not t.recoveries for t in traders), [(t.name, t.closes) for t in traders if t.recoveries]
        # And trading goes on after it: new orders arrive as numbered pushes in the new epoch.
        after = Trading(cluster.servers[0], tokens, count=3).finish()
        assert_nothing_lost_or_doubled(traders, {u: placed[u] + after[u] for u in tokens})
        for username in tokens:
            fills, positions = cluster.query(NET_FILLS_AND_POSITIONS, username, username)[0]
            assert fills == positions, (username, fills, positions)
        print(
            f"\n{how}: new master after {promoted_in:.2f} s; {len(traders)} clients resynchronised ({dict(reasons)}),"
            f" none reconnected, all within {resynced_in:.1f} s of the fault; {checked} pushes, none lost or doubled"
        )
        for trader in traders:
            trader.stop()
