"""Origins allowed to call the HTTP API from another origin (django-cors-headers).

Unset, CORS_ALLOWED_ORIGINS is what the socket's Origin check accepts
(sessions_app/realtime/origin.py): WS_ALLOWED_ORIGINS, or, when that is unset too, any origin
whose host is in ALLOWED_HOSTS. That last rule is Django's host validation, which
django-cors-headers cannot express; `host_origin_patterns` spells it as the regexes it takes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SCHEME = r"[a-z][a-z0-9+.-]*://"
_PORT = r"(:\d+)?"


def host_origin_patterns(allowed_hosts: Sequence[str]) -> list[str]:
    """Regexes matching the origins whose host Django's validate_host accepts for `allowed_hosts`:
    `*` any host, `.example.com` the domain and its subdomains, anything else that host exactly."""
    patterns = []
    for host in allowed_hosts:
        host = host.lower()
        if host == "*":
            host_pattern = r"[^/]+"
        elif host.startswith("."):
            host_pattern = rf"([^/:]+\.)?{re.escape(host[1:])}"
        else:
            host_pattern = re.escape(host)
        patterns.append(rf"(?i)^{_SCHEME}({host_pattern}){_PORT}$")
    return patterns
