"""Generated requests (hypothesis) against the live server and the Lambda handler.

Every request must get exactly the status tests/oracle.py decides from the documented contract,
a 200 must carry the booster's own answer for the rows, and a refusal a message that says what
to send; never a 5xx, never a hang, and the service answers normally afterwards. Generation
leans toward requests that are nearly valid (one bad cell, a width off by one, numbers at
float32's limit, bodies at the size limit), where a parser or a bound is most likely wrong.
Each test runs a fixed number of cases (CASES), so CI time is bounded.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import cache

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from deploy.lambda_events import http_api_v2
from deploy.lambda_runtime import run_in_process
from src import config
from tests import oracle
from tests.sample_requests import DOCUMENTED_THRESHOLD, EXACT_ROW_TEXT, N, counting_row, expected_labels

CASES = 300  # per run of a generator below: 2 x 300 requests to the server, 300 events sent twice to Lambda
ENDPOINTS = config.PREDICTION_ENDPOINTS
FLOAT32_MAX = oracle.FLOAT32_MAX
FLOAT32_MAX_INT = int(FLOAT32_MAX)

# ---------------------------------------------------------------------------- cells, as JSON text

in_range_numbers = st.one_of(
    st.floats(min_value=-10, max_value=10),
    st.integers(min_value=-1000, max_value=1000),
    st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX),
    st.sampled_from([0, -0.0, 5e-324, 1e-45, 2**63, -(2**63) - 1, 2**64, FLOAT32_MAX, -FLOAT32_MAX]),
)
beyond_float32 = st.one_of(
    st.floats(min_value=math.nextafter(FLOAT32_MAX, math.inf), allow_infinity=False),
    st.floats(max_value=math.nextafter(-FLOAT32_MAX, -math.inf), allow_infinity=False),
    st.integers(min_value=2**128, max_value=10**400),
)
# Integers within 2**80 of float32's largest value: read as doubles, some round to it, some pass it.
at_float32_limit = st.integers(min_value=FLOAT32_MAX_INT - 2**80, max_value=FLOAT32_MAX_INT + 2**80)


def spellings(value) -> st.SearchStrategy[str]:
    """Ways to write one number in JSON."""
    if isinstance(value, int):
        options = [str(value)]
    else:
        options = [json.dumps(value), f"{value:.17e}", f"{value:.17E}".replace("E+", "E")]
    return st.sampled_from(options)


good_cell = st.one_of(in_range_numbers, in_range_numbers, at_float32_limit).flatmap(spellings)
bad_cell = st.one_of(
    beyond_float32.flatmap(spellings),
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e400",
            "true",
            "false",
            "null",
            '"1"',
            '""',
            "[1]",
            "[]",
            "{}",
            '{"a": 1}',
            "+1",
            "01",
            ".5",
            "1.",
            "-",
            "0x1F",
            "1_000",
            "١",
        ]
    ),
    st.text(max_size=6).map(json.dumps),
)
whitespace = st.sampled_from(["", "", " ", "\n", "\t", "\r\n", "  "])


@st.composite
def matrix_text(draw, rows: list[list[str]]) -> str:
    """Rows of JSON tokens written out with generated whitespace."""

    def gap():
        return draw(whitespace)

    written = [f"[{gap()}" + f"{gap()},{gap()}".join(row) + f"{gap()}]" for row in rows]
    return f"{gap()}[{gap()}" + f"{gap()},{gap()}".join(written) + f"{gap()}]{gap()}"


def rows_of(cell, width, max_rows=5):
    return st.lists(st.lists(cell, min_size=width, max_size=width), min_size=1, max_size=max_rows)


@st.composite
def nearly_valid(draw) -> str:
    """A valid matrix, or one with a single fault a careless check would let through."""
    rows = draw(rows_of(good_cell, config.N_FEATURES))
    fault = draw(st.sampled_from(["none"] * 4 + ["cell"] * 2 + ["width", "ragged", "1-D", "3-D"]))
    if fault == "cell":
        r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, config.N_FEATURES - 1))
        rows[r][c] = draw(bad_cell)
    elif fault == "width":
        width = config.N_FEATURES + draw(st.sampled_from([-1, 1]))
        rows = [row[:width] + [draw(good_cell)] * (width - len(row[:width])) for row in rows]
    elif fault == "ragged":
        r = draw(st.integers(0, len(rows) - 1))
        rows[r] = rows[r][:-1] if draw(st.booleans()) else rows[r] + [draw(good_cell)]
    elif fault == "1-D":
        return "[" + ",".join(rows[0]) + "]"
    elif fault == "3-D":
        rows = [["[" + ",".join(row) + "]" for row in rows]]
    return draw(matrix_text(rows))


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
any_json = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=30,
)
COUNTING = ",".join(map(str, counting_row()))  # 1,2,...,N
ZEROS_AFTER = ",0" * (N - 1)  # the rest of a row after its first cell
special_text = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "[",
        "]",
        "[[",
        "null",
        "true",
        "{}",
        "[]",
        "[[]]",
        f"[[{COUNTING}],]",
        f"[[{COUNTING}]] trailing",
        f"[[{COUNTING}]][[{COUNTING}]]",
        f"\ufeff[[{COUNTING}]]",
        f"\u00a0[[{COUNTING}]]",
        f"[[{COUNTING}]]\x0c",
        f"[[{COUNTING}]",
        "[[" + " ".join(map(str, counting_row())) + "]]",
        f"[[{COUNTING}]]\x00",
        "[" * 5000 + "]" * 5000,
        "[[" + "1" * 400 + ZEROS_AFTER + "]]",
        "[[0." + "0" * 400 + "1" + ZEROS_AFTER + "]]",
        "[[1e-400" + ZEROS_AFTER + "]]",
    ]
)

# Bodies at the limits: few and large, so sent as they are rather than generated.
LIMIT_ROW = EXACT_ROW_TEXT


@cache
def limit_body(name: str) -> bytes:
    """``rows:<n>`` is n valid rows; ``size:<char>:<extra>`` a one-row body padded with ``char``
    to MAX_BODY_BYTES + extra bytes as Lambda counts them."""
    kind, *args = name.split(":")
    if kind == "rows":
        return ("[" + ",".join([LIMIT_ROW] * int(args[0])) + "]").encode()
    pad, extra = {"space": " ", "newline": "\n", "tab": "\t", "return": "\r"}[args[0]], int(args[1])
    body = f"[{LIMIT_ROW}]"
    missing = config.MAX_BODY_BYTES + extra - oracle.lambda_event_size(body.encode())
    per_pad = oracle.lambda_event_size(pad.encode())
    return (body + pad * (missing // per_pad) + " " * (missing % per_pad)).encode()


LIMIT_BODIES = [
    f"rows:{config.MAX_ROWS}",
    f"rows:{config.MAX_ROWS + 1}",
    *(f"size:{pad}:{extra}" for pad in ("space", "newline", "tab", "return") for extra in (0, 1)),
]


def limit_cases() -> list[tuple[str, bytes, str]]:
    return [(ENDPOINTS[n % 2], limit_body(name), "application/json") for n, name in enumerate(LIMIT_BODIES)]


ACCEPTED_TYPES = ["application/json"] * 6 + [
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/json;charset=UTF-8",
    "application/json ; q=1",
]
REFUSED_TYPES = [
    "application/vnd.api+json",
    "application/problem+json",
    "application/merge-patch+json",
    "text/json",
    "application/json-seq",
    "application/jsonl",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "",
    None,
]


@st.composite
def requests_to_send(draw) -> tuple[str, bytes, str | None]:
    """(endpoint, body, content type)."""
    roll = draw(st.integers(0, 99))
    if roll < 62:
        body = draw(nearly_valid()).encode()
    elif roll < 74:
        body = json.dumps(draw(any_json)).encode()
    elif roll < 86:
        body = draw(special_text).encode()
    elif roll < 92:
        depth = draw(st.integers(min_value=3, max_value=40))
        body = ("[" * depth + "1" + "]" * depth).encode()
    else:
        body = draw(st.binary(max_size=64))
    content_type = draw(st.sampled_from(ACCEPTED_TYPES * 3 + REFUSED_TYPES))
    return draw(st.sampled_from(ENDPOINTS)), body, content_type


# ---------------------------------------------------------------------------- checking an answer

_decided_limit_bodies: dict[tuple[bytes, str | None], oracle.Expected] = {}


def decide(body: bytes, content_type: str | None) -> oracle.Expected:
    """The oracle's verdict; the few bodies at the limits are parsed once each."""
    if len(body) < 100_000:
        return oracle.decide(body, content_type)
    key = (body, content_type)
    if key not in _decided_limit_bodies:
        _decided_limit_bodies[key] = oracle.decide(body, content_type)
    return _decided_limit_bodies[key]


