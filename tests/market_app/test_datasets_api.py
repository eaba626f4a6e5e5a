"""/api/market/datasets/: a user uploads a CSV of bars, checked whole before anything is stored,
lists their own datasets and the shared ones, reads and deletes their own (docs/datasets.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from market_app import datasets
from market_app.models import Dataset, DatasetBar
from tests.support.factories import issue_token, make_user

pytestmark = [pytest.mark.django_db]

HEADER = "timestamp,symbol,open,high,low,close,volume\n"
GOOD = HEADER + (
    "2026-01-05T14:30:00Z,AAPL,190.12,190.43,190.09,190.32,247065\n"
    "2026-01-05T14:30:00Z,MSFT,421.35,421.63,421.08,421.16,90066\n"
    "2026-01-05T14:31:00Z,AAPL,190.32,190.74,190.28,190.50,220262\n"
)
MINUTE_MS = 60_000
START_MS = int(datetime(2026, 1, 5, 14, 30, tzinfo=UTC).timestamp() * 1000)


def client_of(user: object | None = None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user).token}")  # type: ignore[arg-type]
    return client


def upload(client: APIClient, text: str, name: str = "my minutes", content_type: str = "text/csv") -> object:
    return client.post(f"/api/market/datasets/?name={name}", data=text.encode(), content_type=content_type)


def test_an_upload_stores_every_bar_and_answers_its_symbols_and_ranges() -> None:
    client = client_of()
    response = upload(client, GOOD)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "my minutes" and body["mine"] is True and body["shared"] is False
    assert body["barCount"] == 3
    assert (body["firstAt"], body["lastAt"]) == (START_MS, START_MS + MINUTE_MS)
    assert body["symbols"] == [
        {"symbol": "AAPL", "bars": 2, "firstAt": START_MS, "lastAt": START_MS + MINUTE_MS},
        {"symbol": "MSFT", "bars": 1, "firstAt": START_MS, "lastAt": START_MS},
    ]
    stored = DatasetBar.objects.filter(dataset_id=int(body["datasetId"])).order_by("at", "symbol")
    assert [(bar.symbol, str(bar.close), bar.volume) for bar in stored] == [
        ("AAPL", "190.32000000", 247065),
        ("MSFT", "421.16000000", 90066),
        ("AAPL", "190.50000000", 220262),
    ]
    assert client.get(f"/api/market/datasets/{body['datasetId']}/").json() == body


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD + "2026-01-05T14:32:00Z,AAPL,1,1,2,1,100\n", "line 5.high"),
        (GOOD + "yesterday,AAPL,1,1,1,1,1\n", "line 5.timestamp"),
        (GOOD + "2026-01-05T14:32:00Z,AAPL,1,1,1,1,-3\n", "line 5.volume"),
        (GOOD + "2026-01-05T14:32:00Z,aapl,1,1,1,1,1\n", "line 5.symbol"),
        (GOOD + "2026-01-05T14:31+00:00,AAPL,1,1,1,1,1\n", "line 5.timestamp"),
        ("timestamp,symbol,price\n", "line 1"),
        (HEADER, "file"),
    ],
)
def test_a_bad_file_is_refused_naming_its_line_and_field_and_nothing_is_stored(text: str, field: str) -> None:
    response = upload(client_of(), text)
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["type"] == "error" and body["code"] == "invalid_dataset"
    assert body["details"][0]["field"] == field
    assert not Dataset.objects.exists() and not DatasetBar.objects.exists()


def test_a_file_too_large_or_with_too_many_bars_is_refused_with_413() -> None:
    client = client_of()
    with override_settings(DATASET_MAX_BYTES=len(GOOD) - 1):
        too_long = upload(client, GOOD)
    with override_settings(DATASET_MAX_BARS=2):
        too_many = upload(client, GOOD)
    assert (too_long.status_code, too_long.json()["code"]) == (413, "dataset_too_large")
    assert (too_many.status_code, too_many.json()["code"]) == (413, "dataset_too_large")
    assert not Dataset.objects.exists()


def test_an_upload_needs_csv_a_name_of_its_own_and_room() -> None:
    client = client_of()
    assert upload(client, GOOD, content_type="application/json").json()["code"] == "unsupported_media_type"
    assert client.post("/api/market/datasets/", data=GOOD.encode(), content_type="text/csv").status_code == 400
    assert upload(client, GOOD).status_code == 201
    taken = upload(client, GOOD)
    assert (taken.status_code, taken.json()["code"]) == (409, "dataset_name_taken")
    with override_settings(DATASETS_PER_USER=1):
        full = upload(client, GOOD, name="another")
    assert (full.status_code, full.json()["code"]) == (409, "dataset_limit")
    assert Dataset.objects.count() == 1


def test_a_user_sees_their_own_and_the_shared_datasets_and_deletes_only_their_own() -> None:
    owner, other = make_user(), make_user()
    mine = datasets.dataset_import(owner_id=owner.pk, name="mine", content=GOOD)
    theirs = datasets.dataset_import(owner_id=other.pk, name="theirs", content=GOOD)
    shipped = datasets.dataset_import(owner_id=None, name="shipped", content=GOOD, shared=True, source="a package")
    client = client_of(owner)
    listed = client.get("/api/market/datasets/").json()
    assert [(d["name"], d["mine"], d["shared"]) for d in listed] == [("mine", True, False), ("shipped", False, True)]
    assert client.get(f"/api/market/datasets/{theirs.pk}/").json()["code"] == "unknown_dataset"
    assert client.delete(f"/api/market/datasets/{shipped.pk}/").status_code == 404
    assert client.delete(f"/api/market/datasets/{theirs.pk}/").status_code == 404
    assert client.get("/api/market/datasets/not-a-number/").status_code == 400
    assert client.delete(f"/api/market/datasets/{mine.pk}/").status_code == 204
    assert not DatasetBar.objects.filter(dataset_id=mine.pk).exists()
    assert set(Dataset.objects.values_list("name", flat=True)) == {"theirs", "shipped"}


def parquet_of(rows: list[dict[str, object]], **types: object) -> bytes:
    """A Parquet file of `rows` (pyarrow infers the column types unless `types` names some)."""
    import io

    import pyarrow
    import pyarrow.parquet

    columns = {name: [row[name] for row in rows] for name in rows[0]}
    table = pyarrow.table(
        {name: pyarrow.array(values, type=types.get(name)) for name, values in columns.items()}  # type: ignore[arg-type]
    )
    out = io.BytesIO()
    pyarrow.parquet.write_table(table, out)
    return out.getvalue()


PARQUET_ROWS: list[dict[str, object]] = [
    {"timestamp": datetime(2026, 1, 5, 14, 30, tzinfo=UTC), "symbol": "AAPL", "open": 190.12, "high": 190.43,
     "low": 190.09, "close": 190.32, "volume": 247065},
    {"timestamp": datetime(2026, 1, 5, 14, 30, tzinfo=UTC), "symbol": "MSFT", "open": 421.35, "high": 421.63,
     "low": 421.08, "close": 421.16, "volume": 90066.0},
    {"timestamp": datetime(2026, 1, 5, 14, 31, tzinfo=UTC), "symbol": "AAPL", "open": 190.32, "high": 190.74,
     "low": 190.28, "close": 190.50, "volume": 220262},
]  # fmt: skip


def test_a_parquet_file_is_stored_as_its_csv_would_be() -> None:
    client = client_of()
    response = client.post(
        "/api/market/datasets/?name=parquet",
        data=parquet_of(PARQUET_ROWS),
        content_type="application/vnd.apache.parquet",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["barCount"] == 3 and (body["firstAt"], body["lastAt"]) == (START_MS, START_MS + MINUTE_MS)
    stored = DatasetBar.objects.filter(dataset_id=int(body["datasetId"])).order_by("at", "symbol")
    assert [(bar.symbol, str(bar.close), bar.volume) for bar in stored] == [
        ("AAPL", "190.32000000", 247065),
        ("MSFT", "421.16000000", 90066),
        ("AAPL", "190.50000000", 220262),
    ]


def test_a_bad_parquet_row_is_named_by_its_row_and_field_and_nothing_is_stored() -> None:
    client = client_of()
    rows = [dict(row) for row in PARQUET_ROWS]
    rows[1]["high"] = 400.0  # below its low
    bad = client.post(
        "/api/market/datasets/?name=bad", data=parquet_of(rows), content_type="application/vnd.apache.parquet"
    )
    garbage = client.post(
        "/api/market/datasets/?name=junk", data=b"PAR1 not really", content_type="application/vnd.apache.parquet"
    )
    columns = client.post(
        "/api/market/datasets/?name=cols",
        data=parquet_of([{"when": "2026-01-05", "symbol": "AAPL"}]),
        content_type="application/vnd.apache.parquet",
    )

    assert bad.status_code == 422 and bad.json()["code"] == "invalid_dataset"
    assert bad.json()["details"][0]["field"] == "row 2.high"
    assert garbage.status_code == 422 and "Parquet" in garbage.json()["message"]
    assert columns.status_code == 422 and "columns must be exactly" in columns.json()["message"]
    assert not Dataset.objects.exists()
