"""The published documents pass their ecosystems' own validators, and each validator can fail."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from sessions_app.management.commands import export_protocol
from sessions_app.management.commands.export_protocol import ASYNCAPI_TOOL, EXPORT_DIR
from sessions_app.realtime.validation import Verdict, check_asyncapi, check_json_schema, check_openapi
from tests.support.production import IN_CI


def committed(name: str) -> dict[str, Any]:
    return json.loads((EXPORT_DIR / name).read_text())


def require_node() -> None:
    """AsyncAPI's parser runs on Node: fail under CI=true when it is missing, else skip."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        if IN_CI:
            pytest.fail(f"the AsyncAPI parser needs {' and '.join(missing)}; CI=true makes it mandatory")
        pytest.skip(f"{' and '.join(missing)} not found: the AsyncAPI parser cannot run")


def test_the_committed_openapi_document_passes_openapi_spec_validator() -> None:
    verdict = check_openapi(committed("openapi.json"), required=True)
    assert (verdict.passed, verdict.line) == (True, "openapi-spec-validator: valid"), verdict.details


def test_openapi_spec_validator_rejects_a_null_default_on_a_field_that_cannot_be_null() -> None:
    document = copy.deepcopy(committed("openapi.json"))
    document["components"]["schemas"]["ErrorMessage"]["properties"]["retryAfterMs"]["default"] = None
    verdict = check_openapi(document, required=True)
    assert not verdict.passed
    assert verdict.summary == "invalid, 1 error"
    assert verdict.details == ("None is not of type 'integer'",)


def test_the_committed_json_schema_passes_the_metaschema_of_its_declared_draft() -> None:
    verdict = check_json_schema(committed("protocol.schema.json"), required=True)
    assert (verdict.passed, verdict.line) == (True, "JSON Schema metaschema (Draft202012Validator): valid")


def test_the_metaschema_check_rejects_a_malformed_keyword() -> None:
    document = copy.deepcopy(committed("protocol.schema.json"))
    document["$defs"]["ErrorMessage"]["required"] = "code"
    verdict = check_json_schema(document, required=True)
    assert not verdict.passed
    assert verdict.details == ("/$defs/ErrorMessage/required: 'code' is not of type 'array'",)


def test_the_json_schema_check_rejects_a_default_that_its_own_field_forbids() -> None:
    document = copy.deepcopy(committed("protocol.schema.json"))
    document["$defs"]["ErrorMessage"]["properties"]["retryAfterMs"]["default"] = None
    verdict = check_json_schema(document, required=True)
    assert not verdict.passed
    assert verdict.details == ("/$defs/ErrorMessage/properties/retryAfterMs/default: None is not of type 'integer'",)


def test_the_committed_asyncapi_document_passes_asyncapis_own_parser() -> None:
    require_node()
    verdict = check_asyncapi(committed("asyncapi.json"), ASYNCAPI_TOOL, required=True)
    assert verdict.passed, verdict.details
    assert verdict.summary.startswith("valid, 0 warnings"), verdict.details


def test_asyncapis_parser_rejects_a_channel_message_whose_reference_leads_nowhere() -> None:
    require_node()
    document = copy.deepcopy(committed("asyncapi.json"))
    del document["components"]["messages"]["session_info"]
    verdict = check_asyncapi(document, ASYNCAPI_TOOL, required=True)
    assert not verdict.passed
    assert verdict.summary.startswith("invalid, "), verdict.details
    assert any(line.startswith("error: ") and "session_info" in line for line in verdict.details), verdict.details


def test_a_missing_validator_is_a_skip_only_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    document = committed("asyncapi.json")
    skipped = check_asyncapi(document, ASYNCAPI_TOOL, required=False)
    assert (skipped.passed, skipped.line) == (True, "AsyncAPI parser: skipped: node not found")
    failed = check_asyncapi(document, ASYNCAPI_TOOL, required=True)
    assert not failed.passed and "CI=true" in failed.summary


def test_the_check_fails_and_names_the_validator_when_a_current_export_is_rejected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exports = export_protocol.rendered_exports()
    broken = json.loads(exports["openapi.json"])
    broken["components"]["schemas"]["ErrorMessage"]["properties"]["details"]["default"] = None
    exports["openapi.json"] = json.dumps(broken, indent=2) + "\n"
    for name, text in exports.items():
        if not Path(name).is_absolute():
            (tmp_path / name).write_text(text)
    monkeypatch.setattr(export_protocol, "rendered_exports", lambda: exports)
    monkeypatch.setattr(export_protocol, "EXPORT_DIR", tmp_path)
    # The parser has tests of its own above; this one is about the command.
    unused = Verdict("AsyncAPI parser", True, "skipped: not this test's subject")
    monkeypatch.setattr(export_protocol, "check_asyncapi", lambda *args, **kwargs: unused)
    with pytest.raises(CommandError, match="rejected by openapi-spec-validator"):
        call_command("export_protocol", "--check")
    out = capsys.readouterr().out
    assert "openapi-spec-validator: invalid, 1 error\n  None is not of type 'array'" in out
    assert "JSON Schema metaschema (Draft202012Validator): valid" in out
