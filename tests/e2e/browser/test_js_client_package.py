"""The browser client as a frontend team gets it: `npm pack` makes the tarball, a page built by Vite
installs it from there (tools/js-client/example), and Chromium runs the page on an origin of its
own against daphne, once per encoding: it keeps a book from snapshot and deltas, every update's
checksum verified, and places an order."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.browser import StaticOrigin, chromium
from tests.support.liveserver import ROOT
from tests.support.production import IN_CI
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory

PACKAGE = ROOT / "tools" / "js-client"
NPM_QUIET = ("--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")


def npm(*args: str, cwd: Path) -> str:
    executable = shutil.which("npm")
    if executable is None:
        if IN_CI:
            pytest.fail("the package test needs npm (Node.js 20 or later); CI=true makes it mandatory")
        pytest.skip("npm is not installed")
    done = subprocess.run([executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"npm {' '.join(args)} in {cwd}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example page built by Vite against the packed tarball, not against the source tree."""
    if not (PACKAGE / "node_modules" / ".bin" / "vite").exists():
        npm("ci", *NPM_QUIET, cwd=PACKAGE)  # scripts/test has done this; a lone pytest run does it here
    work = tmp_path_factory.mktemp("js-client")
    packed = json.loads(npm("pack", "--json", "--pack-destination", str(work), cwd=PACKAGE))
    tarball = work / packed[0]["filename"]
    shipped = {entry["path"] for entry in packed[0]["files"]}
    assert {"src/index.js", "src/index.d.ts", "src/msgpack.js", "src/protocol.d.ts", "README.md"} <= shipped, shipped
    assert not any(path.startswith(("test/", "example/")) for path in shipped), shipped

    page = work / "page"
    shutil.copytree(PACKAGE / "example", page)
    (page / "package.json").write_text('{"private": true, "type": "module"}\n')
    npm("install", *NPM_QUIET, "--no-package-lock", str(tarball), cwd=page)
    installed = page / "node_modules" / "@tradesim" / "client"
    assert not installed.is_symlink() and (installed / "src" / "connection-manager.js").is_file()
    npm("exec", "--prefix", str(PACKAGE), "--", "vite", "build", str(page), "--outDir", str(page / "dist"), cwd=PACKAGE)
    return page / "dist"


@pytest.mark.parametrize(("encoding", "subprotocol"), [("json", ""), ("msgpack", "tradesim.msgpack")])
def test_a_page_built_from_the_packed_tarball_keeps_a_verified_book_and_trades(
    built_page: Path, make_server: ServerFactory, encoding: str, subprotocol: str
) -> None:
    with StaticOrigin(built_page) as origin, chromium() as browser:
        server = make_server(WS_ALLOWED_ORIGINS=origin.http, **RELAXED_LOGIN_THROTTLE)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{origin.http}/index.html?service={server.http}&encoding={encoding}&symbol=AAPL")
        page.wait_for_function("window.outcome !== undefined", timeout=60_000)
        outcome = page.evaluate("window.outcome")
        shown = page.locator("#verified").inner_text()
        server.stop()

    assert errors == []
    assert outcome["ok"], outcome
    assert outcome["subprotocol"] == subprotocol
    assert outcome["orderType"] == "order_placed"
    bids, asks = outcome["levels"]
    assert bids > 0 and asks > 0, outcome
    assert shown == "4"  # the snapshot and three updates, each checksum verified before the event
