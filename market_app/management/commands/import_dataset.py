"""Store a CSV of bars as an operator's dataset (docs/datasets.md), checked whole first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from market_app import datasets
from sessions_app.realtime.errors import ProtocolError


class Command(BaseCommand):
    help = "Import a CSV of bars as an operator's dataset (no owner); --shared lets every user replay it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="a CSV of bars (docs/datasets.md), a .csv.gz, or a Parquet file")
        parser.add_argument("--name", required=True, help="the dataset's name (unique among the operators')")
        parser.add_argument("--shared", action="store_true", help="every user may list and replay it")
        parser.add_argument("--source", default="", help="where the bars come from, and their license")

    def handle(self, *args: object, **options: Any) -> None:
        path: Path = options["file"]
        try:
            content = datasets.read_bar_file(path)
        except (OSError, ProtocolError) as error:
            raise CommandError(f"{path}: {error}") from None
        try:
            dataset = datasets.dataset_import(
                owner_id=None, name=options["name"], content=content, shared=options["shared"], source=options["source"]
            )
        except ProtocolError as error:
            raise CommandError(f"{path}: {error.message}") from None
        self.stdout.write(f"dataset {dataset.pk} {dataset.name!r}: {dataset.bar_count} bars")
