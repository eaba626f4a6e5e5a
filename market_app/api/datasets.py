"""REST for datasets of bars (docs/datasets.md): list, upload, read and delete, scoped to the user.

An upload is the file itself as the body (`Content-Type: text/csv`, or `application/vnd.apache.parquet`
for Parquet), its name in the query: it is read up to DATASET_MAX_BYTES, checked whole and stored in one
transaction (market_app.datasets).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from market_app import datasets
from market_app.errors import DatasetCode
from market_app.http_messages import DatasetPath, DatasetSymbol, DatasetUploadQuery, DatasetView
from market_app.models import Dataset
from sessions_app.api.authentication import user_id_of
from sessions_app.api.parsing import parse_path, parse_query
from sessions_app.errors import HttpCode
from sessions_app.realtime.errors import ProtocolError
from sessions_app.realtime.message_base import epoch_ms

CSV_TYPES = ("text/csv", "text/plain", "application/csv")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet")


def dataset_view(dataset: Dataset, *, user_id: int) -> DatasetView:
    return DatasetView(
        datasetId=str(dataset.pk),
        name=dataset.name,
        mine=dataset.owner_id == user_id,
        shared=dataset.shared,
        source=dataset.source,
        barCount=dataset.bar_count,
        firstAt=epoch_ms(dataset.first_at) if dataset.first_at else 0,
        lastAt=epoch_ms(dataset.last_at) if dataset.last_at else 0,
        createdAt=epoch_ms(dataset.created_at),
        symbols=[DatasetSymbol.model_validate(symbol) for symbol in dataset.symbols],
    )


def bar_file_body(request: Request) -> str | bytes:
    """The request's body as `datasets.parse_dataset` takes it: a CSV's text, or a Parquet file's bytes,
    of at most DATASET_MAX_BYTES."""
    media = request.content_type.split(";")[0].strip().lower()
    if media not in CSV_TYPES + PARQUET_TYPES:
        raise ProtocolError(
            HttpCode.UNSUPPORTED_MEDIA_TYPE,
            "send the bar file as the body, Content-Type: text/csv or application/vnd.apache.parquet",
        )
    limit = settings.DATASET_MAX_BYTES
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ProtocolError(DatasetCode.DATASET_TOO_LARGE, f"a bar file is at most {limit} bytes")
    stream = request.stream
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise ProtocolError(DatasetCode.DATASET_TOO_LARGE, f"a bar file is at most {limit} bytes")
    if media in PARQUET_TYPES:
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ProtocolError(DatasetCode.INVALID_DATASET, f"the file is not UTF-8 text: {error}") from None


class DatasetListView(APIView):
    def get(self, request: Request) -> Response:
        user_id = user_id_of(request)
        visible = datasets.datasets_visible_to(user_id=user_id)
        return Response([dataset_view(d, user_id=user_id).model_dump(mode="json") for d in visible])

    def post(self, request: Request) -> Response:
        query = parse_query(DatasetUploadQuery, request)
        user_id = user_id_of(request)
        dataset = datasets.dataset_import(owner_id=user_id, name=query.name, content=bar_file_body(request))
        return Response(dataset_view(dataset, user_id=user_id).model_dump(mode="json"), status=201)


class DatasetDetailView(APIView):
    def get(self, request: Request, dataset_id: str) -> Response:
        path = parse_path(DatasetPath, datasetId=dataset_id)
        user_id = user_id_of(request)
        dataset = datasets.dataset_for_user(user_id=user_id, dataset_id=int(path.datasetId))
        return Response(dataset_view(dataset, user_id=user_id).model_dump(mode="json"))

    def delete(self, request: Request, dataset_id: str) -> Response:
        path = parse_path(DatasetPath, datasetId=dataset_id)
        datasets.dataset_delete(user_id=user_id_of(request), dataset_id=int(path.datasetId))
        return Response(status=204)
