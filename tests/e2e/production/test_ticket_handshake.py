"""In production a ticket is kept in Redis: asked for on one daphne process, it opens a socket on
another, and then no process takes it again."""

from __future__ import annotations

from pathlib import Path

from tests.support.liveserver import manage, recv_json, recv_until_closed
from tests.support.production import production_cluster


def test_a_ticket_from_one_process_opens_a_socket_on_another_once(tmp_path: Path) -> None:
    with production_cluster(tmp_path, {}, servers=2, workers=0) as cluster:
        manage(cluster.env, "ensure_demo_user")
        first, second = cluster.servers
        creds = first.login("demo", "demo-password")
        ticket = first.ticket(creds["token"])["ticket"]
        with second.connect_with_ticket(ticket, creds["deviceId"]) as ws:
            assert recv_json(ws)["type"] == "connected"
        for server in (first, second):
            with server.connect_with_ticket(ticket) as ws:
                messages, code = recv_until_closed(ws)
            assert [m["code"] for m in messages] == ["ticket_invalid"] and code == 4001, (code, server.log()[-3000:])
