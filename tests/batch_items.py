"""A CSV's rows as a Step Functions Distributed Map hands them to the function: an ItemReader
with the header in the first row, then main.tf's ItemSelector, for the batch tests."""

from __future__ import annotations

import csv
from pathlib import Path


def csv_items(path: Path) -> list[dict]:
    """The file's data rows as an ItemReader with ``CSVHeaderLocation: FIRST_ROW`` gives them:
    objects keyed by the header, every value a string."""
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def wrapped(items: list[dict], first: int = 0) -> list[dict]:
    """main.tf's ItemSelector: each row with its index among the file's data rows."""
    return [{"index": first + number, "row": item} for number, item in enumerate(items)]
