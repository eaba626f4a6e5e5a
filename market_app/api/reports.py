"""REST for a replay run's report (docs/replay.md, "The report"): JSON, or one self-contained HTML page."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from market_app.http_messages import ReportPath, ReportQuery
from market_app.report_page import report_html
from market_app.run_report import run_report
from sessions_app.api.authentication import user_id_of
from sessions_app.api.parsing import parse_path, parse_query


class ReportView(APIView):
    """Errors are JSON whatever was asked for, so DRF's own `format`/Accept negotiation is bypassed."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        return JSONRenderer(), JSONRenderer.media_type

    def get(self, request: Request, simulator_id: str) -> Response | HttpResponse:
        path = parse_path(ReportPath, simulatorId=simulator_id)
        query = parse_query(ReportQuery, request)
        report = run_report(
            user_id=user_id_of(request), simulator_id=uuid.UUID(path.simulatorId), benchmark=query.benchmark
        )
        if query.format == "html":
            return HttpResponse(report_html(report), content_type="text/html; charset=utf-8")
        return Response(report.model_dump(mode="json"))
