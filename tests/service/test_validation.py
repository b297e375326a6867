"""Request-body rules shared by the local service and the Lambda handler."""

import json
import math
import struct

import numpy as np
import pytest

from src import config
from src.validation import InvalidInput, check_content_type, parse_features
from tests.sample_requests import NARROW, ROW, counting_row, one_row_body

pytestmark = pytest.mark.unit

N = config.N_FEATURES
COUNTING = ",".join(map(str, counting_row()))  # 1,2,...,N


def test_accepts_rows_of_n_numbers_ints_included():
    array = parse_features(json.dumps([ROW, counting_row()]))
    assert array.dtype == np.float32 and array.shape == (2, N)
    assert array[1].tolist() == counting_row()


@pytest.mark.parametrize(
    "body, message",
    [
        (json.dumps(ROW), "1-D array"),
        (json.dumps([[ROW]]), "3-D array"),
        (json.dumps([ROW[:-1]]), f"{N - 1} columns per row, not {N}"),
        (json.dumps([ROW + [1.0]]), f"{N + 1} columns"),
        (json.dumps([ROW, ROW[:NARROW]]), "ragged"),
        (json.dumps([["a"] * N]), "a string"),
        (json.dumps([[True] + ROW[1:]]), "a boolean"),
        (json.dumps([[None] + ROW[1:]]), "a null"),
        (json.dumps([[{"x": 1}] + ROW[1:]]), "an object"),
        (one_row_body("NaN", ", "), "NaN is not a valid number"),
        (one_row_body("Infinity", ", "), "Infinity is not a valid number"),
        (one_row_body("1e999", ", "), "NaN or infinite"),
        (one_row_body("1e39", ", "), "float32"),
        (one_row_body("9" * 400, ", "), "float32"),
        ("[]", "1-D array of shape (0,)"),
        ("[[]]", "0 columns"),
        ("", "empty request body"),
        ("   ", "empty request body"),
        ("{not json", "not valid JSON"),
        ('{"instances": [[' + COUNTING + "]]}", "got a JSON object"),
        ("42", "got a JSON number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_bad_bodies_raise_400_saying_what_was_expected(body, message):
    with pytest.raises(InvalidInput) as error:
        parse_features(body)
    assert error.value.status == 400
    assert message in str(error.value)
    assert "2-D array" in str(error.value)


def test_integers_beyond_64_bits_within_float32_range_are_numbers():
    array = parse_features(one_row_body("1" + "0" * 30, ", "))
    assert array[0, 0] == np.float32(1e30)


# float32's largest finite value from its bit pattern, not from the module under test.
FLOAT32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
ABOVE_FLOAT32_MAX = math.nextafter(FLOAT32_MAX, math.inf)  # the next double: refused


@pytest.mark.parametrize("sign", [1, -1])
def test_exactly_float32_max_is_accepted(sign):
    array = parse_features(one_row_body(repr(sign * FLOAT32_MAX)))
    assert array[0, 0] == np.float32(sign * FLOAT32_MAX)
    assert np.isfinite(array).all()


@pytest.mark.parametrize("sign", [1, -1])
def test_the_next_float_above_float32_max_is_refused(sign):
    assert ABOVE_FLOAT32_MAX > FLOAT32_MAX and float(np.float32(ABOVE_FLOAT32_MAX)) == FLOAT32_MAX
    with pytest.raises(InvalidInput, match="float32") as error:
        parse_features(one_row_body(repr(sign * ABOVE_FLOAT32_MAX)))
    assert error.value.status == 400


def test_the_integer_just_above_float32_max_is_refused():
    """As an integer, too: NumPy keeps one beyond 64 bits as an object, read as a double."""
    with pytest.raises(InvalidInput, match="float32"):
        parse_features(one_row_body(str(int(FLOAT32_MAX) + 2**104)))
    assert parse_features(one_row_body(str(int(FLOAT32_MAX))))[0, 0] == np.float32(FLOAT32_MAX)


def test_single_row_without_outer_list_gets_a_hint():
    with pytest.raises(InvalidInput, match=r"wrap a single row"):
        parse_features(json.dumps(ROW))


def test_body_over_the_lambda_limit_is_413():
    with pytest.raises(InvalidInput) as error:
        parse_features(b" " * (config.MAX_BODY_BYTES + 1))
    assert error.value.status == 413


def test_escaped_characters_count_as_they_take_room_in_the_event():
    """A body of newlines is twice as large inside the Lambda event as on the wire."""
    half = config.MAX_BODY_BYTES // 2 + 1
    with pytest.raises(InvalidInput) as error:
        parse_features(b"[[" + b"\n" * half + COUNTING.encode() + b"]]")
    assert error.value.status == 413
    assert parse_features(b"[[" + b" " * half + COUNTING.encode() + b"]]").shape == (1, N)


def test_more_rows_than_the_answer_can_hold_is_413():
    zeros = json.dumps([0] * N, separators=(",", ":"))
    rows = "[" + ",".join([zeros] * (config.MAX_ROWS + 1)) + "]"
    with pytest.raises(InvalidInput, match=f"at most {config.MAX_ROWS} rows") as error:
        parse_features(rows)
    assert error.value.status == 413
    full = "[" + ",".join([zeros] * config.MAX_ROWS) + "]"
    assert parse_features(full).shape == (config.MAX_ROWS, config.N_FEATURES)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_pass(content_type):
    check_content_type(content_type)


# +json types are refused too: API Gateway base64-encodes them into the event (a third larger),
# so the same body would fit on Lambda as application/json and not as application/vnd.api+json.
@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/vnd.api+json"],
)
def test_other_content_types_are_415(content_type):
    with pytest.raises(InvalidInput) as error:
        check_content_type(content_type)
    assert error.value.status == 415


def _standard_library_answer(raw: bytes):
    """What the rules answer when only the standard library parses the body."""
    from src.validation import _standard_loads, features_from_json

    try:
        return features_from_json(_standard_loads(raw), raw)
    except InvalidInput as exc:
        return exc.status, str(exc)


def _answer(raw: bytes):
    try:
        return parse_features(raw)
    except InvalidInput as exc:
        return exc.status, str(exc)


EDGE_VALUES = [
    "18446744073709551615",  # the largest unsigned 64-bit integer: still an integer to orjson
    "18446744073709551616",  # one more: a double to orjson, a Python int to the standard library
    "-9223372036854775809",
    "340282346638528859811704183484516925440",  # float32's largest value, as an integer
    "340282356779733661637539395458142568448",  # just past it
    "1" + "0" * 400,  # beyond a double
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "0.1",
    "1.5e-320",
    "2.2250738585072011e-308",
    "true",
    '"\\ud800"',
    "null",
]


@pytest.mark.parametrize("value", EDGE_VALUES)
def test_orjson_answers_every_edge_as_the_standard_library_does(value):
    raw = json.dumps([counting_row()[:-1] + ["X"]]).replace('"X"', value).encode()
    expected, got = _standard_library_answer(raw), _answer(raw)
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.tobytes() == expected.tobytes()
    else:
        assert got == expected


@pytest.mark.parametrize(
    "raw",
    [b"\xef\xbb\xbf" + json.dumps([ROW]).encode(), json.dumps([ROW]).encode("utf-16"), b"[" * 5000 + b"]" * 5000],
)
def test_bodies_orjson_refuses_get_the_standard_librarys_answer(raw):
    expected, got = _standard_library_answer(raw), _answer(raw)
    assert type(got) is type(expected)
    assert (got.tobytes() == expected.tobytes()) if isinstance(got, np.ndarray) else got == expected
