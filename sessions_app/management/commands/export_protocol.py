from __future__ import annotations

import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.openapi import openapi
from sessions_app.realtime import metrics
from sessions_app.realtime.export import PROTOCOL_VERSION, asyncapi, codes_markdown, configuration_markdown, json_schema
from sessions_app.realtime.pythontypes import python_types
from sessions_app.realtime.typescript import typescript
from sessions_app.realtime.validation import Verdict, check_asyncapi, check_json_schema, check_openapi

EXPORT_DIR = Path(settings.BASE_DIR) / "docs" / "protocol"
# The browser client library's types (tools/js-client), served with it as a static file.
TYPES_PATH = Path(settings.BASE_DIR) / "tools" / "js-client" / "src" / "protocol.d.ts"
# The Python client library's types (tools/python-client), committed inside its package.
PYTHON_TYPES_PATH = Path(settings.BASE_DIR) / "tools" / "python-client" / "src" / "tradesim" / "protocol.py"
# The small npm package that runs AsyncAPI's own parser (its node_modules is installed on first use).
ASYNCAPI_TOOL = Path(settings.BASE_DIR) / "tools" / "asyncapi"
# Every environment variable, from the settings' declarations (config/settings.py).
CONFIGURATION_PATH = Path(settings.BASE_DIR) / "docs" / "configuration.md"


def rendered_exports() -> dict[str, str]:
    def dump(document: dict) -> str:
        return json.dumps(document, indent=2, sort_keys=False) + "\n"

    return {
        "protocol.schema.json": dump(json_schema()),
        "asyncapi.json": dump(asyncapi()),
        "openapi.json": dump(openapi(PROTOCOL_VERSION)),
        "codes.md": codes_markdown(),
        "metrics.md": metrics.catalogue_markdown(),
        str(TYPES_PATH): typescript(json_schema()),
        str(PYTHON_TYPES_PATH): python_types(json_schema()),
        str(CONFIGURATION_PATH): configuration_markdown(),
    }


def validate_exports(exports: dict[str, str], *, required: bool) -> list[Verdict]:
    """Each published document checked by its own ecosystem's validator; `required` (CI) turns a
    missing validator into a failure instead of a skip."""
    return [
        check_openapi(json.loads(exports["openapi.json"]), required=required),
        check_json_schema(json.loads(exports["protocol.schema.json"]), required=required),
        check_asyncapi(json.loads(exports["asyncapi.json"]), ASYNCAPI_TOOL, required=required),
    ]


class Command(BaseCommand):
    help = (
        "Write the protocol's JSON Schema, AsyncAPI 3.0 and OpenAPI 3.1 documents, code tables and metrics "
        "catalogue to docs/protocol/, its TypeScript and Python types, and docs/configuration.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Fail if the committed files are stale or a validator (OpenAPI, JSON Schema, AsyncAPI) rejects one.",
        )

    def handle(self, *args: object, check: bool = False, **options: object) -> None:
        stale = []
        exports = rendered_exports()
        for name, text in exports.items():
            path = EXPORT_DIR / name  # an absolute name stays as it is
            current = path.read_text() if path.exists() else None
            if current == text:
                continue
            stale.append(name)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        rejected: list[str] = []
        if check:
            for verdict in validate_exports(exports, required=os.environ.get("CI", "").lower() == "true"):
                self.stdout.write(verdict.line)
                for detail in verdict.details:
                    self.stdout.write(f"  {detail}")
                if not verdict.passed:
                    rejected.append(verdict.validator)
        if check and stale:
            raise CommandError(f"stale protocol export: {', '.join(stale)}; run `python manage.py export_protocol`")
        if rejected:
            raise CommandError(f"protocol export rejected by {', '.join(rejected)} (see above)")
        self.stdout.write("protocol export " + ("is current" if not stale else "written: " + ", ".join(stale)))
