"""nginx with the shipped recipe (deploy/nginx/trading-simulator.conf.template) in front of daphne
processes: for the recipe's end-to-end test and the fleet-restart benchmark."""

from __future__ import annotations

import os
import resource
import shutil
import string
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.liveserver import (
    ROOT,
    STARTUP_DEADLINE_S,
    DaphneServer,
    LocalAddress,
    PortTaken,
    free_port,
    port_taken,
    retry_on_taken_port,
)

TEMPLATE = ROOT / "deploy" / "nginx" / "trading-simulator.conf.template"
MIME_TYPES = "/etc/nginx/mime.types"


@dataclass
class Proxy(LocalAddress):
    port: int
    access_log: Path
    process: subprocess.Popen


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def start_nginx(directory: Path, servers: list[DaphneServer], *, worker_connections: int = 1024) -> Proxy:
    """The shipped site configuration (deploy/nginx) in front of `servers`, under a main
    configuration of its own in `directory`, on a free port."""
    return retry_on_taken_port(lambda: _start_nginx(directory, servers, worker_connections), lambda: None)


def _start_nginx(directory: Path, servers: list[DaphneServer], worker_connections: int) -> Proxy:
    port = free_port()
    (directory / "error.log").unlink(missing_ok=True)  # what an earlier attempt said
    access_log = directory / "access.log"
    site = string.Template(TEMPLATE.read_text()).safe_substitute(
        LISTEN_PORT=str(port),
        UPSTREAM_SERVERS=" ".join(f"server 127.0.0.1:{s.port} max_fails=0;" for s in servers),
        # What the servers' pages name: their collectstatic output, when they have one.
        STATIC_ROOT=str(servers[0].env.get("STATIC_ROOT") or directory / "static").rstrip("/") + "/",
    )
    site = site.replace("/var/log/nginx/trading-simulator.access.log", str(access_log))
    (directory / "site.conf").write_text(site)
    main = f"""
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
worker_rlimit_nofile {min(2 * worker_connections + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1])};
events {{ worker_connections {worker_connections}; }}
http {{
    # As Debian's /etc/nginx/nginx.conf: without a type, a module script is refused by the browser.
    include {MIME_TYPES}; default_type application/octet-stream;
    client_body_temp_path {directory}/body; proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi; uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;
    include {directory}/site.conf;
}}
"""
    (directory / "nginx.conf").write_text(main)
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    process = subprocess.Popen([binary, "-c", str(directory / "nginx.conf"), "-p", str(directory)])
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return Proxy(port, access_log, process)
        except OSError:
            if process.poll() is not None:
                said = (directory / "error.log").read_text()
                raise (PortTaken if port_taken(said) else RuntimeError)(said) from None
            time.sleep(0.1)
    raise RuntimeError("nginx did not start")
