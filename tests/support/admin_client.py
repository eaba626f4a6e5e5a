"""A browser-like client for the Django admin over real HTTP (cookies and CSRF)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request


class AdminClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def _csrf(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken")

    def get(self, path: str) -> str:
        with self.opener.open(self.base_url + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, fields: list[tuple[str, str]]) -> str:
        data = urllib.parse.urlencode([("csrfmiddlewaretoken", self._csrf()), *fields]).encode()
        request = urllib.request.Request(self.base_url + path, data=data, headers={"Referer": self.base_url + path})
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode()

    def login(self, username: str, password: str) -> None:
        self.get("/admin/login/")
        page = self.post("/admin/login/?next=/admin/", [("username", username), ("password", password)])
        assert "Log out" in page or "logout" in page, "admin login failed"

    def run_action(self, changelist: str, action: str, object_ids: list[str]) -> str:
        self.get(changelist)
        fields = [("action", action), ("index", "0")] + [("_selected_action", pk) for pk in object_ids]
        return self.post(changelist, fields)

    def search_ids(self, changelist: str, query: str) -> list[str]:
        page = self.get(f"{changelist}?q={urllib.parse.quote(query)}")
        return re.findall(r'name="_selected_action" value="([^"]+)"', page)
