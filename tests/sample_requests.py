"""Request rows the tests send and the answers they expect: the row width (N), the example row
and random rows derived from src/config.py, the booster's own answers labelled with the
documented threshold (not config's); plus bad bodies with the answer each must get."""

import json
from pathlib import Path

import numpy as np

from src import config

README = Path(__file__).resolve().parent.parent / "README.md"
# The documented threshold (README's API table: "probability ≥ 0.5 → 1"), written here and not taken
# from config.DECISION_THRESHOLD, so a changed constant changes the service's labels and not the
# labels the tests expect (tests/service/test_threshold.py pins both to the README).
DOCUMENTED_THRESHOLD = 0.5

N = config.N_FEATURES
ROW = list(config.EXAMPLE_ROWS[0])
# Values float32 holds exactly, so a row's text and the numbers the service reads agree to the bit;
# as compact JSON, for bodies whose byte count matters.
_EXACT = (0.5, -1.25, 0.125, 2.5, -0.75, 0.625, 1.5)
EXACT_ROW_TEXT = json.dumps([_EXACT[i % len(_EXACT)] for i in range(N)], separators=(",", ":"))


def random_rows(count: int, seed: int, scale: float = 1.0, decimals: int = 5) -> np.ndarray:
    """count rows of N normally distributed values, rounded: the same rows for the same seed."""
    return np.random.default_rng(seed).normal(scale=scale, size=(count, N)).round(decimals)


def counting_row() -> list[int]:
    """[1, 2, ..., N]: a row of whole numbers."""
    return list(range(1, N + 1))


def one_row_body(first: str, sep: str = ",") -> str:
    """The text of a one-row body: ``first`` (any JSON text) then the numbers 1 to N-1."""
    return "[[" + sep.join([first, *map(str, range(1, N))]) + "]]"


def over_the_limit(row_text: str, rows: int) -> str:
    """A body of ``rows`` copies of one row's JSON text, or more where rows are so narrow that
    that many would not pass MAX_BODY_BYTES: always refused as too large."""
    rows = max(rows, config.MAX_BODY_BYTES // (len(row_text) + 1) + 1)
    return "[" + ",".join([row_text] * rows) + "]"


def expected_probabilities(booster, rows) -> np.ndarray:
    return booster.inplace_predict(np.asarray(rows, dtype=np.float32))


def expected_labels(booster, rows) -> list[int]:
    return (expected_probabilities(booster, rows) >= DOCUMENTED_THRESHOLD).astype(int).tolist()


ROWS = random_rows(40, seed=4, scale=2)
NARROW = min(3, N - 1)  # a too-narrow width, whatever N is

# (case, body, content type, expected status, a phrase the answer must contain)
BAD = [
    ("1-D", json.dumps(ROWS[0].tolist()), "application/json", 400, "wrap a single row"),
    ("wrong width", json.dumps([counting_row()[:NARROW]]), "application/json", 400, f"{NARROW} columns"),
    ("strings", json.dumps([["a"] * N]), "application/json", 400, "a string"),
    ("NaN", "[[NaN" + ",1" * (N - 1) + "]]", "application/json", 400, "NaN"),
    ("not JSON", "{oops", "application/json", 400, "not valid JSON"),
    ("empty", "", "application/json", 400, "empty request body"),
    ("content type", json.dumps([[1] * N]), "text/plain", 415, "application/json"),
    (
        "over 6 MB",
        over_the_limit(json.dumps(list(range(N))), 500_000),
        "application/json",
        413,
        str(config.MAX_BODY_BYTES),
    ),
]
