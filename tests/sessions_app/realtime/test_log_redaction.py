"""Secrets never reach a log line: tokens, session tokens and socket tickets are redacted, names kept."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from sessions_app.realtime.logs import ContextFilter, JsonFormatter, PlainFormatter, redact

SECRET = "uOvrM7kSyikPWA8J04B-cHxDgT0bmnqAwkmvg9ic_BE"


@pytest.mark.parametrize(
    "line",
    [
        f"GET /ws/session/?ticket={SECRET}&deviceId=dev-1",
        f"GET /ws/session/?token={SECRET}&deviceId=dev-1",
        f'{{"ticket": "{SECRET}", "deviceId": "dev-1"}}',
        f'{{"sessionToken": "{SECRET}"}}',
        f"Authorization: Bearer {SECRET}",
        f"ticket: {SECRET}",
    ],
)
def test_a_secret_in_a_line_is_redacted_and_its_name_kept(line: str) -> None:
    redacted = redact(line)
    assert SECRET not in redacted and "[redacted]" in redacted
    assert "dev-1" in redacted or "dev-1" not in line


def test_a_ticket_in_a_records_arguments_or_exception_is_redacted_in_every_format() -> None:
    logger = logging.getLogger("tests.redaction")
    try:
        raise ValueError(f"bad query ticket={SECRET}")
    except ValueError:
        record = logger.makeRecord(
            logger.name, logging.WARNING, __file__, 1, "refused %s", (f"ticket={SECRET}",), sys.exc_info()
        )
    ContextFilter().filter(record)
    json_line = JsonFormatter().format(record)
    plain_line = PlainFormatter("%(message)s").format(record)
    assert SECRET not in json_line and SECRET not in plain_line
    assert json.loads(json_line)["message"] == "refused ticket=[redacted]"
