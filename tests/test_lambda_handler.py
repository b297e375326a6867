"""The Lambda handler on API Gateway events, from the build context `bentoctl build` makes,
running from a read-only code directory with only /tmp writable, as on AWS Lambda."""

import json
import sys

import numpy as np
import pytest

from src import config
from tests.conftest import PROJECT_ROOT
from tests.lambda_events import http_api_v2, rest_api_v1
from tests.lambda_harness import invoke, lambda_env, run_read_only

ROWS = np.random.default_rng(4).normal(scale=2, size=(40, 7)).round(5)


def test_context_has_handler_code_model_and_dockerfile(lambda_context, trained):
    name, version = trained.tag.split(":")
    assert (lambda_context / "app" / "lambda_app.py").is_file()
    assert (lambda_context / "app" / "src" / "service.py").is_file()
    store = lambda_context / "app" / "bentoml" / "models" / name
    assert (store / version / "saved_model.ubj").is_file()
    assert (store / "latest").read_text() == version
    dockerfile = (lambda_context / "env" / "docker" / "Dockerfile").read_text()
    assert f"XGB_MODEL_TAG={trained.tag}" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "awslambdaric"]' in dockerfile
    lines = (lambda_context / "requirements-lambda.txt").read_text().splitlines()
    packages = {line.split("==")[0].lower() for line in lines if line and not line.startswith("#")}
    assert {"bentoml", "xgboost-cpu", "mangum", "awslambdaric"} <= packages
    assert not packages & {"nvidia-nccl-cu12", "xgboost", "scikit-learn", "pandas", "matplotlib"}


def test_harness_really_forbids_writes_to_the_code_directory(task_dir):
    probe = f"open('{task_dir}/probe.txt', 'w').write('x')"
    result = run_read_only([sys.executable, "-c", probe], task_dir, lambda_env(task_dir))
    assert result.returncode != 0
    assert "Permission denied" in result.stderr or "Read-only file system" in result.stderr


def test_first_call_answers_labels_equal_to_in_process_predictions(task_dir, booster):
    report = invoke(task_dir, [http_api_v2(ROWS.tolist()), http_api_v2(ROWS.tolist(), path="/predict_proba")])
    labels, proba = report["responses"]
    assert labels["statusCode"] == 200, labels
    expected = booster.inplace_predict(ROWS.astype(np.float32))
    assert json.loads(labels["body"]) == (expected >= 0.5).astype(int).tolist()
    assert proba["statusCode"] == 200
    np.testing.assert_allclose(json.loads(proba["body"]), expected, rtol=1e-6)
    assert labels["headers"]["content-type"] == "application/json"


def test_model_is_loaded_once_per_container_not_per_event(task_dir):
    report = invoke(task_dir, [http_api_v2([ROWS[0].tolist()])] * 30, repeat=200)
    assert all(r["statusCode"] == 200 for r in report["responses"])
    assert report["model_loads"] == 1, "the runner was initialised again during the events"


@pytest.mark.parametrize("make_event", [
    lambda body, **kw: http_api_v2(body, **kw),
    lambda body, **kw: http_api_v2(body, stage="prod", **kw),
    lambda body, **kw: http_api_v2(body, base64_body=True, **kw),
    lambda body, **kw: rest_api_v1(body, **kw),
], ids=["v2-default-stage", "v2-named-stage", "v2-base64-body", "v1-rest-api"])
def test_event_shapes_all_reach_the_service(task_dir, make_event):
    report = invoke(task_dir, [make_event([ROWS[0].tolist()]), make_event([ROWS[0].tolist()], path="/predict_proba")])
    labels, proba = report["responses"]
    assert labels["statusCode"] == 200 and json.loads(labels["body"]) in ([0], [1])
    assert proba["statusCode"] == 200 and 0 <= json.loads(proba["body"])[0] <= 1


BAD = [
    ("1-D", json.dumps(ROWS[0].tolist()), "application/json", 400, "wrap a single row"),
    ("wrong width", json.dumps([[1, 2, 3]]), "application/json", 400, "3 columns"),
    ("strings", json.dumps([["a"] * 7]), "application/json", 400, "a string"),
    ("NaN", "[[NaN,1,2,3,4,5,6]]", "application/json", 400, "NaN"),
    ("not JSON", "{oops", "application/json", 400, "not valid JSON"),
    ("empty", "", "application/json", 400, "empty request body"),
    ("content type", json.dumps([[1] * 7]), "text/plain", 415, "application/json"),
    ("over 6 MB", "[" + ",".join(["[1,2,3,4,5,6,7]"] * 500_000) + "]", "application/json", 413, str(config.MAX_BODY_BYTES)),
]


