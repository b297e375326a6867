"""Turning a request body into a feature matrix, or a 4xx that says what was expected.

Python, NumPy and orjson: the local BentoML service and the AWS Lambda handler run the same
checks, and tests can exercise every rule without a server. orjson parses the body (about twice
as fast as the standard library); a body it refuses is parsed again by the standard library,
whose answer (an error, or a value for what orjson alone refuses: a BOM, a lone surrogate, NaN,
Infinity, an integer too large for a double) decides as it always has. The tutorial's service handed
whatever ``np.array`` made of the body to the model, which answered a 1-D row with a 60 s timeout
and other malformed bodies with a 500 or a silent 200.
"""

from __future__ import annotations

import json
import math

import numpy as np
import orjson

from src import config

EXPECTED = (
    f"expected a JSON 2-D array of numbers with {config.N_FEATURES} columns "
    f"({', '.join(config.FEATURE_NAMES)}), e.g. {json.dumps(config.EXAMPLE_ROWS)}"
)
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the largest value a feature may take (float32)


# A refusal of one value: (the kind a summary counts it under, the reason given for it).
Refusal = tuple[str, str]


def check_number(name: str, value: float) -> Refusal | None:
    """Why ``value`` may not be feature ``name``'s, or None: finite, and within float32."""
    if not math.isfinite(value):
        return "not finite", f"{name} is NaN or infinite; values must be finite"
    if abs(value) > FLOAT32_MAX:
        return "float32", f"{name} lies beyond ±{FLOAT32_MAX:.3g} (float32)"
    return None


def value_of(name: str, text: str) -> tuple[float | None, Refusal | None]:
    """The value the text ``text`` (a CSV field) gives feature ``name``, or why it gives none."""
    stripped = text.strip()
    if not stripped:
        return None, ("missing", f"{name} is missing")
    try:
        if "_" in stripped:  # Python's float() takes 1_000; neither JSON nor pandas does
            raise ValueError
        value = float(stripped)
    except ValueError:
        return None, ("not a number", f"{name} is not a number ({stripped[:40]!r})")
    refusal = check_number(name, value)
    return (None, refusal) if refusal else (value, None)


def check_value(name: str, text: str) -> Refusal | None:
    """Why the text ``text`` (a CSV field) is not a valid value of feature ``name``, or None."""
    return value_of(name, text)[1]


class InvalidInput(ValueError):
    """A request the service cannot answer; ``status`` is the HTTP status to send."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status

    def __reduce__(self):  # keeps the status when it crosses a process boundary (src/body_parser.py)
        return type(self), (str(self), self.status)


def check_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise InvalidInput(
            f"unsupported content type {content_type or '(none)'!r}; send 'application/json', {EXPECTED}",
            status=415,
        )


def check_body_size(size: int) -> None:
    if size > config.MAX_BODY_BYTES:
        raise InvalidInput(
            f"request body of {size} bytes is over the limit of {config.MAX_BODY_BYTES} bytes "
            "(AWS Lambda's 6 MB invocation limit, less room for headers); send fewer rows per request",
            status=413,
        )


# Characters API Gateway writes as two-character escapes when it puts the body into the event.
_ESCAPED_IN_EVENT = (b"\n", b"\r", b"\t", b'"', b"\\")


def event_body_size(raw: bytes) -> int:
    """Bytes the body takes inside a Lambda event, where it is a JSON string."""
    return len(raw) + sum(raw.count(char) for char in _ESCAPED_IN_EVENT)


def _reject_constant(name: str):
    raise InvalidInput(f"{name} is not a valid number; values must be finite; {EXPECTED}")


def parse_features(body: bytes | str) -> np.ndarray:
    """Return a ``(rows, N_FEATURES)`` float32 array from a JSON body, or raise :class:`InvalidInput`."""
    raw = body.encode() if isinstance(body, str) else body
    check_body_size(event_body_size(raw))
    if not raw.strip():
        raise InvalidInput(f"empty request body; {EXPECTED}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        obj = _standard_loads(raw)
    return features_from_json(obj, raw)


def _standard_loads(raw: bytes) -> object:
    """The standard library's parse of ``raw``, or the :class:`InvalidInput` that says why not."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except InvalidInput:
        raise
    except RecursionError:
        raise InvalidInput(f"JSON nested too deeply; {EXPECTED}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"body is not valid JSON ({exc}); {EXPECTED}") from None


def features_from_json(obj: object, raw: bytes = b"") -> np.ndarray:
    """Validate an already-parsed JSON value; ``raw`` (the body) helps spot JSON booleans."""
    if not isinstance(obj, list):
        raise InvalidInput(f"got a JSON {_json_type(obj)}; {EXPECTED}")
    try:
        array = np.asarray(obj)
    except (ValueError, TypeError):
        raise InvalidInput(f"rows differ in length or nesting (ragged array); {EXPECTED}") from None
    except RecursionError:
        raise InvalidInput(f"JSON nested too deeply; {EXPECTED}") from None

    if array.dtype.kind not in "iuf" or (raw and (b"true" in raw or b"false" in raw)):
        found, value = _first_non_number(obj)
        if found:
            raise InvalidInput(f"every value must be a number; found {_describe(value)}; {EXPECTED}")
        try:  # only numbers, some of them integers beyond 64 bits: NumPy kept them as objects
            array = np.asarray(obj, dtype=np.float64)
        except OverflowError:
            raise InvalidInput(f"values must lie within ±{FLOAT32_MAX:.3g} (float32); {EXPECTED}") from None
    if array.ndim != 2:
        hint = ""
        if array.ndim == 1 and array.shape[0] == config.N_FEATURES:
            hint = " (wrap a single row in another list: [[...]])"
        raise InvalidInput(f"got a {array.ndim}-D array of shape {array.shape}{hint}; {EXPECTED}")
    rows, columns = array.shape
    if rows == 0:
        raise InvalidInput(f"no rows given; {EXPECTED}")
    if rows > config.MAX_ROWS:
        raise InvalidInput(
            f"got {rows} rows; at most {config.MAX_ROWS} rows per request (the answer must fit in "
            "AWS Lambda's 6 MB response limit); split them over several requests",
            status=413,
        )
    if columns != config.N_FEATURES:
        raise InvalidInput(f"got {columns} columns per row, not {config.N_FEATURES}; {EXPECTED}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInput(f"NaN or infinite values are not allowed; {EXPECTED}")
    if np.abs(array).max() > FLOAT32_MAX:
        raise InvalidInput(f"values must lie within ±{FLOAT32_MAX:.3g} (float32); {EXPECTED}")
    return array.astype(np.float32, copy=False)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


def _first_non_number(obj: object) -> tuple[bool, object]:
    """(True, value) for the first value in ``obj`` that is not a JSON number, else (False, None)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(reversed(value))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            return True, value
    return False, None


def _describe(value: object) -> str:
    kind = _json_type(value)
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{article} {kind} ({json.dumps(value)[:40]})"
