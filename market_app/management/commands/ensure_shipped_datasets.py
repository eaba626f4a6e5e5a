"""Import the datasets shipped with the service (docs/datasets.md) unless they are there already."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from market_app import datasets


class Command(BaseCommand):
    help = "Import the shipped datasets of bars that are missing, shared with every user (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        made = datasets.datasets_ensure_shipped()
        for dataset in made:
            self.stdout.write(f"dataset {dataset.pk} {dataset.name!r}: {dataset.bar_count} bars")
        if not made:
            self.stdout.write("the shipped datasets are there already")
