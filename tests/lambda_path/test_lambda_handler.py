"""The Lambda handler on API Gateway events, from the build context `bentoctl build` makes,
running from a read-only code directory with only /tmp writable, as on AWS Lambda."""

import json
import sys

import numpy as np
import pytest

from deploy.lambda_events import http_api_v2
from deploy.lambda_runtime import code_env, image_command, image_env, run_in_process, run_read_only
from src import config
from src.config import PROJECT_ROOT
from tests.lambda_events import rest_api_v1
from tests.sample_requests import BAD, EXACT_ROW_TEXT, ROWS, N, expected_labels, expected_probabilities, random_rows
from tests.terraform_files import locals_block


def test_context_has_handler_code_model_and_dockerfile(lambda_context, trained):
    name, version = trained.tag.split(":")
    assert (lambda_context / "app" / "lambda_app.py").is_file()
    assert (lambda_context / "app" / "src" / "service.py").is_file()
    store = lambda_context / "app" / "bentoml" / "models" / name
    assert (store / version / "saved_model.ubj").is_file()
    assert (store / "latest").read_text() == version
    dockerfile = lambda_context / "env" / "docker" / "Dockerfile"
    assert image_env(dockerfile, {})["XGB_MODEL_TAG"] == trained.tag
    assert image_command(dockerfile) == ["python", "-m", "awslambdaric", "lambda_app.handler"]
    lines = (lambda_context / "requirements-lambda.txt").read_text().splitlines()
    packages = {line.split("==")[0].lower() for line in lines if line and not line.startswith("#")}
    assert {"bentoml", "xgboost-cpu", "mangum", "awslambdaric"} <= packages
    assert not packages & {"nvidia-nccl-cu12", "xgboost", "scikit-learn", "pandas", "matplotlib"}


def test_harness_really_forbids_writes_to_the_code_directory(task_dir):
    probe = f"open('{task_dir}/probe.txt', 'w').write('x')"
    result = run_read_only([sys.executable, "-c", probe], task_dir, code_env(task_dir))
    assert result.returncode != 0
    assert "Permission denied" in result.stderr or "Read-only file system" in result.stderr


EVENT_SHAPES = {
    "v2-default-stage": lambda body, **kw: http_api_v2(body, **kw),
    "v2-named-stage": lambda body, **kw: http_api_v2(body, stage="prod", **kw),
    "v2-base64-body": lambda body, **kw: http_api_v2(body, base64_body=True, **kw),
    "v1-rest-api": lambda body, **kw: rest_api_v1(body, **kw),
}


def main_tf_routes() -> list[tuple[str, str]]:
    """(method, path) of each route API Gateway forwards: main.tf's local.routes, parsed."""
    expression = locals_block()["routes"]
    assert expression.startswith("${toset([") and expression.endswith("])}"), expression
    return [tuple(route.split(" ", 1)) for route in json.loads(expression.removeprefix("${toset(").removesuffix(")}"))]