MESSAGES = {400: "expected a JSON 2-D array", 413: "limit", 415: "application/json"}


def check_answer(booster, endpoint: str, status: int, text: str, body: bytes, content_type) -> None:
    expected = decide(body, content_type)
    case = f"{endpoint} {content_type!r} body of {len(body)} bytes {body[:160]!r} answered {text[:200]!r}"
    assert status == expected.status, case
    if status == 200:
        features = np.asarray(expected.rows, dtype=np.float64).astype(np.float32)
        probabilities = booster.inplace_predict(features, validate_features=False)
        answer = json.loads(text)
        if endpoint == "classify":
            assert answer == (probabilities >= DOCUMENTED_THRESHOLD).astype(int).tolist(), case
        else:
            np.testing.assert_allclose(answer, probabilities, rtol=1e-6, err_msg=case)
    else:
        assert MESSAGES[status] in text, case


def report(name: str, outcomes: Counter) -> None:
    """At least CASES answers were checked, some of each kind; print the tally (pytest -s)."""
    assert sum(outcomes.values()) >= CASES, outcomes
    assert {200, 400, 415} <= set(outcomes), outcomes
    assert outcomes[200] >= CASES // 20, f"too few valid requests to check answers: {outcomes}"
    print(f"\n{name}: {sum(outcomes.values())} cases, statuses {dict(sorted(outcomes.items(), key=str))}")


