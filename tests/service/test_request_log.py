"""One JSON log line per request and ``X-Model-Version`` on every answer: from `bentoml serve`,
and from the Lambda handler run by awslambdaric in its JSON and Text log formats. A refused
request (4xx) logs that line alone; a failing one (5xx) keeps BentoML's ERROR and traceback."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from deploy.lambda_events import http_api_v2
from src import config, request_log
from tests.commands import run_python, serve
from tests.lambda_harness import request_lines, run_entry_command
from tests.log_capture import captured, log_endpoint_error
from tests.sample_requests import NARROW, ROW, over_the_limit

OVER_LIMIT = over_the_limit(json.dumps(ROW), 180_000)

# name: (method, path, body, content type, status, rows, words of the refusal)
CASES = {
    "200": ("POST", "/classify", json.dumps([ROW, ROW]), "application/json", 200, 2, None),
    "400": ("POST", "/classify", json.dumps(ROW), "application/json", 400, None, "wrap a single row"),
    "413": ("POST", "/predict_proba", OVER_LIMIT, "application/json", 413, None, "over the limit"),
    "415": ("POST", "/classify", json.dumps([ROW]), "text/plain", 415, None, "unsupported content type"),
    "404": ("GET", "/nowhere", "", None, 404, None, None),
}


def check_line(entry: dict, case: str, model_version: str, json_format: bool = False) -> None:
    method, path, _, _, status, rows, refusal = CASES[case]
    assert entry["method"] == method and entry["route"] == path and entry["status"] == status, entry
    assert entry["model_version"] == model_version and ":latest" not in model_version
    assert entry["level"] == ("INFO" if status < 400 else "WARNING"), entry
    assert entry["message"] == f"{method} {path} {status}"
    assert isinstance(entry["latency_ms"], float) and 0 < entry["latency_ms"] < config.REQUEST_TIMEOUT_S * 1000
    assert entry["request_id"]
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None
    if json_format and rows is None:  # awslambdaric's JSON formatter leaves out None values
        assert entry.get("rows") is None
    else:
        assert entry["rows"] == rows, entry
    if refusal is None:
        assert "error" not in entry
    else:
        assert refusal in entry["error"]


# ---------------------------------------------------------------------------- `bentoml serve`


@pytest.fixture(scope="module")
def logged_server(trained, tmp_path_factory):
    """A server of its own on ``:latest``, so its log holds only this module's requests."""
    import bentoml

    version = str(bentoml.models.get(f"{config.MODEL_NAME}:latest").tag)
    latest = {"XGB_MODEL_TAG": f"{config.MODEL_NAME}:latest"}
    srv = serve(tmp_path_factory.mktemp("request-log"), env=latest)
    yield srv, version
    srv.stop()


def quiet_offset(log: Path, still_s: float = 0.3) -> int:
    """The log's size once nothing has been written to it for ``still_s``: an earlier request's
    line, written just after its answer, is not taken for the next one's."""
    size = log.stat().st_size
    while True:
        time.sleep(still_s)
        if log.stat().st_size == size:
            return size
        size = log.stat().st_size


