"""A batch of CSV rows from a Step Functions Distributed Map, checked row by row and answered.

Step Functions' ItemBatcher sends ``{"Items": [item, ...], "BatchInput": {...}}``; an ItemReader
on a CSV with its header in the first row makes each item an object keyed by the header, every
value a string. main.tf's state machine wraps each one as ``{"index": <the row's place among the
file's data rows, from 0>, "row": {...}}`` so that every answer says which row it is; a bare row
is answered with its place in the batch. Each row is checked by the API's rules
(:func:`src.validation.value_of`); one bad row is answered with its reason and never fails
the batch. Only an event that is not a batch at all is refused (:class:`BatchEventError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from src import config
from src.validation import check_number, value_of

ITEMS = "Items"
ROW_KEYS = ("index", "row")  # main.tf's ItemSelector: each item's place in the file, and its row


class BatchEventError(ValueError):
    """An event with an ``Items`` key that is not a batch of rows: nothing in it can be answered."""


def is_batch_event(event) -> bool:
    """A Distributed Map's batch (``Items``, a list), not an HTTP event."""
    return isinstance(event, dict) and ITEMS in event and "requestContext" not in event


@dataclass
class Batch:
    """The batch's rows: each item's index, the valid rows' features, and the others' reasons."""

    indexes: list
    valid: list[int] = field(default_factory=list)  # positions in the batch of the scored rows
    features: list[list[float]] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # position -> why it was not scored


def _value(name: str, value) -> tuple[float | None, str | None]:
    if isinstance(value, str):
        parsed, refusal = value_of(name, value)
        return (None, refusal[1]) if refusal else (parsed, None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        refusal = check_number(name, float(value))
        return (None, refusal[1]) if refusal else (float(value), None)
    if value is None:
        return None, f"{name} is missing"
    return None, f"{name} is not a number ({type(value).__name__})"


def row_values(row) -> tuple[list[float] | None, str | None]:
    """A row's feature values in the model's order, or the reason it cannot be scored."""
    if not isinstance(row, dict):
        return None, f"is not an object keyed by the CSV header (the features {', '.join(config.FEATURE_NAMES)})"
    values = []
    for name in config.FEATURE_NAMES:
        if name not in row:
            return None, f"has no column {name}"
        value, reason = _value(name, row[name])
        if reason:
            return None, reason
        values.append(value)
    return values, None


def _unwrapped(item, position: int) -> tuple[object, object]:
    """(index, row) of an item: main.tf's wrapped item, or a bare row answered by its position."""
    if isinstance(item, dict) and set(item) == set(ROW_KEYS) and isinstance(item["index"], int):
        return item["index"], item["row"]
    return position, item


def read(event: dict) -> Batch:
    """The batch's rows, checked; raises :class:`BatchEventError` when ``Items`` is not a list."""
    items = event.get(ITEMS)
    if not isinstance(items, list):
        raise BatchEventError(
            f"'{ITEMS}' must be a list of CSV rows (objects keyed by the header), as a Distributed Map's "
            f"ItemBatcher sends them; got {type(items).__name__}"
        )
    batch = Batch(indexes=[])
    for position, item in enumerate(items):
        index, row = _unwrapped(item, position)
        batch.indexes.append(index)
        values, reason = row_values(row)
        if reason:
            batch.reasons[position] = reason
        else:
            batch.valid.append(position)
            batch.features.append(values)
    return batch


def answer(batch: Batch, probabilities, model: str) -> dict:
    """Each item's answer in order (its index, and its label and probability or the reason it was
    not scored), the counts and the model, for the Map Run's results."""
    scored = dict(zip(batch.valid, probabilities, strict=True))
    rows = []
    for position, index in enumerate(batch.indexes):
        if position in scored:
            probability = float(scored[position])
            label = int(probability >= config.DECISION_THRESHOLD)
            rows.append({"index": index, "label": label, "probability": probability})
        else:
            rows.append({"index": index, "error": batch.reasons[position]})
    return {"rows": rows, "scored": len(batch.valid), "rejected": len(batch.reasons), "model": model}
