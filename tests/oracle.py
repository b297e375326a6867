"""What the API must answer for a request, decided from the documented contract alone.

Written apart from src/validation.py and sharing nothing with it, the standard library's JSON
parser included: the body is read by a strict RFC 8259 parser of its own, so a mistake in the
service's parsing shows up as a disagreement instead of being repeated here.

The contract (README, "The API"):
- 415 unless the media type is ``application/json`` (any case, parameters such as charset allowed);
- 413 when the body takes more than ``MAX_BODY_BYTES`` inside a Lambda event, where it is a JSON
  string: newline, carriage return, tab, quote and backslash each take two bytes there;
- 400 unless the body is UTF-8 JSON (a leading byte order mark may be ignored, as RFC 8259 allows)
  holding a non-empty array of rows of the same length, each value a number;
- 413 for more than ``MAX_ROWS`` such rows;
- 400 unless every row has ``N_FEATURES`` values, each finite and within float32's range once
  read as a double;
- 200 otherwise.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

from src import config

FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]  # the largest finite float32
TWO_BYTES_IN_AN_EVENT = (b"\n", b"\r", b"\t", b'"', b"\\")
BOM = "\ufeff"


def lambda_event_size(body: bytes) -> int:
    """Bytes ``body`` takes as a JSON string in a Lambda event."""
    return len(body) + sum(body.count(char) for char in TWO_BYTES_IN_AN_EVENT)


class NotJson(ValueError):
    pass


@dataclass(frozen=True)
class Number:
    """A JSON number as written, and the double nearest to it."""

    text: str

    @property
    def double(self) -> float:
        return float(self.text)  # correctly rounded; inf beyond the double range


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')
_LITERALS = {"true": True, "false": False, "null": None}


def parse_json(text: str):
    """Parse one JSON value (RFC 8259 grammar) without recursion: arrays become lists, objects
    dicts, numbers :class:`Number`, strings their source text. Raises :class:`NotJson`."""
    position = _WHITESPACE.match(text, 0).end()
    stack: list[list | dict] = []  # open containers
    keys: list[str | None] = []  # the pending key of each open object
    result, have_result = None, False

    def fail(what: str):
        raise NotJson(f"{what} at offset {position}")

    while True:
        # A value starts here.
        if position >= len(text):
            fail("value expected")
        char = text[position]
        if char == "[" or char == "{":
            container = [] if char == "[" else {}
            position = _WHITESPACE.match(text, position + 1).end()
            closing = "]" if char == "[" else "}"
            if position < len(text) and text[position] == closing:
                value = container
                position += 1
            else:
                stack.append(container)
                keys.append(None)
                if char == "{":
                    position = _read_key(text, position, keys, fail)
                continue
        elif char == '"':
            match = _STRING.match(text, position)
            if not match:
                fail("bad string")
            value, position = match.group(), match.end()
        else:
            match = _NUMBER.match(text, position)
            if match:
                value, position = Number(match.group()), match.end()
            else:
                for literal, literal_value in _LITERALS.items():
                    if text.startswith(literal, position):
                        value, position = literal_value, position + len(literal)
                        break
                else:
                    fail("value expected")
        # A value ended: attach it, then close containers or expect the next value.
        while True:
            position = _WHITESPACE.match(text, position).end()
            if not stack:
                result, have_result = value, True
                break
            container = stack[-1]
            if isinstance(container, list):
                container.append(value)
            else:
                container[keys[-1]] = value
            closing = "]" if isinstance(container, list) else "}"
            if position < len(text) and text[position] == ",":
                position = _WHITESPACE.match(text, position + 1).end()
                if isinstance(container, dict):
                    position = _read_key(text, position, keys, fail)
                break
            if position < len(text) and text[position] == closing:
                position += 1
                value = stack.pop()
                keys.pop()
                continue
            fail(f"',' or '{closing}' expected")
        if have_result:
            if position != len(text):
                fail("trailing data")
            return result


def _read_key(text: str, position: int, keys: list, fail) -> int:
    match = _STRING.match(text, position)
    if not match:
        fail("object key expected")
    keys[-1] = match.group()
    position = _WHITESPACE.match(text, match.end()).end()
    if position >= len(text) or text[position] != ":":
        fail("':' expected")
    return _WHITESPACE.match(text, position + 1).end()


@dataclass(frozen=True)
class Expected:
    status: int
    rows: list[list[float]] | None = None  # the feature matrix, as doubles, when status is 200


def decide(body: bytes, content_type: str | None) -> Expected:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return Expected(415)
    if lambda_event_size(body) > config.MAX_BODY_BYTES:
        return Expected(413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Expected(400)
    try:
        value = parse_json(text.removeprefix(BOM))
    except NotJson:
        return Expected(400)
    if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
        return Expected(400)
    width = len(value[0])
    if any(len(row) != width for row in value):
        return Expected(400)
    if not all(isinstance(cell, Number) for row in value for cell in row):
        return Expected(400)
    if len(value) > config.MAX_ROWS:
        return Expected(413)
    if width != config.N_FEATURES:
        return Expected(400)
    rows = [[cell.double for cell in row] for row in value]
    if not all(math.isfinite(x) and abs(x) <= FLOAT32_MAX for row in rows for x in row):
        return Expected(400)
    return Expected(200, rows)
