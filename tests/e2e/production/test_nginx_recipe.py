"""The production recipe for real: the shipped nginx configuration in front of two daphne
processes (--proxy-headers) and a simulator worker, on PostgreSQL and Redis."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.browser import chromium, log_in_to_console
from tests.support.liveserver import (
    ROOT,
    heartbeat,
    http_json,
    manage,
    recv_json,
    recv_until,
    recv_until_closed,
    request,
    send_json,
    wait_until,
)
from tests.support.nginx import TEMPLATE, Proxy, nginx_binary, start_nginx
from tests.support.production import IN_CI, Cluster, production_cluster


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Proxy]]:
    directory = tmp_path_factory.mktemp("nginx")
    if nginx_binary() is None:
        if IN_CI:
            pytest.fail("the nginx recipe test needs nginx (Debian package nginx-light); CI=true makes it mandatory")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    settings = {"SIMULATOR_LEASE_TTL_MS": "2000", "SIMULATOR_LEASE_RENEW_MS": "500"}
    with production_cluster(directory, settings, servers=2, workers=1, server_args=("--proxy-headers",)) as cluster:
        manage(cluster.env, "ensure_demo_user")
        for server in cluster.servers:  # as the systemd unit does before a process counts as started
            subprocess.run([sys.executable, ROOT / "scripts" / "wait-ready", f"{server.http}/readyz", "30"], check=True)
        proxy = start_nginx(directory, cluster.servers)
        try:
            yield cluster, proxy
        finally:
            proxy.process.send_signal(signal.SIGQUIT)
            proxy.process.wait(10)


def ws_connects_per_backend(cluster: Cluster) -> list[int]:
    return [server.log().count('"WSCONNECT /ws/session/"') for server in cluster.servers]


def login(proxy: Proxy, headers: dict[str, str] | None = None) -> dict:
    body = {"username": "demo", "password": "demo-password"}
    status, creds = http_json(proxy.http, "POST", "/api/auth/token/", body, headers=headers)
    assert status == 201, creds
    return creds


def test_a_session_through_nginx_including_replacement_across_the_two_backends(
    recipe: tuple[Cluster, Proxy],
) -> None:
    from websockets.sync.client import connect

    cluster, proxy = recipe
    creds = login(proxy)
    url = f"{proxy.ws}/ws/session/?token={creds['token']}&deviceId={creds['deviceId']}"
    before = ws_connects_per_backend(cluster)
    with connect(url, open_timeout=10) as first:
        connected = recv_json(first)
        send_json(first, heartbeat(creds["deviceId"]))
        ack = recv_json(first)
        send_json(first, request("start_simulator", creds["deviceId"], "start"))
        recv_until(first, "simulator_status_update", simulatorStatus="running")
        after_first = ws_connects_per_backend(cluster)
        with connect(url, open_timeout=10) as second:
            again = recv_json(second)
            messages, code = recv_until_closed(first, ignore=("exchange_data", "exchange_data_status"))
            after_second = ws_connects_per_backend(cluster)
            send_json(second, request("stop_simulator", creds["deviceId"], "stop"))
            stopped, _ = recv_until(second, "simulator_stopped")

    first_backend = [b - a for a, b in zip(before, after_first, strict=True)].index(1)
    second_backend = [b - a for a, b in zip(after_first, after_second, strict=True)].index(1)
    assert first_backend != second_backend, "both connections reached the same daphne process"
    assert ack["type"] == "heartbeat_ack" and again["sessionId"] == connected["sessionId"]
    assert [m["type"] for m in messages] == ["connection_replaced"] and code == 4009
    assert stopped["success"] is True


def test_the_proxy_overwrites_x_forwarded_for_and_logs_no_token(recipe: tuple[Cluster, Proxy]) -> None:
    cluster, proxy = recipe
    creds = login(proxy, headers={"X-Forwarded-For": "6.6.6.6"})
    from websockets.sync.client import connect

    with connect(f"{proxy.ws}/ws/session/?token={creds['token']}&deviceId={creds['deviceId']}") as ws:
        recv_json(ws)
    # nginx writes the socket's access log line when the request ends, after the close.
    assert wait_until(lambda: "/ws/session/" in proxy.access_log.read_text(), 20)
    access = proxy.access_log.read_text()
    backends = "".join(server.log() for server in cluster.servers)

    assert "/ws/session/" in access and "/api/auth/token/" in access
    assert creds["token"] not in access and "token=" not in access
    assert "6.6.6.6" not in backends  # daphne trusted the proxy's header, which replaced the forged one
    assert "127.0.0.1" in backends


def test_the_proxy_keeps_metrics_private_and_websockets_open_past_the_heartbeat(recipe: tuple[Cluster, Proxy]) -> None:
    _, proxy = recipe
    try:
        urllib.request.urlopen(f"{proxy.http}/metrics", timeout=5)
        status = 200
    except urllib.error.HTTPError as error:
        status = error.code
    site = (TEMPLATE).read_text()
    with urllib.request.urlopen(f"{proxy.http}/readyz", timeout=5) as response:
        ready = response.status
    assert status == 404 and ready == 200
    assert "proxy_read_timeout 120s;" in site  # longer than the 45 s heartbeat timeout


def fetch(proxy: Proxy, path: str) -> tuple[str, dict[str, str]]:
    with urllib.request.urlopen(f"{proxy.http}{path}", timeout=5) as response:
        return response.read().decode(), dict(response.headers)


def test_the_console_names_hashed_files_that_the_proxy_lets_browsers_keep(recipe: tuple[Cluster, Proxy]) -> None:
    _, proxy = recipe
    page, _ = fetch(proxy, "/")
    script = re.search(r'src="(/static/trading/console\.[0-9a-f]{12}\.js)"', page)
    assert script, page
    console, console_headers = fetch(proxy, script.group(1))
    imported = re.search(r'from "\./(client/connection-manager\.[0-9a-f]{12}\.js)";', console)
    assert imported, console[:300]
    library, library_headers = fetch(proxy, f"/static/trading/{imported.group(1)}")
    plain, plain_headers = fetch(proxy, "/static/trading/client/connection-manager.js")

    books_import = re.search(r'from "\./(order-books\.[0-9a-f]{12}\.js)";', library)
    assert books_import, library[:600]
    _, books_headers = fetch(proxy, f"/static/trading/client/{books_import.group(1)}")

    immutable = "public, max-age=31536000, immutable"
    assert console_headers["Cache-Control"] == immutable and library_headers["Cache-Control"] == immutable
    assert books_headers["Cache-Control"] == immutable
    # The same library under its plain name, for pages elsewhere: it imports the plain names.
    assert plain == library.replace(books_import.group(1), "order-books.js")
    assert plain_headers["Cache-Control"] == "max-age=3600"


@pytest.mark.browser
def test_the_console_works_in_a_browser_through_the_proxy_with_hashed_files(recipe: tuple[Cluster, Proxy]) -> None:

    _, proxy = recipe
    with chromium() as browser:
        page = browser.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
        log_in_to_console(page, proxy.http)
        loaded = page.evaluate("performance.getEntriesByType('resource').map((entry) => entry.name)")

    assert failed == []
    hashed_library = r"/static/trading/client/connection-manager\.[0-9a-f]{12}\.js$"
    assert any(re.search(hashed_library, url) for url in loaded), loaded
