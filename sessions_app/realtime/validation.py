"""The published documents checked by their own ecosystems' validators: OpenAPI by
openapi-spec-validator, the JSON Schema against its draft's metaschema (jsonschema), AsyncAPI
by AsyncAPI's parser (@asyncapi/parser on Node, from the small package in tools/asyncapi).
`manage.py export_protocol --check` runs all three and prints each verdict.

openapi-spec-validator, jsonschema and Node are development tools: where one is missing the verdict says
so and counts as skipped, unless `required` (CI) makes it a failure."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NPM_CI = ("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")


@dataclass(frozen=True)
class Verdict:
    validator: str
    passed: bool
    summary: str  # "valid", "valid, 2 warnings", "3 errors", "skipped: ..."
    details: tuple[str, ...] = ()

    @property
    def line(self) -> str:
        return f"{self.validator}: {self.summary}"


def _missing(validator: str, what: str, *, required: bool) -> Verdict:
    if required:
        return Verdict(validator, False, f"FAILED: {what}; CI=true makes this check mandatory")
    return Verdict(validator, True, f"skipped: {what}")


def _errors_verdict(validator: str, errors: list[str]) -> Verdict:
    if not errors:
        return Verdict(validator, True, "valid")
    return Verdict(validator, False, f"invalid, {len(errors)} error{'s' if len(errors) != 1 else ''}", tuple(errors))


def check_openapi(document: dict[str, Any], *, required: bool) -> Verdict:
    name = "openapi-spec-validator"
    try:
        from openapi_spec_validator.shortcuts import get_validator_cls
        from openapi_spec_validator.validation.exceptions import ValidatorDetectError
    except ImportError:
        return _missing(name, "not installed (pip install -r requirements-dev.txt)", required=required)
    try:
        validator_class = get_validator_cls(document)
    except ValidatorDetectError:
        return _errors_verdict(name, ["no supported `openapi` version field"])
    errors = [_describe(error) for error in validator_class(document).iter_errors()]
    return _errors_verdict(name, errors)


def check_json_schema(document: dict[str, Any], *, required: bool) -> Verdict:
    """The schema against the metaschema of the draft its `$schema` declares; then every
    `default` against the subschema it sits in (the metaschema allows any value there)."""
    name = "JSON Schema metaschema"
    try:
        from jsonschema.validators import validator_for
    except ImportError:
        return _missing(name, "jsonschema not installed (pip install -r requirements-dev.txt)", required=required)
    if "$schema" not in document:
        return _errors_verdict(name, ["no `$schema`: the draft is not declared"])
    validator_class = validator_for(document)
    errors = [_describe(error) for error in validator_class(validator_class.META_SCHEMA).iter_errors(document)]
    if not errors:
        root = validator_class(document)
        for path, subschema in _defaults(document, ""):
            errors += [
                f"{path}/default: {error.message}"
                for error in root.evolve(schema=subschema).iter_errors(subschema["default"])
            ]
    verdict = _errors_verdict(name, errors)
    return Verdict(f"{name} ({validator_class.__name__})", verdict.passed, verdict.summary, verdict.details)


def check_asyncapi(document: dict[str, Any], tool_dir: Path, *, required: bool) -> Verdict:
    """Runs tools/asyncapi/parse.mjs on the document (installing its package first when needed)."""
    name = "AsyncAPI parser"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        return _missing(name, "node not found", required=required)
    if not (tool_dir / "node_modules" / "@asyncapi" / "parser").is_dir():
        if npm is None:
            return _missing(name, "npm not found (needed once to install tools/asyncapi)", required=required)
        installed = subprocess.run(
            [npm, *NPM_CI[1:]], cwd=tool_dir, capture_output=True, text=True, timeout=600, check=False
        )
        if installed.returncode != 0:
            output = (installed.stdout + installed.stderr).strip().splitlines()
            return Verdict(name, False, f"FAILED: `{' '.join(NPM_CI)}` in {tool_dir} failed", tuple(output[-20:]))
    ran = subprocess.run(
        [node, str(tool_dir / "parse.mjs")],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = ran.stdout.strip().splitlines()
    # The script's last line is its verdict ("AsyncAPI parser: valid, 2 warnings"); the rest are diagnostics.
    if lines and lines[-1].startswith(f"{name}: "):
        summary, details = lines[-1].removeprefix(f"{name}: "), lines[:-1]
    else:
        summary, details = f"FAILED: the parser script exited {ran.returncode}", lines
    details += ran.stderr.strip().splitlines()
    return Verdict(name, ran.returncode == 0, summary, tuple(details))


def _describe(error: Any) -> str:
    path = "/".join(str(part) for part in getattr(error, "absolute_path", ()))
    return f"/{path}: {error.message}" if path else error.message


# Where a JSON Schema keeps subschemas: maps of them, lists of them, and single ones.
_SCHEMA_MAPS = ("$defs", "definitions", "properties", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")


def _defaults(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema that declares a `default`, with its JSON pointer."""
    if not isinstance(schema, dict):
        return
    if "default" in schema:
        yield path, schema
    for key in _SCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield from _defaults(sub, f"{path}/{key}/{name}")
    for key in _SCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key, [])):
            yield from _defaults(sub, f"{path}/{key}/{index}")
    for key in _SCHEMA_ONE:
        if key in schema:
            yield from _defaults(schema[key], f"{path}/{key}")
