"""one_or_none (sessions_app.rows): a lookup by a unique key, without the ordering first() adds."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.rows import one_or_none

pytestmark = pytest.mark.django_db


def test_the_row_of_a_unique_key_is_returned_without_an_order_by() -> None:
    user = get_user_model().objects.create_user(username="rows-1")

    with CaptureQueriesContext(connection) as queries:
        found = one_or_none(get_user_model().objects.filter(username="rows-1"))

    assert found == user
    assert "ORDER BY" not in queries.captured_queries[0]["sql"]


def test_no_row_is_none() -> None:
    assert one_or_none(get_user_model().objects.filter(username="nobody")) is None
