"""The OpenAPI document tells the truth about `bentoml serve`: checked against the document's own
numbers (src/config.py), over real HTTP, by schemathesis with every check, and by BentoML's own
client. The same document through the Lambda handler: tests/lambda_path/test_lambda_local.py."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import requests

from src import config
from src.config import PROJECT_ROOT
from src.error_middleware import ErrorMiddleware
from src.server_tuning import RequestTimeout
from src.service_page import ModelFacts, page
from src.validation import FLOAT32_MAX
from tests import schemathesis_run
from tests.sample_requests import NARROW, ROW, counting_row, expected_labels, expected_probabilities

PREDICTIONS = config.PREDICTION_ROUTES
OPERATIONS = {f"{method} {route}" for method, route in config.ROUTES}  # what schemathesis calls each
REPORTS = PROJECT_ROOT / "reports"


@pytest.fixture(scope="module")
def document(server) -> dict:
    response = requests.get(f"{server.url}/docs.json", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    return response.json()


def test_request_schema_states_the_validation_rules(document):
    rows = document["components"]["schemas"]["FeatureRows"]
    assert (rows["type"], rows["minItems"], rows["maxItems"]) == ("array", 1, config.MAX_ROWS)
    row = rows["items"]
    assert (row["minItems"], row["maxItems"]) == (config.N_FEATURES, config.N_FEATURES)
    assert row["items"] == {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    for path in PREDICTIONS:
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"] is True and list(body["content"]) == ["application/json"]
        assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/FeatureRows"}


def test_every_status_the_service_answers_is_declared_with_one_error_shape(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["additionalProperties"] is False
    for path in PREDICTIONS:
        responses = document["paths"][path]["post"]["responses"]
        assert set(responses) == {"200", "400", "404", "405", "413", "415", "500", "504"}
    for name, response in document["components"]["responses"].items():
        content = response["content"]["application/json"]
        assert list(response["content"]) == ["application/json"], name
        assert content["schema"] == {"$ref": "#/components/schemas/Error"} and list(content["example"]) == ["error"]
        assert "X-Model-Version" in response["headers"], name
    assert "Allow" in document["components"]["responses"]["Error405"]["headers"]


def test_only_routes_that_exist_are_documented(server, document):
    assert "/metrics" not in document["paths"]
    for path, operations in document["paths"].items():
        for method in operations:
            kwargs = {"json": [ROW]} if method == "post" else {}
            response = requests.request(method, f"{server.url}{path}", timeout=10, **kwargs)
            assert response.status_code == 200, (method, path, response.text[:200])
    assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404


def test_document_describes_this_model_not_bentoml(document, trained):
    info = document["info"]
    assert info["version"] == trained.tag and info["title"] == config.SERVICE_NAME
    text = info["description"]
    assert "Machine Learning Service created with BentoML" not in text and "BentoML" not in text
    for fact in (
        trained.tag,
        *config.FEATURE_NAMES[:1],
        str(config.DECISION_THRESHOLD),
        f"AUC {trained.metrics['auc']:.4f}",
        f"accuracy {trained.metrics['accuracy']:.4f}",
        "curl -X POST",
        "python -m src.client",
    ):
        assert fact in text, fact
    assert "contact" not in info


@pytest.mark.parametrize(
    "method, path, body, content_type, status, says",
    [
        ("POST", "/classify", "[]", "application/json", 400, "got a 1-D array of shape (0,)"),
        (
            "POST",
            "/classify",
            json.dumps([ROW[:NARROW]]),
            "application/json",
            400,
            f"got {NARROW} columns per row, not {config.N_FEATURES}",
        ),
        (
            "POST",
            "/predict_proba",
            json.dumps([ROW] * (config.MAX_ROWS + 1)),
            "application/json",
            413,
            f"at most {config.MAX_ROWS} rows",
        ),
        ("POST", "/classify", json.dumps([ROW]), "text/csv", 415, "send 'application/json'"),
        ("GET", "/nowhere", None, None, 404, "no such path: '/nowhere'; the service answers POST /classify"),
        ("GET", "/classify", None, None, 405, "'/classify' does not take GET; it takes POST"),
        ("DELETE", "/docs.json", None, None, 405, "does not take DELETE"),
    ],
)
def test_each_error_is_one_json_object_with_the_message(server, method, path, body, content_type, status, says):
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.request(method, f"{server.url}{path}", data=body, headers=headers, timeout=30)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert list(answer) == ["error"] and says in answer["error"], answer
    assert not answer["error"].startswith("BentoService")
    if status == 405:
        assert response.headers["allow"]


def _asgi_answer(app, method="POST", path="/classify") -> tuple[int, dict, bytes]:
    """Run one request through an ASGI app in this process; (status, headers, body)."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    async def call():
        try:
            await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
        except RuntimeError:
            pass

    asyncio.run(call())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def test_the_timeout_and_failures_get_the_same_shape():
    async def slow(scope, receive, send):
        await asyncio.sleep(5)

    async def fails(scope, receive, send):
        raise RuntimeError("boom")

    async def starts_then_fails(scope, receive, send):
        await send({"type": "http.response.start", "status": 400, "headers": []})
        raise RuntimeError("boom")

    async def bentoml_500(scope, receive, send):  # what BentoML answers when an endpoint raises
        body = json.dumps("An error has occurred in BentoML user code when handling this request").encode()
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    service_page = page(ModelFacts(tag="m:1"))
    cases = [
        (RequestTimeout(slow, timeout=0.05), 504, "not answered within 0.05 s"),
        (fails, 500, "the service failed to answer"),
        (starts_then_fails, 500, "the service failed to answer"),
        (bentoml_500, 500, "An error has occurred in BentoML user code"),
    ]
    for app, status, says in cases:
        code, headers, body = _asgi_answer(ErrorMiddleware(app, page=service_page))
        assert code == status and headers["content-type"] == "application/json"
        assert headers["content-length"] == str(len(body))
        answer = json.loads(body)
        assert list(answer) == ["error"] and answer["error"].startswith(says), answer


