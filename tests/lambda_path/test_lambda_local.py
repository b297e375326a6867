"""`python -m deploy.lambda_local`: the Lambda handler behind a local API Gateway, over real HTTP.

The endpoint runs the build context the real `bentoml build` + `bentoctl build` made, read-only,
under the real awslambdaric; curl, the client and schemathesis call it as they would call the
deployed URL. The translation between HTTP and payload 2.0 events, and the function's life
(timeouts, crashes, a failed start, a read-only code directory), are checked on their own.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from bench.processes import answers_get, free_port, start_server
from deploy import lambda_local
from deploy.lambda_runtime import (
    FunctionConfiguration,
    FunctionError,
    LocalFunction,
    context_from_bento,
    read_only_copy,
)
from src import client
from src.config import PROJECT_ROOT
from tests import schemathesis_run
from tests.commands import base_env, run_python
from tests.sample_requests import ROW, counting_row, expected_labels

ROWS = [ROW, counting_row()]


# ---------------------------------------------------------------------------- requests into events and back


@pytest.mark.unit
def test_a_request_becomes_the_payload_2_event_api_gateway_sends():
    headers = [
        ("Host", "127.0.0.1:3001"),
        ("Content-Type", "application/json"),
        ("X-Twice", "a"),
        ("X-Twice", "b"),
        ("Cookie", "a=1; b=2"),
        ("User-Agent", "curl/8.5.0"),
    ]
    event = lambda_local.http_event(
        "POST", "/classify?x=1&x=2&y=", headers, b"[[1]]", "127.0.0.1", request_id="abc=", now=1_700_000_000.5
    )
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert (event["rawPath"], event["rawQueryString"]) == ("/classify", "x=1&x=2&y=")
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["headers"] == {
        "host": "127.0.0.1:3001",
        "content-type": "application/json",
        "x-twice": "a,b",
        "user-agent": "curl/8.5.0",
    }
    assert event["cookies"] == ["a=1", "b=2"]
    assert (event["body"], event["isBase64Encoded"]) == ("[[1]]", False)
    context = event["requestContext"]
    assert context["stage"] == "$default" and context["requestId"] == "abc="
    assert context["http"] == {
        "method": "POST",
        "path": "/classify",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8.5.0",
    }
    assert context["timeEpoch"] == 1_700_000_000_500 and context["time"] == "14/Nov/2023:22:13:20 +0000"


@pytest.mark.unit
@pytest.mark.parametrize(
    "content_type, encoded",
    [
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        ("text/csv", False),
        ("application/xml", False),
        ("application/javascript", False),
        ("application/octet-stream", True),
        ("application/vnd.api+json", True),
        ("multipart/form-data; boundary=x", True),
        (None, True),
    ],
)
def test_bodies_are_base64_encoded_where_api_gateway_encodes_them(content_type, encoded):
    headers = [("Content-Type", content_type)] if content_type else []
    event = lambda_local.http_event("POST", "/classify", headers, b"[[1, 2]]", "127.0.0.1")
    assert event["isBase64Encoded"] is encoded
    assert (base64.b64decode(event["body"]) if encoded else event["body"].encode()) == b"[[1, 2]]"


@pytest.mark.unit
def test_no_body_no_query_and_invalid_utf8():
    event = lambda_local.http_event("GET", "/livez", [], b"", "127.0.0.1")
    assert "body" not in event and "queryStringParameters" not in event and "cookies" not in event
    raw = b"[[1, 2, \xff]]"
    event = lambda_local.http_event("POST", "/classify", [("content-type", "application/json")], raw, "127.0.0.1")
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == raw


@pytest.mark.unit
def test_a_result_becomes_the_http_answer():
    status, headers, body = lambda_local.http_answer(
        {
            "statusCode": 201,
            "headers": {"content-type": "image/png", "x-a": "1"},
            "cookies": ["s=1; Path=/", "t=2"],
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    )
    assert (status, body) == (201, b"\x89PNG")
    assert headers == [
        ("content-type", "image/png"),
        ("x-a", "1"),
        ("set-cookie", "s=1; Path=/"),
        ("set-cookie", "t=2"),
    ]
    assert lambda_local.http_answer({"statusCode": 204}) == (204, [], b"")
    assert lambda_local.http_answer([1, 0]) == (200, [("content-type", "application/json")], b"[1, 0]")


# ---------------------------------------------------------------------------- the function's life

FAKE_HANDLER = """\
import os, time
if os.environ.get("FAIL_INIT"):
    raise RuntimeError("cannot start: " + os.environ["FAIL_INIT"])

