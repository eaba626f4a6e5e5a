"""An operator uploads a dataset in the admin or with `manage.py import_dataset`, shared with every
user, or sees the file's first bad line and nothing stored (docs/datasets.md)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from market_app.models import Dataset, DatasetBar

pytestmark = [pytest.mark.django_db]

BARS = (
    "timestamp,symbol,open,high,low,close,volume\n"
    "2026-01-05T14:30:00Z,AAPL,190.12,190.43,190.09,190.32,247065\n"
    "2026-01-05T14:31:00Z,AAPL,190.32,190.74,190.28,190.50,220262\n"
)


@pytest.fixture
def operator() -> Client:
    admin = get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-password-1")
    client = Client()
    client.force_login(admin)
    return client


def add(client: Client, text: str) -> object:
    upload = SimpleUploadedFile("bars.csv", text.encode(), content_type="text/csv")
    form = {"name": "Opening minutes", "shared": "on", "source": "recorded by us, CC0", "file": upload}
    return client.post("/admin/market_app/dataset/add/", form)


def test_an_operator_uploads_a_shared_dataset_with_no_owner(operator: Client) -> None:
    assert operator.get("/admin/market_app/dataset/add/").status_code == 200
    response = add(operator, BARS)
    assert response.status_code == 302, response.content[:2000]
    dataset = Dataset.objects.get()
    assert (dataset.name, dataset.owner_id, dataset.shared, dataset.bar_count) == ("Opening minutes", None, True, 2)
    assert DatasetBar.objects.filter(dataset=dataset).count() == 2
    assert operator.get(f"/admin/market_app/dataset/{dataset.pk}/change/").status_code == 200


def test_a_bad_file_shows_its_line_and_stores_nothing(operator: Client) -> None:
    response = add(operator, BARS + "2026-01-05T14:32:00Z,AAPL,1,1,2,1,5\n")
    assert response.status_code == 200
    assert b"line 4: high 1 is below low 2" in response.content
    assert not Dataset.objects.exists() and not DatasetBar.objects.exists()


def test_manage_py_import_dataset_stores_an_operators_dataset_or_names_the_bad_line(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(BARS)
    bad.write_text(BARS + "2026-01-05T14:32:00Z,AAPL,1,1,2,1,5\n")
    out = io.StringIO()
    call_command("import_dataset", str(good), "--name", "shipped", "--shared", "--source", "ours", stdout=out)
    assert "2 bars" in out.getvalue()
    with pytest.raises(CommandError, match="line 4: high 1 is below low 2"):
        call_command("import_dataset", str(bad), "--name", "broken")
    assert [(d.name, d.owner_id, d.shared) for d in Dataset.objects.all()] == [("shipped", None, True)]


def test_the_shipped_dataset_imports_whole_once_and_names_its_source() -> None:
    out = io.StringIO()
    call_command("ensure_shipped_datasets", stdout=out)
    call_command("ensure_shipped_datasets", stdout=out)
    assert "10062 bars" in out.getvalue() and "there already" in out.getvalue()
    [shipped] = Dataset.objects.all()
    assert (shipped.owner_id, shipped.shared, shipped.bar_count) == (None, True, 10_062)
    assert "arch" in shipped.source and "NCSA" in shipped.source
    assert [(s["symbol"], s["bars"]) for s in shipped.symbols] == [("IXIC", 5031), ("SPX", 5031)]
    assert (shipped.first_at.date().isoformat(), shipped.last_at.date().isoformat()) == ("1999-01-04", "2018-12-31")