def new_output(log: Path, offset: int, until, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_bytes()[offset:].decode(errors="replace")
        if until(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_request_is_one_json_line_and_a_refusal_no_traceback(logged_server, case):
    srv, version = logged_server
    method, path, body, content_type, status, _, _ = CASES[case]
    offset = quiet_offset(srv.log)
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = requests.request(method, srv.url + path, data=body or None, headers=headers, timeout=30)
    assert response.status_code == status
    assert response.headers["X-Model-Version"] == version
    output = new_output(srv.log, offset, lambda text: request_lines(text))
    lines = request_lines(output)
    assert len(lines) == 1, output[-3000:]
    check_line(lines[0], case, version)
    assert "Traceback" not in output and "[ERROR]" not in output, output[-3000:]
    assert all(line.startswith("{") for line in output.splitlines()), output[-3000:]


def test_local_request_ids_differ(logged_server):
    srv, _ = logged_server
    offset = quiet_offset(srv.log)
    for _ in range(5):
        requests.post(f"{srv.url}/classify", json=[ROW], timeout=5)
    lines = request_lines(new_output(srv.log, offset, lambda text: len(request_lines(text)) >= 5))
    assert len({line["request_id"] for line in lines}) == 5


BROKEN_MODEL = f"""
import bentoml, numpy as np, xgboost as xgb
features = np.random.default_rng(0).normal(size=(50, {NARROW}))
booster = xgb.train({{"objective": "binary:logistic"}}, xgb.DMatrix(features, label=features[:, 0] > 0), 2)
print(bentoml.xgboost.save_model({config.MODEL_NAME!r}, booster).tag)
"""


def test_a_failing_request_keeps_its_traceback_at_error(tmp_path):
    """A model trained on fewer features than N_FEATURES fails on every full-width request: a
    real 500, whose traceback BentoML still logs at ERROR next to the request's line."""
    home = tmp_path / "home"
    saved = run_python("-c", BROKEN_MODEL, env={"BENTOML_HOME": str(home)})
    assert saved.returncode == 0, saved.stderr[-3000:]
    version = saved.stdout.strip().splitlines()[-1]
    srv = serve(tmp_path, env={"BENTOML_HOME": str(home), "XGB_MODEL_TAG": f"{config.MODEL_NAME}:latest"})
    try:
        offset = quiet_offset(srv.log)
        response = requests.post(f"{srv.url}/classify", json=[ROW], timeout=10)
        assert response.status_code == 500
        assert response.headers["X-Model-Version"] == version
        output = new_output(srv.log, offset, lambda text: request_lines(text))
    finally:
        srv.stop()
    assert "[ERROR]" in output and "Exception on /classify [POST]" in output
    assert "Traceback" in output and "Number of columns" in output
    (line,) = request_lines(output)
    assert line["status"] == 500 and line["level"] == "ERROR" and line["rows"] == 1
    assert line["model_version"] == version


# ---------------------------------------------------------------------------- what BentoML must keep doing


@pytest.mark.unit
def test_bentoml_still_logs_endpoint_exceptions_where_quiet_refusals_looks():
    """src/server_tuning.py filters BentoML's ``log_exception``: the HTTP app's module logger,
    one ERROR record with ``exc_info`` per exception an endpoint raises (that BentoML still calls
    it: tests/service/test_bentoml_adapter.py). Only the refusal loses its record."""
    from bentoml.exceptions import BentoMLException

    from src.bentoml_adapter import http_app_module
    from src.server_tuning import quiet_refusals

    http_app = http_app_module()

    class Refused(BentoMLException):
        pass

    before = list(http_app.logger.filters)
    try:
        with captured(http_app.logger) as records:
            for error in (Refused("bad row"), RuntimeError("model failed")):
                log_endpoint_error(http_app, error)
            assert [r.exc_info[0] for r in records] == [Refused, RuntimeError]
            assert all(r.levelno == logging.ERROR and r.name == http_app.logger.name for r in records)
            records.clear()
            quiet_refusals(Refused)
            for error in (Refused("bad row"), RuntimeError("model failed")):
                log_endpoint_error(http_app, error)
            assert [r.exc_info[0] for r in records] == [RuntimeError], "only the refusal is dropped"
    finally:
        http_app.logger.filters[:] = before


# ---------------------------------------------------------------------------- the middleware alone


def run_middleware(app, scope_extra=None, log=True):
    """Call :class:`RequestLog` around ``app``; return what it sent, its log lines and what it raised."""
    stream, sent, raised = io.StringIO(), [], None

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/classify", "headers": [], **(scope_extra or {})}
    middleware = request_log.RequestLog(app, model_version="xgb_model:abc123", log=log)
    before = request_log._stream
    request_log.log_to_stream(stream)
    try:
        asyncio.run(middleware(scope, receive, send))
    except Exception as exc:
        raised = exc
    finally:
        request_log._stream = before
    return sent, request_lines(stream.getvalue()), raised


async def answer_200(scope, receive, send):
    scope[request_log.ROWS] = 3
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"[1, 0, 1]"})