def largest_accepted_body() -> str:
    """A body of exactly the largest size the service accepts: whole rows, then spaces."""
    row = EXACT_ROW_TEXT
    rows = min(config.MAX_ROWS, (config.MAX_BODY_BYTES - 2) // (len(row) + 1))
    body = "[" + ",".join([row] * rows) + "]"
    return body + " " * (config.MAX_BODY_BYTES - len(body))


def largest_event_with_10_kb_of_headers() -> dict:
    """Lambda's 6 MB is for the whole event; an HTTP API allows 10 KB of request line and headers."""
    event = http_api_v2(largest_accepted_body())
    event["headers"]["x-padding"] = "p" * (10 * 1024 - sum(len(k) + len(v) + 4 for k, v in event["headers"].items()))
    return event


MOST_ROWS = random_rows(config.MAX_ROWS, seed=7, scale=3, decimals=3)
SAMPLE_EVENT = json.loads((PROJECT_ROOT / "deploy" / "sample-event.json").read_text())
REPEATS = 30


def all_events() -> dict[str, dict]:
    """Every event the tests below send, by name; the first is the container's first call."""
    events = {
        "labels": http_api_v2(ROWS.tolist()),
        "proba": http_api_v2(ROWS.tolist(), path="/predict_proba"),
        **{f"{shape} labels": make([ROWS[0].tolist()]) for shape, make in EVENT_SHAPES.items()},
        **{f"{shape} proba": make([ROWS[0].tolist()], path="/predict_proba") for shape, make in EVENT_SHAPES.items()},
        **{f"bad: {case}": http_api_v2(body, content_type=ct) for case, body, ct, _, _ in BAD},
        "after bad": http_api_v2([[1] * N]),
        "not found": http_api_v2([[1] * N], path="/nowhere"),
        "console test": {"key1": "value1"},
        "sample event": SAMPLE_EVENT,
        "largest accepted": largest_event_with_10_kb_of_headers(),
        "one byte more": http_api_v2(largest_accepted_body() + " "),
        "most rows": http_api_v2(MOST_ROWS.tolist(), path="/predict_proba"),
        **{
            f"route {method} {path}": http_api_v2(
                [[0.0] * N] if method != "GET" else "",
                method="POST" if method == "ANY" else method,
                path=path.replace("{proxy+}", "swagger-ui-bundle.js"),
            )
            for method, path in main_tf_routes()
        },
        **{
            f"route {method} {path} by GET": http_api_v2("", method="GET", path=path)
            for method, path in main_tf_routes()
            if method == "ANY"
        },
        **{f"repeat {n}": http_api_v2([ROWS[0].tolist()]) for n in range(REPEATS)},
    }
    return events


@pytest.fixture(scope="module")
def run(task_dir):
    """All the events in one fresh read-only process, in order, then 200 more of the first."""
    events = all_events()
    report = run_in_process(task_dir, list(events.values()), repeat=200)
    report["by_name"] = dict(zip(events, report["responses"], strict=True))
    return report


def test_first_call_answers_labels_equal_to_in_process_predictions(run, booster):
    labels, proba = run["responses"][:2]
    assert labels is run["by_name"]["labels"]
    assert labels["statusCode"] == 200, labels
    expected = expected_probabilities(booster, ROWS)
    assert json.loads(labels["body"]) == expected_labels(booster, ROWS)
    assert proba["statusCode"] == 200
    np.testing.assert_allclose(json.loads(proba["body"]), expected, rtol=1e-6)
    assert labels["headers"]["content-type"] == "application/json"


def test_model_is_loaded_once_per_container_not_per_event(run):
    """Sampled right after import, after the first event and after the last of them all."""
    assert all(run["by_name"][f"repeat {n}"]["statusCode"] == 200 for n in range(REPEATS))
    assert len(run["warm_s"]) == 200
    assert run["model_loads"] == 1, "the model was not loaded at import, or was loaded again during the events"


@pytest.mark.parametrize("shape", sorted(EVENT_SHAPES))
def test_event_shapes_all_reach_the_service(run, booster, shape):
    labels, proba = run["by_name"][f"{shape} labels"], run["by_name"][f"{shape} proba"]
    expected = expected_probabilities(booster, ROWS[:1])
    assert labels["statusCode"] == 200 and json.loads(labels["body"]) == expected_labels(booster, ROWS[:1])
    assert proba["statusCode"] == 200
    np.testing.assert_allclose(json.loads(proba["body"]), expected, rtol=1e-6)


def test_bad_bodies_get_the_same_4xx_as_locally(run):
    for case, _, _, status, message in BAD:
        response = run["by_name"][f"bad: {case}"]
        assert response["statusCode"] == status, (case, response)
        assert message in response["body"], (case, response["body"][:300])
    assert run["by_name"]["after bad"]["statusCode"] == 200, "still answers after bad input"


def test_unknown_route_is_404_and_non_http_event_is_explained(run):
    assert run["by_name"]["not found"]["statusCode"] == 404
    console_test = run["by_name"]["console test"]
    assert console_test["statusCode"] == 400 and "API Gateway" in console_test["body"]


def test_model_tag_is_exact_in_the_image_and_in_the_handler_tests(lambda_context, task_dir, trained):
    tag = image_env(lambda_context / "env" / "docker" / "Dockerfile", {})["XGB_MODEL_TAG"]
    assert tag == trained.tag and not tag.endswith(":latest")
    assert code_env(task_dir)["XGB_MODEL_TAG"] == tag


def test_every_route_main_tf_declares_is_answered(run):
    routes = main_tf_routes()
    assert len(routes) >= 6 and {method for method, _ in routes} == {"GET", "ANY"}
    for method, path in routes:
        response = run["by_name"][f"route {method} {path}"]
        assert response["statusCode"] == 200, (method, path, response.get("body", "")[:200])
        if method == "ANY":
            wrong = run["by_name"][f"route {method} {path} by GET"]
            assert wrong["statusCode"] == 405 and "error" in json.loads(wrong["body"]), wrong


def test_readmes_sample_event_is_answered(run, booster):
    """deploy/sample-event.json, docs/deploy.md's local try of the image, gets the booster's labels back."""
    response = run["by_name"]["sample event"]
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == expected_labels(booster, json.loads(SAMPLE_EVENT["body"]))


def test_the_largest_accepted_body_fits_a_lambda_event_with_10_kb_of_headers(run):
    assert len(json.dumps(largest_event_with_10_kb_of_headers()).encode()) <= config.LAMBDA_PAYLOAD_LIMIT_BYTES
    accepted, refused = run["by_name"]["largest accepted"], run["by_name"]["one byte more"]
    assert accepted["statusCode"] == 200, accepted["body"][:300]
    assert refused["statusCode"] == 413


def test_the_answer_for_the_most_rows_fits_lambdas_response_limit(run, booster):
    answer = run["by_name"]["most rows"]
    assert answer["statusCode"] == 200
    np.testing.assert_allclose(json.loads(answer["body"]), expected_probabilities(booster, MOST_ROWS), rtol=1e-6)
    assert len(json.dumps(answer).encode()) <= config.LAMBDA_PAYLOAD_LIMIT_BYTES
