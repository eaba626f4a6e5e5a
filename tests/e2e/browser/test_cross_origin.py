"""A frontend on an origin of its own, in a real browser (Debian's chromium, driven by Playwright):
the page on the allowed origin logs in (a preflighted JSON POST), takes a ticket, opens the socket
and gets a reply; the same page on another origin is refused by the browser itself."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.browser import StaticOrigin, chromium
from tests.support.liveserver import ROOT
from tests.support.servers import RELAXED_LOGIN_THROTTLE, ServerFactory

# The browser library: connection-manager.js and the module it imports.
LIBRARY = [ROOT / "tools" / "js-client" / "src" / name for name in ("connection-manager.js", "order-books.js")]

# The frontend ships its own copy of the library: a module script from another origin would need
# CORS on /static/ too, which the proxy serves.
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>A frontend on its own origin</title>
<script type="module">
import { ConnectionManager } from "./connection-manager.js";

const service = new URLSearchParams(location.search).get("service");
window.outcome = (async () => {
  const cm = new ConnectionManager({ baseUrl: service, useTickets: true, maxAttempts: 0 });
  try {
    await cm.connect({ username: "demo", password: "demo-password" });
    const reply = await cm.request("request_session_info");
    // A second ticket by hand: the browser reuses the first preflight's answer (Access-Control-Max-Age).
    const again = await fetch(`${service}/api/auth/ticket/`, {
      method: "POST",
      headers: { Authorization: `Bearer ${cm.token}` },
    });
    const result = { ok: true, replyType: reply.type, state: cm.state, secondTicket: again.status };
    cm.close();
    return result;
  } catch (error) {
    cm.close();
    return { ok: false, error: `${error.name}: ${error.message}` };
  }
})();
</script>
"""


def requests_in(log: str, method: str, path: str) -> int:
    return log.count(f'"{method} {path}"')


def test_a_frontend_on_an_allowed_origin_talks_to_the_service_and_another_origin_is_refused(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    for module in LIBRARY:
        shutil.copyfile(module, site / module.name)

    with StaticOrigin(site) as allowed, StaticOrigin(site) as other, chromium() as browser:
        # Only the socket's origins are configured: the API's CORS follows them.
        server = make_server(WS_ALLOWED_ORIGINS=allowed.http, **RELAXED_LOGIN_THROTTLE)

        page = browser.new_page()
        page.goto(f"{allowed.http}/index.html?service={server.http}")
        page.wait_for_function("window.outcome !== undefined")
        outcome = page.evaluate("window.outcome")
        log = server.log()

        assert outcome == {"ok": True, "replyType": "session_info", "state": "open", "secondTicket": 201}, outcome
        assert requests_in(log, "OPTIONS", "/api/auth/token/") == 1  # the JSON login was preflighted
        assert requests_in(log, "POST", "/api/auth/token/") == 1
        assert requests_in(log, "POST", "/api/auth/ticket/") == 2
        assert requests_in(log, "OPTIONS", "/api/auth/ticket/") == 1  # the second ticket reused the answer
        assert requests_in(log, "WSCONNECT", "/ws/session/") == 1

        refused = browser.new_page()
        console: list[str] = []
        refused.on("console", lambda message: console.append(message.text))
        refused.goto(f"{other.http}/index.html?service={server.http}")
        refused.wait_for_function("window.outcome !== undefined")
        outcome = refused.evaluate("window.outcome")
        log = server.log()

        assert outcome == {"ok": False, "error": "TypeError: Failed to fetch"}, outcome
        assert any("blocked by CORS policy" in line and other.http in line for line in console), console
        # The browser asked, got no Access-Control-Allow-Origin, and never sent the login itself.
        assert requests_in(log, "OPTIONS", "/api/auth/token/") == 2
        assert requests_in(log, "POST", "/api/auth/token/") == 1
        server.stop()