def test_bad_bodies_get_the_same_4xx_as_locally(task_dir):
    events = [http_api_v2(body, content_type=ct) for _, body, ct, _, _ in BAD]
    events.append(http_api_v2([[1] * 7]))
    report = invoke(task_dir, events)
    for (case, _, _, status, message), response in zip(BAD, report["responses"]):
        assert response["statusCode"] == status, (case, response)
        assert message in response["body"], (case, response["body"][:300])
    assert report["responses"][-1]["statusCode"] == 200, "still answers after bad input"


def test_unknown_route_is_404_and_non_http_event_is_explained(task_dir):
    report = invoke(task_dir, [http_api_v2([[1] * 7], path="/nowhere"), {"key1": "value1"}])
    not_found, console_test = report["responses"]
    assert not_found["statusCode"] == 404
    assert console_test["statusCode"] == 400 and "API Gateway" in console_test["body"]


def test_model_tag_is_exact_in_the_image(lambda_context):
    dockerfile = (lambda_context / "env" / "docker" / "Dockerfile").read_text()
    tag_line = next(line for line in dockerfile.splitlines() if "XGB_MODEL_TAG=" in line)
    assert ":latest" not in tag_line and config.MODEL_NAME in tag_line


def test_every_route_main_tf_declares_is_answered(task_dir):
    """The routes API Gateway forwards (main.tf's local.routes) all exist in the service."""
    import re

    text = (PROJECT_ROOT / "main.tf").read_text()
    block = text[text.index("routes = toset(["):text.index("])", text.index("routes = toset(["))]
    routes = re.findall(r'"(GET|POST) ([^"]+)"', block)
    assert len(routes) >= 6
    concrete = {"{proxy+}": "swagger-ui-bundle.js"}
    events = []
    for method, path in routes:
        for pattern, value in concrete.items():
            path = path.replace(pattern, value)
        body = [[0.0] * 7] if method == "POST" else ""
        events.append(http_api_v2(body, path=path, method=method, content_type="application/json"))
    report = invoke(task_dir, events)
    for (method, path), response in zip(routes, report["responses"]):
        assert response["statusCode"] == 200, (method, path, response.get("body", "")[:200])


def test_readmes_sample_event_is_answered(task_dir):
    """deploy/sample-event.json, the README's local try of the image, gets labels back."""
    event = json.loads((PROJECT_ROOT / "deploy" / "sample-event.json").read_text())
    response = invoke(task_dir, [event])["responses"][0]
    assert response["statusCode"] == 200
    assert len(json.loads(response["body"])) == len(json.loads(event["body"]))


def largest_accepted_body() -> str:
    """A body of exactly the largest size the service accepts: whole rows, then spaces."""
    row = "[0.5,-1.25,0.125,2.5,-0.75,0.625,1.5]"
    rows = min(config.MAX_ROWS, (config.MAX_BODY_BYTES - 2) // (len(row) + 1))
    body = "[" + ",".join([row] * rows) + "]"
    return body + " " * (config.MAX_BODY_BYTES - len(body))


def test_the_largest_accepted_body_fits_a_lambda_event_with_10_kb_of_headers(task_dir):
    """Lambda's 6 MB is for the whole event; an HTTP API allows 10 KB of request line and headers."""
    body = largest_accepted_body()
    event = http_api_v2(body)
    event["headers"]["x-padding"] = "p" * (10 * 1024 - sum(len(k) + len(v) + 4 for k, v in event["headers"].items()))
    assert len(json.dumps(event).encode()) <= config.LAMBDA_PAYLOAD_LIMIT_BYTES
    too_big = http_api_v2(body + " ")
    report = invoke(task_dir, [event, too_big])
    accepted, refused = report["responses"]
    assert accepted["statusCode"] == 200, accepted["body"][:300]
    assert refused["statusCode"] == 413


def test_the_answer_for_the_most_rows_fits_lambdas_response_limit(task_dir):
    rows = np.random.default_rng(7).normal(scale=3, size=(config.MAX_ROWS, config.N_FEATURES)).round(3)
    report = invoke(task_dir, [http_api_v2(rows.tolist(), path="/predict_proba")])
    answer = report["responses"][0]
    assert answer["statusCode"] == 200
    assert len(json.loads(answer["body"])) == config.MAX_ROWS
    assert len(json.dumps(answer).encode()) <= config.LAMBDA_PAYLOAD_LIMIT_BYTES