def handler(event, context):
    if event.get("action") == "sleep":
        time.sleep(event["seconds"])
    if event.get("action") == "crash":
        os._exit(3)
    if event.get("action") == "write":
        try:
            open(os.path.join(os.path.dirname(__file__), "written"), "w").close()
            return {"statusCode": 200, "body": "written"}
        except OSError as exc:
            return {"statusCode": 200, "body": type(exc).__name__}
    return {"statusCode": 200, "body": f"{os.getpid()} {context.aws_request_id} {os.environ['HOME']}"}
"""


@pytest.fixture
def fake_task(tmp_path):
    context = tmp_path / "context"
    (context / "app").mkdir(parents=True)
    (context / "app" / "lambda_app.py").write_text(FAKE_HANDLER)
    (context / "env" / "docker").mkdir(parents=True)
    (context / "env" / "docker" / "Dockerfile").write_text(
        "FROM scratch\nENV LAMBDA_TASK_ROOT=/var/task \\\n    HOME=/tmp\nWORKDIR /var/task\nUSER 65534:65534\n"
    )
    task = read_only_copy(context)
    yield task
    subprocess.run(["rm", "-rf", str(task.parent)], check=False)


def fake_function(task, **env) -> LocalFunction:
    configuration = replace(FunctionConfiguration.from_project(PROJECT_ROOT), timeout_s=1.5, extra_env=env)
    return LocalFunction(task, Path(sys.executable), configuration, log=subprocess.DEVNULL)


def test_one_container_answers_until_it_times_out_or_crashes_then_a_new_one_starts(fake_task):
    function = fake_function(fake_task)
    try:
        first = function.invoke({})["body"].split()
        second = function.invoke({})["body"].split()
        assert first[0] == second[0] and first[1] != second[1] and first[2] == "/tmp"  # warm: same process
        started = time.monotonic()
        with pytest.raises(FunctionError, match="Task timed out after 1.5 seconds"):
            function.invoke({"action": "sleep", "seconds": 30})
        waited = time.monotonic() - started
        # Ended at its 1.5 s timeout, not after the 30 s the event asks for; generous for a busy runner.
        assert waited < 20, f"the timed-out call took {waited:.1f} s: the function was not stopped at its timeout"
        after_timeout = function.invoke({})["body"].split()[0]
        assert after_timeout != first[0]  # a new cold start
        with pytest.raises(FunctionError, match="exited"):
            function.invoke({"action": "crash"})
        assert function.invoke({})["body"].split()[0] not in (first[0], after_timeout)
        assert function.invoke({"action": "write"})["body"] in ("PermissionError", "OSError")
    finally:
        function.close()


def test_a_failed_start_is_reported_with_its_error(fake_task):
    function = fake_function(fake_task, FAIL_INIT="no model")
    try:
        with pytest.raises(FunctionError, match="cannot start: no model"):
            function.invoke({})
    finally:
        function.close()


# ---------------------------------------------------------------------------- the real handler over HTTP


def test_make_lambda_local_builds_the_context_bentoctl_builds(built_bento, lambda_context, tmp_path):
    """`--bento` (make lambda-local) hands the operator what `bentoctl build` hands it."""
    made = context_from_bento(built_bento, tmp_path)

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert files(made) == files(lambda_context)
    assert (made / "app" / "lambda_app.py").is_file() and (made / "env" / "docker" / "Dockerfile").is_file()


@pytest.fixture(scope="module")
def endpoint(lambda_context, tmp_path_factory):
    """`python -m deploy.lambda_local` on the build context `bentoctl build` made, on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "deploy.lambda_local", "--context", str(lambda_context), "--port", str(port)]
    log = tmp_path_factory.mktemp("lambda-local") / "lambda-local.log"
    server = start_server(
        argv, port, cwd=PROJECT_ROOT, env=base_env(), log=log, ready=answers_get("/readyz", timeout=2), timeout=120
    )
    yield server
    server.stop()
    assert server.process.returncode == 0, log.read_text()[-3000:]