@pytest.mark.unit
def test_header_is_added_even_with_the_log_off():
    sent, lines, _ = run_middleware(answer_200, log=False)
    assert (b"x-model-version", b"xgb_model:abc123") in sent[0]["headers"]
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    assert lines == []


@pytest.mark.unit
def test_lambda_ids_come_from_the_invocation_and_the_api():
    class Context:
        aws_request_id = "8f507cfc-xmpl-4697-b07a-ac58fc914c95"

    event = {"requestContext": {"requestId": "JKJaXmPLvHcESHA="}}
    _, (line,), _ = run_middleware(answer_200, {"aws.context": Context(), "aws.event": event})
    assert line["request_id"] == Context.aws_request_id and line["api_request_id"] == "JKJaXmPLvHcESHA="
    assert line["rows"] == 3 and line["status"] == 200


@pytest.mark.unit
def test_an_exception_through_the_middleware_is_logged_as_500_and_raised():
    async def fail(scope, receive, send):
        raise RuntimeError("boom")

    _, (line,), raised = run_middleware(fail)
    assert isinstance(raised, RuntimeError)
    assert line["status"] == 500 and line["level"] == "ERROR" and line["rows"] is None


# ---------------------------------------------------------------------------- Lambda, under awslambdaric


def lambda_events() -> list[dict]:
    events = []
    for case in sorted(CASES):
        method, path, body, content_type, *_ = CASES[case]
        events.append(http_api_v2(body, path=path, method=method, content_type=content_type))
    return events


@pytest.mark.parametrize("log_format", ["JSON", "Text"])
def test_lambda_logs_one_line_per_request_with_its_ids(task_dir, trained, log_format, tmp_path):
    """The image's entry command from the read-only code directory as an unprivileged user, with
    AWS_LAMBDA_LOG_FORMAT as Lambda sets it."""
    env = {"AWS_LAMBDA_FUNCTION_NAME": "xgb-classifier", "AWS_LAMBDA_LOG_FORMAT": log_format}
    finished, api, output = run_entry_command(task_dir, lambda_events(), tmp_path / "awslambdaric.log", len(CASES), env)
    assert finished and not api.errors, (api.errors, output[-3000:])
    lines = request_lines(output)
    assert len(lines) == len(CASES), output[-4000:]
    for number, (case, line) in enumerate(zip(sorted(CASES), lines, strict=True)):
        check_line(line, case, trained.tag, json_format=log_format == "JSON")
        assert line["request_id"] == f"request-{number}"
        assert line["api_request_id"] == "JKJaXmPLvHcESHA="
        if log_format == "JSON":  # awslambdaric's own keys, alongside the request's
            assert line["requestId"] == f"request-{number}" and line["logger"] == "xgb_classifier.requests"
        answer = api.results[f"request-{number}"]
        assert answer["statusCode"] == CASES[case][4]
        assert answer["headers"]["x-model-version"] == trained.tag
    assert "Traceback" not in output and "stackTrace" not in output, output[-3000:]
    assert '"level": "ERROR"' not in output and "[ERROR]" not in output, output[-3000:]


@pytest.mark.unit
@pytest.mark.parametrize("route", ["/classify", "/caf\u00e9", "/\udc80", '/"quoted"\n'])
def test_each_line_is_one_line_of_ascii_json_whatever_the_path_holds(route):
    from src.request_log import _json_line

    entry = {"route": route, "status": 200, "latency_ms": 0.25}
    line = _json_line(entry)
    assert line.endswith("\n") and line.count("\n") == 1 and line.isascii()
    assert json.loads(line) == entry
