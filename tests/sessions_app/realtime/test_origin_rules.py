"""Which browser origins may open the session socket."""

from __future__ import annotations

from django.test import override_settings

from sessions_app.realtime.origin import origin_allowed


@override_settings(ALLOWED_HOSTS=["trade.example.com"], WS_ALLOWED_ORIGINS=[])
def test_by_default_an_origin_must_name_an_allowed_host() -> None:
    assert origin_allowed("https://trade.example.com")
    assert not origin_allowed("https://evil.example")
    assert not origin_allowed("null")


@override_settings(ALLOWED_HOSTS=["localhost", "[::1]"], WS_ALLOWED_ORIGINS=[])
def test_an_ipv6_origin_is_matched_with_its_brackets_as_in_allowed_hosts() -> None:
    assert origin_allowed("http://[::1]:8000")
    assert origin_allowed("http://LOCALHOST:5173")
    assert not origin_allowed("http://[::2]:8000")


@override_settings(ALLOWED_HOSTS=["trade.example.com"], WS_ALLOWED_ORIGINS=["https://app.example.com/"])
def test_an_explicit_list_names_whole_origins() -> None:
    assert origin_allowed("https://app.example.com")
    assert not origin_allowed("http://app.example.com")
    assert not origin_allowed("https://trade.example.com")


@override_settings(WS_ALLOWED_ORIGINS=["*"])
def test_a_star_allows_any_origin() -> None:
    assert origin_allowed("https://anything.example")


def test_clients_without_an_origin_are_not_browsers_and_are_let_through() -> None:
    assert origin_allowed(None)
