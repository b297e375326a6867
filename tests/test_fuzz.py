"""Generated input (hypothesis) against the live server and the Lambda handler.

Every generated request must get 200 exactly when it is a valid feature matrix, decided here by
an oracle written independently of src/validation.py, and a 4xx otherwise: never a 5xx, never a
hang; and the server must answer normally afterwards. Each test runs a fixed number of cases
(see CASES), so CI time is bounded.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src import config
from tests.lambda_events import http_api_v2

CASES = 300  # per test below; 4 tests x 300 = 1,200 generated requests per run
FLOAT32_MAX = float(np.finfo(np.float32).max)

# ---------------------------------------------------------------------------- generators

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)
any_json = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=5), inner, max_size=4)), max_leaves=30)
numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                    st.integers(min_value=-(10**40), max_value=10**40))
cell = st.one_of(numbers, numbers, numbers, json_scalars)  # mostly numbers, sometimes not
row = st.one_of(st.lists(numbers, min_size=config.N_FEATURES, max_size=config.N_FEATURES),
                st.lists(cell, min_size=0, max_size=10))
matrix = st.lists(row, min_size=0, max_size=6)
special_text = st.sampled_from([
    "", " ", "[", "]", "[[", "null", "true", "{}", "[[]]", "[[NaN,1,2,3,4,5,6]]", "[[Infinity,1,2,3,4,5,6]]",
    "[[-Infinity,1,2,3,4,5,6]]", "[[1,2,3,4,5,6,7],]", "[[1,2,3,4,5,6,7]] trailing", "\ufeff[[1,2,3,4,5,6,7]]",
    "[" * 5000 + "]" * 5000, "[[1e309,0,0,0,0,0,0]]", "[[" + "1" * 400 + ",0,0,0,0,0,0]]",
])


@st.composite
def request_bodies(draw):
    """(body bytes, content type) covering the kinds of input the issue lists."""
    kind = draw(st.sampled_from(["matrix", "matrix", "json", "text", "bytes", "nested"]))
    if kind == "matrix":
        body = json.dumps(draw(matrix)).encode()
    elif kind == "json":
        body = json.dumps(draw(any_json)).encode()
    elif kind == "text":
        body = draw(special_text).encode()
    elif kind == "nested":
        depth = draw(st.integers(min_value=3, max_value=40))
        body = ("[" * depth + "1" + "]" * depth).encode()
    else:
        body = draw(st.binary(max_size=64))
    content_type = draw(st.sampled_from(
        ["application/json"] * 6 + ["text/plain", "application/x-www-form-urlencoded", "", None]))
    return body, content_type


# ---------------------------------------------------------------------------- the oracle

def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expected_status(body: bytes, content_type: str | None) -> int:
    """What the API must answer, decided without src/validation.py."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        return 415
    if len(body) > config.MAX_BODY_BYTES:
        return 413

    def refuse_constant(_):
        raise ValueError("non-finite constant")

    try:
        value = json.loads(body, parse_constant=refuse_constant)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return 400
    if not isinstance(value, list) or not value:
        return 400
    for r in value:
        if not isinstance(r, list) or len(r) != config.N_FEATURES:
            return 400
        for v in r:
            if not is_number(v):
                return 400
            try:
                f = float(v)
            except OverflowError:
                return 400
            if not math.isfinite(f) or abs(f) > FLOAT32_MAX:
                return 400
    return 200


def report(name: str, outcomes: Counter) -> None:
    """At least CASES cases ran; print how they were answered (pytest -s shows it)."""
    assert sum(outcomes.values()) >= CASES, outcomes
    print(f"\n{name}: {sum(outcomes.values())} cases, statuses {dict(sorted(outcomes.items(), key=str))}")


def check_answer(status: int, text: str, body: bytes, content_type) -> None:
    expected = expected_status(body, content_type)
    assert status == expected, (status, expected, body[:200], content_type, text[:300])
    if status == 200:
        answer = json.loads(text)
        assert len(answer) == len(json.loads(body)) and set(answer) <= {0, 1}
    else:
        assert "expected" in text or "send" in text, text[:300]


# ---------------------------------------------------------------------------- through the server

FUZZ_SETTINGS = settings(max_examples=CASES, deadline=None, derandomize=False,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("endpoint", ["classify", "predict_proba"])
def test_server_answers_generated_requests_with_200_or_a_4xx(server, session, endpoint):
    outcomes = Counter()

    @FUZZ_SETTINGS
    @given(request_bodies())
    def one(case):
        body, content_type = case
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = session.post(f"{server.url}/{endpoint}", data=body, headers=headers, timeout=5)
        outcomes[response.status_code] += 1
        if endpoint == "classify":
            check_answer(response.status_code, response.text, body, content_type)
        else:
            assert response.status_code == expected_status(body, content_type), (body[:200], response.text[:200])

    one()
    report(f"server /{endpoint}", outcomes)
    assert server.alive()
    ok = session.post(f"{server.url}/classify", json=[[0.0] * 7], timeout=5)
    assert ok.status_code == 200 and ok.json() in ([0], [1])


# ---------------------------------------------------------------------------- through the Lambda handler

@pytest.fixture(scope="module")
def handler(lambda_context, trained, monkeypatch_module):
    """The image's handler, imported in-process from the build context bentoctl made."""
    monkeypatch_module.setenv("XGB_MODEL_TAG", trained.tag)
    monkeypatch_module.syspath_prepend(str(lambda_context / "app"))
    sys.modules.pop("lambda_app", None)
    import lambda_app

    return lambda_app.handler


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize("base64_body", [False, True], ids=["text-body", "base64-body"])
def test_handler_answers_generated_events_with_200_or_a_4xx(handler, base64_body):
    outcomes = Counter()

    @FUZZ_SETTINGS
    @given(request_bodies())
    def one(case):
        body, content_type = case
        try:
            event = http_api_v2(body, content_type=content_type, base64_body=base64_body)
        except UnicodeDecodeError:
            outcomes["skipped: bytes a text event cannot carry"] += 1
            return  # the base64 run sends them
        response = handler(event, None)
        outcomes[response["statusCode"]] += 1
        check_answer(response["statusCode"], response["body"], body, content_type)

    one()
    report(f"Lambda handler, {'base64' if base64_body else 'text'} bodies", outcomes)
    ok = handler(http_api_v2([[0.0] * 7]), None)
    assert ok["statusCode"] == 200
