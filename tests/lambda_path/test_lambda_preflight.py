"""A browser's CORS preflight that API Gateway forwards to the function (main.tf gives OPTIONS on
the prediction paths a route without authorization when auth and CORS are both on) is answered
with an empty 204, to which API Gateway adds its configured CORS headers; any other OPTIONS or
wrong method still gets the service's 405."""

import json

from deploy.lambda_events import http_api_v2
from deploy.lambda_runtime import run_in_process
from tests.lambda_events import rest_api_v1


def preflight(event: dict, origin: bool = True, requested_method: bool = True) -> dict:
    headers = event["headers"]
    headers.pop("content-type", None)
    headers.pop("Content-Type", None)
    if origin:
        headers["origin"] = "https://app.example.com"
    if requested_method:
        headers["access-control-request-method"] = "POST"
        headers["access-control-request-headers"] = "content-type,authorization"
    return {**event, "body": ""}


def test_a_forwarded_preflight_gets_204_and_other_methods_the_services_405(task_dir):
    events = {
        "v2 preflight": preflight(http_api_v2("", method="OPTIONS")),
        "v2 preflight proba": preflight(http_api_v2("", method="OPTIONS", path="/predict_proba")),
        "v1 preflight": preflight(rest_api_v1("", method="OPTIONS")),
        "OPTIONS without Origin": preflight(http_api_v2("", method="OPTIONS"), origin=False),
        "OPTIONS without a requested method": preflight(http_api_v2("", method="OPTIONS"), requested_method=False),
        "GET": http_api_v2("", method="GET"),
    }
    answers = dict(zip(events, run_in_process(task_dir, list(events.values()))["responses"], strict=True))
    for name in ("v2 preflight", "v2 preflight proba", "v1 preflight"):
        assert answers[name]["statusCode"] == 204, (name, answers[name])
        assert answers[name]["body"] == ""
    for name in ("OPTIONS without Origin", "OPTIONS without a requested method", "GET"):
        assert answers[name]["statusCode"] == 405, (name, answers[name])
        assert "takes POST" in json.loads(answers[name]["body"])["error"]