# Derandomized: every run (CI's included) generates the same cases, so a case that failed once
# fails every time; the two server runs and the Lambda run each have a seed of their own (@seed,
# which also turns the example database off) so they are not copies of one another. To explore
# new cases, change SEEDS.
SEEDS = {"server 1": 1, "server 2": 2, "lambda": 3}
FUZZ_SETTINGS = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------- through the server


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("run", [1, 2])
def test_server_answers_generated_requests_as_the_oracle_says(server, session, booster, run):
    outcomes = Counter()

    @seed(SEEDS[f"server {run}"])
    @FUZZ_SETTINGS
    @given(requests_to_send())
    def one(case):
        endpoint, body, content_type = case
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = session.post(f"{server.url}/{endpoint}", data=body, headers=headers, timeout=30)
        outcomes[response.status_code] += 1
        check_answer(booster, endpoint, response.status_code, response.text, body, content_type)

    one()
    report(f"server, run {run}", outcomes)
    assert server.alive()
    ok = session.post(f"{server.url}/classify", json=[[0.0] * N], timeout=5)
    assert ok.status_code == 200 and ok.json() == expected_labels(booster, [[0.0] * N])


def test_server_answers_bodies_at_the_limits_as_the_oracle_says(server, session, booster):
    outcomes = Counter()
    for endpoint, body, content_type in limit_cases():
        response = session.post(
            f"{server.url}/{endpoint}", data=body, headers={"Content-Type": content_type}, timeout=60
        )
        outcomes[response.status_code] += 1
        check_answer(booster, endpoint, response.status_code, response.text, body, content_type)
    assert set(outcomes) == {200, 413}, outcomes


# ---------------------------------------------------------------------------- through the Lambda handler


def test_lambda_handler_answers_generated_events_as_the_oracle_says(task_dir, booster):
    """The image's code, model and pinned tag (the build context, read-only, in a process of its
    own, as tests/lambda_path/test_lambda_handler.py runs it); each generated case sent once as a text body
    and once base64-encoded, then the bodies at the limits, all in one process."""
    cases = []

    @seed(SEEDS["lambda"])
    @FUZZ_SETTINGS
    @given(requests_to_send())
    def collect(case):
        cases.append(case)

    collect()
    events, sent = [], []
    for endpoint, body, content_type in cases:
        for base64_body in [False, True] if _is_utf8(body) else [True]:
            events.append(http_api_v2(body, path=f"/{endpoint}", content_type=content_type, base64_body=base64_body))
            sent.append((endpoint, body, content_type))
    for endpoint, body, content_type in limit_cases():
        events.append(http_api_v2(body, path=f"/{endpoint}", content_type=content_type))
        sent.append((endpoint, body, content_type))
    events.append(http_api_v2([[0.0] * N]))
    responses = run_in_process(task_dir, events)["responses"]

    outcomes = Counter()
    for (endpoint, body, content_type), response in zip(sent, responses[:-1], strict=True):
        outcomes[response["statusCode"]] += 1
        check_answer(booster, endpoint, response["statusCode"], response["body"], body, content_type)
    report("Lambda handler", outcomes)
    assert outcomes[413] >= 1, outcomes
    assert responses[-1]["statusCode"] == 200, "still answers after the generated events"


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
        return True
    except UnicodeDecodeError:
        return False
