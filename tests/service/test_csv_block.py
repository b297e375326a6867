"""The batch job's compiled reader and writer (src/csv_block.c): each number read is the float32
of Python's float(), each line written is the one Python's formatting writes, and whatever is
not a plain number within float32 leaves the block to pandas and the row-by-row checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from src import batch_score, csv_block
from src.validation import FLOAT32_MAX

pytestmark = pytest.mark.unit


def read_one(token: str) -> np.float32 | None:
    features = csv_block.read_features(token.encode() + b"\n", 1, [0], FLOAT32_MAX)
    return None if features is None else features[0, 0]


def as_python_reads_it(token: str) -> np.float32 | None:
    value = float(token)
    return np.float32(value) if abs(value) <= FLOAT32_MAX else None


def same_float32(got: np.float32 | None, expected: np.float32 | None) -> bool:
    if got is None or expected is None:
        return got is expected
    return np.float32(got).view(np.uint32) == np.float32(expected).view(np.uint32)  # -0.0 is not 0.0


def test_the_library_is_built_and_loads():
    assert csv_block.available(), f"{csv_block.LIBRARY} does not load: {csv_block.BUILD_HINT}"


digits = st.text("0123456789", max_size=25)
signs = st.sampled_from(["", "-", "+"])
exponents = st.one_of(
    st.just(""), st.tuples(st.sampled_from("eE"), signs, st.text("0123456789", min_size=1, max_size=3))
)
fractions = st.one_of(st.just(""), digits.map(lambda d: "." + d))
plain_numbers = (
    st.tuples(signs, digits, fractions, exponents)
    .map(lambda parts: "".join(parts[:3]) + "".join(parts[3]))
    .filter(lambda token: any(c.isdigit() for c in token.lower().split("e")[0]))
)


@settings(max_examples=1000, deadline=None)
@given(plain_numbers)
def test_a_plain_number_is_read_as_python_reads_it(token):
    assert same_float32(read_one(token), as_python_reads_it(token)), token


def float32_midpoints(count: int) -> list[float]:
    """Doubles halfway between neighbouring float32s: where a double's last digits decide the float32."""
    rng = np.random.default_rng(5)
    low = rng.uniform(-1e6, 1e6, count).astype(np.float32)
    high = np.nextafter(low, np.float32(np.inf))
    return ((low.astype(np.float64) + high.astype(np.float64)) / 2).tolist()


@pytest.mark.parametrize("digits", [15, 16, 17, 18, 19, 21])
def test_numbers_next_to_a_float32_halfway_point_round_as_python_rounds_them(digits):
    for midpoint in float32_midpoints(2000):
        for value in (midpoint, math.nextafter(midpoint, math.inf), math.nextafter(midpoint, -math.inf)):
            token = f"{value:.{digits}g}"
            assert same_float32(read_one(token), as_python_reads_it(token)), token


def test_the_float32_limit_is_the_apis():
    above = math.nextafter(FLOAT32_MAX, math.inf)
    for token in (repr(FLOAT32_MAX), f"-{FLOAT32_MAX!r}", f"{FLOAT32_MAX:.19e}", "3.4028234663852886e38"):
        assert same_float32(read_one(token), np.float32(FLOAT32_MAX) * np.sign(float(token))), token
    for token in (repr(above), f"-{above!r}", "3.5e38", "1e39", "1e400", "99999999999999999999e30"):
        assert read_one(token) is None, token


@pytest.mark.parametrize(
    "token",
    ["", " 1", "1 ", "nan", "inf", "-inf", "1_0", "0x10", "1e", "e5", ".", "+", "-", "1..2", "--1", "1e+", "1.2.3",
     '"1"', "1\r", "\u0661"],
)  # fmt: skip
def test_anything_else_leaves_the_block_to_the_slower_checks(token):
    assert read_one(token) is None


def test_rows_have_the_headers_width_and_the_features_go_where_the_header_says():
    read = csv_block.read_features
    # Three columns: feature 1, an id (skipped whatever it holds), feature 0.
    assert read(b"2.5,id-1,1\n-0,x y z,3e2\n", 3, [2, 0], FLOAT32_MAX).tolist() == [[1.0, 2.5], [300.0, -0.0]]
    for block in (b"1,a\n", b"1,a,2,3\n", b"\n", b"1,a,2\n\n", b"1,a,2"):
        assert read(block, 3, [2, 0], FLOAT32_MAX) is None, block
    assert read(b"", 3, [2, 0], FLOAT32_MAX).shape == (0, 2)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(max_size=30).map(lambda text: text.replace(b"\n", b"")), st.floats(0, 1, width=32)),
        min_size=1,
        max_size=50,
    )
)
def test_the_written_lines_are_the_ones_python_formats(rows):
    lines = b"".join(text + b"\n" for text, _ in rows)
    probabilities = np.array([p for _, p in rows], dtype=np.float32)
    labels, texts = batch_score.answer_texts(probabilities)
    written = bytearray(csv_block.scored_size(lines, texts, len(labels)) + 4)
    size = csv_block.write_scored(lines, labels, texts, written, 4)
    template = lines.replace(b"%", b"%%").replace(b"\n", b",%c,%b\n")
    expected = template % tuple(x for pair in zip(labels, texts.split(b","), strict=True) for x in pair)
    assert size == len(expected) == len(written) - 4
    assert written[4:] == expected