def test_curl_gets_the_models_answer(endpoint, booster, trained):
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-i",
            "-X",
            "POST",
            f"{endpoint.url}/classify",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(ROWS),
        ],
        capture_output=True,
        timeout=60,
    )
    head, _, body = result.stdout.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), result.stdout
    assert f"x-model-version: {trained.tag}" in head.lower()
    assert json.loads(body) == expected_labels(booster, ROWS)


def test_the_client_works_as_against_the_deployed_url(endpoint, data_path, booster):
    result = run_python("-m", "src.client", "--url", endpoint.url, "--csv", str(data_path), "--rows", "5")
    assert result.returncode == 0, result.stderr
    answers = [int(line.rsplit("-> ", 1)[1]) for line in result.stdout.strip().splitlines()]
    assert answers == expected_labels(booster, client.read_rows(data_path, 5))
    bad = run_python("-m", "src.client", "--url", endpoint.url + "/nowhere")
    assert bad.returncode == 1 and bad.stderr.startswith("error: 404 from ") and "no such path" in bad.stderr


def test_answers_through_the_handler_keep_the_contract(endpoint):
    page = requests.get(f"{endpoint.url}/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>XGBoost binary classifier" in page.text
    head = requests.head(f"{endpoint.url}/livez", timeout=30)
    assert head.status_code == 200 and head.content == b""
    not_utf8 = requests.post(
        f"{endpoint.url}/classify", data=b"[[1, 2, \xff]]", headers={"Content-Type": "application/json"}, timeout=30
    )
    assert not_utf8.status_code == 400 and "not valid JSON" in not_utf8.json()["error"]
    other_method = requests.request("QUERY", f"{endpoint.url}/classify", timeout=30)
    assert other_method.status_code == 405 and other_method.json()["error"].endswith("it takes POST")


def test_an_event_over_lambdas_limit_gets_api_gateways_413(endpoint):
    body = b"[" + b" " * (lambda_local.LAMBDA_EVENT_LIMIT_BYTES + 1024) + b"]"
    response = requests.post(
        f"{endpoint.url}/classify", data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == 413 and response.json() == {"message": "Request Entity Too Large"}
    assert requests.get(f"{endpoint.url}/livez", timeout=30).status_code == 200


def test_schemathesis_finds_no_failure_against_the_lambda_handler(endpoint):
    reports = PROJECT_ROOT / "reports"
    outcome = schemathesis_run.run(f"{endpoint.url}/docs.json", reports / "schemathesis-lambda-local.ndjson")
    (reports / "schemathesis-lambda-local.json").write_text(json.dumps(outcome.summary(), indent=2))
    print(f"\nschemathesis against lambda-local: {dict(outcome.cases)} ({sum(outcome.cases.values())} cases)")
    assert outcome.exit_code == 0 and not outcome.failures, outcome.output
    for operation in ("POST /classify", "POST /predict_proba"):
        assert outcome.cases[operation] >= schemathesis_run.MAX_EXAMPLES, outcome.cases
        assert {200, 400, 405, 415} <= set(outcome.statuses[operation]), outcome.statuses[operation]
    assert {"GET /", "GET /docs.json", "GET /livez", "GET /readyz"} <= set(outcome.cases)
