"""deploy/lambda_runtime.py's Runtime API answers each call as AWS documents it (paths, headers,
status codes, error documents), without a function process: the calls are made here by hand."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from deploy.lambda_runtime import RUNTIME_PREFIX, Invocation, RuntimeApi

pytestmark = pytest.mark.unit


@pytest.fixture
def api():
    runtime_api = RuntimeApi(function_timeout_s=7, function_arn="arn:aws:lambda:eu-west-1:1:function:f")
    yield runtime_api
    runtime_api.close()


def call(api: RuntimeApi, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, JSON body) of one call to the API."""
    request = urllib.request.Request(
        f"http://{api.address}{RUNTIME_PREFIX}/{path}", data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def test_next_hands_out_the_event_with_lambdas_headers_and_takes_its_response(api):
    invocation = Invocation({"rawPath": "/classify"}, request_id="req-1", trace_id="Root=1-abc")
    api.offer(invocation)
    before_ms = time.time() * 1000
    status, headers, event = call(api, "GET", "invocation/next")
    assert (status, event) == (200, {"rawPath": "/classify"})
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-abc"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:aws:lambda:eu-west-1:1:function:f"
    deadline_ms = int(headers["Lambda-Runtime-Deadline-Ms"])
    assert before_ms + 6000 <= deadline_ms <= time.time() * 1000 + 7000  # the function's 7 s from now
    assert api.polling.is_set()

    status, _, answer = call(api, "POST", "invocation/req-1/response", b'{"statusCode": 200}')
    assert (status, answer) == (202, {"status": "OK"})
    assert invocation.done.is_set() and invocation.result == {"statusCode": 200} and invocation.error is None
    status, _, answer = call(api, "POST", "invocation/req-1/response", b"{}")
    assert status == 400 and answer["errorType"] == "InvalidRequestID", "an invocation is answered once"


def test_an_error_keeps_the_runtimes_document_and_error_type(api):
    invocation = Invocation({}, request_id="req-2")
    api.offer(invocation)
    call(api, "GET", "invocation/next")
    document = {"errorMessage": "boom", "errorType": "RuntimeError", "stackTrace": []}
    status, _, answer = call(
        api,
        "POST",
        "invocation/req-2/error",
        json.dumps(document).encode(),
        {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
    )
    assert (status, answer) == (202, {"status": "OK"})
    assert json.loads(invocation.error) == document and invocation.error_type == "Unhandled"


def test_an_error_without_a_body_is_described_by_its_error_type(api):
    invocation = Invocation({}, request_id="req-3")
    api.offer(invocation)
    call(api, "GET", "invocation/next")
    call(api, "POST", "invocation/req-3/error", b"", {"Lambda-Runtime-Function-Error-Type": "Runtime.ExitError"})
    assert json.loads(invocation.error) == {"errorMessage": "Runtime.ExitError", "errorType": "Runtime.ExitError"}


def test_init_error_is_recorded_and_heard_of(api):
    heard = []
    api.init_failed = heard.append
    status, _, answer = call(
        api, "POST", "init/error", b'{"errorMessage": "no model"}', {"Lambda-Runtime-Function-Error-Type": "Init"}
    )
    assert (status, answer) == (202, {"status": "OK"})
    assert api.init_errors == heard == ['{"errorMessage": "no model"}']


def test_unknown_calls_and_ids_get_error_documents(api):
    status, _, answer = call(api, "GET", "invocation/req-9/response")
    assert status == 404 and answer["errorType"] == "UnknownPath" and "errorMessage" in answer
    status, _, answer = call(api, "POST", "invocation/nobody/error", b"{}")
    assert status == 400 and answer["errorType"] == "InvalidRequestID"


def test_a_stopped_generation_is_told_to_exit_and_never_takes_a_later_event(api):
    answers = []
    waiting = threading.Thread(target=lambda: answers.append(call(api, "GET", "invocation/next")))
    waiting.start()
    assert api.polling.wait(5)
    api.new_generation()  # the function was restarted
    waiting.join(10)
    status, _, answer = answers[0]
    assert status == 500 and answer["errorType"] == "Runtime.ExitError"
    later = Invocation({"n": 2}, request_id="req-later")
    api.offer(later)
    status, headers, event = call(api, "GET", "invocation/next")
    assert status == 200 and headers["Lambda-Runtime-Aws-Request-Id"] == "req-later" and event == {"n": 2}
