"""AWS Lambda entry point: API Gateway events in, the Bento's service's answers out.

The image runs ``python -m awslambdaric lambda_app.handler``. At import (the cold start, once per
container) this module imports the service that bento.yaml names (``BENTO_SERVICE``, written into
the image by the operator) from the read-only code directory and runs its ASGI start-up once, as
`bentoml serve` does (runners loaded, start-up hooks run); each event then goes through Mangum to
the service's ASGI app, so the function answers as `bentoml serve` does. Nothing is written
outside /tmp. A named stage's ``/<stage>`` prefix is removed before routing, an event that is
not an HTTP event (the console's test button) gets an explanation, and a browser's CORS preflight
that API Gateway forwards (main.tf's unauthenticated OPTIONS routes) gets an empty 204, to which
API Gateway adds the CORS headers it is configured with. A batch of CSV rows from main.tf's batch
state machine (a Distributed Map's ``{"Items": [...]}``, :mod:`src.batch_event`) is checked row by
row, its valid rows predicted through the same HTTP path (``/predict_proba``, in requests of at
most ``config.MAX_ROWS`` rows), and answered with a label and probability, or a reason, per row.

The garbage collector is paused during the cold start, which builds hundreds of thousands of
objects that live as long as the process; they are then frozen (left out of later collections).

Under SnapStart (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``) awslambdaric runs the hooks
registered here: before the snapshot, one prediction through the whole HTTP path, so that the
snapshot holds every first-call cost, refused if it does not answer 200 (the publish fails, no
broken snapshot is kept); after each restore, only Python's random generator is reseeded, the one
state here that environments restored from one snapshot must not share (request IDs come from
``os.urandom``, clocks are read per request).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import random
from pathlib import Path

gc.disable()  # until the end of the cold start, below
_HERE = Path(__file__).resolve().parent
os.environ.setdefault("BENTOML_HOME", str(_HERE / "bentoml"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
# One request at a time: nothing waits behind a large one, so it is parsed and predicted inline.
os.environ.setdefault("XGB_OFF_LOOP_PARSE_BYTES", "0")
os.environ.setdefault("XGB_OFF_LOOP_PREDICT_ROWS", "0")

from mangum import Mangum  # noqa: E402
from snapshot_restore_py import register_after_restore, register_before_snapshot  # noqa: E402

from src import batch_event, config  # noqa: E402 (the Bento's code, copied beside this module)
from src.bentoml_adapter import start_app  # noqa: E402


def _import_service(target: str):
    """``package.module:attribute``, as bento.yaml's ``service`` names it."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


service = _import_service(os.environ["BENTO_SERVICE"])
_adapter = Mangum(service.asgi_app, lifespan="off")  # sets up the event loop the start-up runs on
start_app(service.asgi_app)  # once per container; Lambda has no shutdown to run
gc.freeze()  # without a collection first: it would cost more than the little it frees
gc.enable()

NOT_HTTP = (
    "This function serves HTTP requests from API Gateway (payload format 2.0 or 1.0), e.g. "
    f"POST <endpoint>{config.PREDICTION_ROUTES[0]} with a JSON 2-D array body. Call it through the API's URL; "
    "the event it received was not an HTTP event."
)


def _is_http_event(event) -> bool:
    if not isinstance(event, dict):
        return False
    if event.get("version") == "2.0":
        return "http" in event.get("requestContext", {})
    return "httpMethod" in event and "path" in event


def _without_stage(event: dict) -> dict:
    """Drop a leading ``/<stage>`` from the path of a payload-2.0 event on a named stage.

    Mangum routes by ``requestContext.http.path``; ``rawPath`` is rewritten too so the two agree.
    """
    context = event.get("requestContext", {})
    stage = context.get("stage")
    path = context.get("http", {}).get("path", "")
    if event.get("version") != "2.0" or not stage or stage == "$default":
        return event
    prefix = f"/{stage}"
    if path != prefix and not path.startswith(prefix + "/"):
        return event
    stripped = path[len(prefix) :] or "/"
    http = {**context["http"], "path": stripped}
    return {**event, "rawPath": stripped, "requestContext": {**context, "http": http}}


def _is_preflight(event: dict) -> bool:
    """OPTIONS with Origin and Access-Control-Request-Method: what a browser sends before a CORS call."""
    if event.get("version") == "2.0":
        method = event.get("requestContext", {}).get("http", {}).get("method", "")
    else:
        method = event.get("httpMethod", "")
    headers = {str(name).lower() for name in (event.get("headers") or {})}
    return method.upper() == "OPTIONS" and {"origin", "access-control-request-method"} <= headers


PREFLIGHT_ANSWER = {"statusCode": 204, "headers": {}, "body": "", "isBase64Encoded": False}


def warm_up_event() -> dict:
    """A payload 2.0 event for one example row to the first prediction route."""
    route = config.PREDICTION_ROUTES[0]
    http = {"method": "POST", "path": route, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "warm-up"}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": route,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "user-agent": "warm-up"},
        "requestContext": {"http": http, "stage": "$default", "requestId": "warm-up", "routeKey": "$default"},
        "body": json.dumps(config.EXAMPLE_ROWS),
        "isBase64Encoded": False,
    }


@register_before_snapshot
def warm_up() -> None:
    """One prediction before the snapshot; anything but a 200 fails the snapshot."""
    answer = handler(warm_up_event(), None)
    if answer.get("statusCode") != 200:
        raise RuntimeError(f"the warm-up prediction answered {answer.get('statusCode')}: {answer.get('body')}")
    gc.freeze()


@register_after_restore
def reseed() -> None:
    """A fresh seed from the operating system for Python's random generator in each restored
    environment: OpenTelemetry draws the trace and span IDs of BentoML's traces from it."""
    random.seed()


def prediction_event(rows: list[list[float]], request_id: str) -> dict:
    """A payload 2.0 event posting ``rows`` to the probability route, for a batch's valid rows."""
    event = warm_up_event()
    event["body"] = json.dumps(rows)
    event["headers"]["user-agent"] = event["requestContext"]["http"]["userAgent"] = "batch"
    event["requestContext"]["requestId"] = request_id
    event["rawPath"] = event["requestContext"]["http"]["path"] = config.PREDICTION_ROUTES[1]
    return event


def score_batch(event: dict, context) -> dict:
    """Each row of a Distributed Map's batch answered: a label and probability, or why not."""
    batch = batch_event.read(event)
    request_id = getattr(context, "aws_request_id", "batch")
    probabilities, model = [], config.MODEL_TAG
    for start in range(0, len(batch.features), config.MAX_ROWS):
        answer = _adapter(prediction_event(batch.features[start : start + config.MAX_ROWS], request_id), context)
        if answer.get("statusCode") != 200:
            raise batch_event.BatchEventError(f"the service answered {answer.get('statusCode')}: {answer.get('body')}")
        probabilities += json.loads(answer["body"])
        model = answer.get("headers", {}).get("x-model-version", model)
    return batch_event.answer(batch, probabilities, model)


def handler(event, context):
    if batch_event.is_batch_event(event):
        return score_batch(event, context)
    if not _is_http_event(event):
        return {"statusCode": 400, "headers": {"content-type": "text/plain"}, "body": NOT_HTTP}
    if _is_preflight(event):
        return PREFLIGHT_ANSWER
    return _adapter(_without_stage(event), context)