def test_bentoml_client_still_reads_the_document(server, booster):
    from bentoml.client import SyncHTTPClient

    client = SyncHTTPClient.from_url(server.url)
    rows = np.asarray([ROW, counting_row()], dtype=np.float64)
    np.testing.assert_array_equal(client.classify(rows), expected_labels(booster, rows))
    np.testing.assert_allclose(client.predict_proba(rows), expected_probabilities(booster, rows), rtol=1e-6)


def test_schemathesis_finds_no_failure_against_bentoml_serve(server):
    outcome = schemathesis_run.run(f"{server.url}/docs.json", REPORTS / "schemathesis-serve.ndjson")
    (REPORTS / "schemathesis-serve.json").write_text(json.dumps(outcome.summary(), indent=2))
    print(f"\nschemathesis against bentoml serve: {dict(outcome.cases)} ({sum(outcome.cases.values())} cases)")
    assert outcome.exit_code == 0 and not outcome.failures, outcome.output
    assert set(outcome.cases) >= OPERATIONS
    for operation in (f"POST {route}" for route in PREDICTIONS):
        assert outcome.cases[operation] >= schemathesis_run.MAX_EXAMPLES, outcome.cases
        assert {200, 400, 405, 415} <= set(outcome.statuses[operation]), outcome.statuses[operation]
    ran = {name for (name, status) in outcome.checks if status == "success"}
    assert {
        "positive_data_acceptance",
        "negative_data_rejection",
        "response_schema_conformance",
        "status_code_conformance",
        "unsupported_method",
        "response_headers_conformance",
    } <= ran


def test_schemathesis_would_catch_a_document_that_lies(server, document, tmp_path):
    """The same run on a copy of the document that allows zero rows: the refused `[]` is found."""
    lying = json.loads(json.dumps(document))
    del lying["components"]["schemas"]["FeatureRows"]["minItems"]
    spec = tmp_path / "lying.json"
    spec.write_text(json.dumps(lying))
    outcome = schemathesis_run.run(
        str(spec), tmp_path / "lying.ndjson", "--url", server.url, "--include-path", "/classify"
    )
    assert outcome.exit_code != 0
    assert ("POST /classify", "positive_data_acceptance") in outcome.failures, outcome.output
