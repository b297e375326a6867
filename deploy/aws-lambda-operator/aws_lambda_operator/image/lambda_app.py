"""AWS Lambda entry point: API Gateway events in, the BentoML service's answers out.

The image runs ``python -m awslambdaric lambda_app.handler``. At import (the cold start, once
per container) this module loads the service and its model from the read-only code directory
and initialises the runner; each event then goes through Mangum to the service's ASGI app,
so the Lambda answers exactly as ``bentoml serve`` does: same routes, same validation, same
messages.

What the upstream operator got wrong, and what this does instead:
- ``bentoml.load`` wrote ``models/<name>/latest`` into the read-only code directory and the first
  call failed. Here the model store is complete at build time (the ``latest`` file included),
  the tag is exact (``XGB_MODEL_TAG``) and nothing is written outside /tmp.
- Mangum's lifespan ran the service's start-up, and so loaded the model, on every event. Here
  lifespan is off and the runner is initialised once, below.
- A named stage puts ``/<stage>`` in front of the path; it is removed before routing.
- The console's test button sends a non-HTTP event; it gets an explanation, not a stack trace.

The cold start runs with the garbage collector paused: the import builds hundreds of thousands
of objects that live as long as the process, and the collector would otherwise walk them over
and over while they are created. At the end they are frozen (kept out of later collections)
and the collector resumes for what events allocate.

Each request is one JSON log line whose ``request_id`` is the invocation's ``aws_request_id``
(and ``api_request_id`` API Gateway's). In Text log format the line is written to stdout as it
is; in JSON log format (AWS_LAMBDA_LOG_FORMAT=JSON) it is a `logging` record, which
awslambdaric's JSON formatter writes as one object with the same fields (null ones left out).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

gc.disable()  # until the end of the cold start, below
_HERE = Path(__file__).resolve().parent
os.environ.setdefault("BENTOML_HOME", str(_HERE / "bentoml"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

from mangum import Mangum  # noqa: E402

import src.service as service  # noqa: E402  (loads the model)
from src import request_log  # noqa: E402

if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
    request_log.log_through_logging()
service.runner.init_local(quiet=True)
_adapter = Mangum(service.svc.asgi_app, lifespan="off")
gc.freeze()  # without a collection first: it would cost more than the little it frees
gc.enable()

NOT_HTTP = (
    "This function serves HTTP requests from API Gateway (payload format 2.0 or 1.0), e.g. "
    "POST <endpoint>/classify with a JSON 2-D array body. Call it through the API's URL; "
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


def handler(event, context):
    if not _is_http_event(event):
        return {"statusCode": 400, "headers": {"content-type": "text/plain"}, "body": NOT_HTTP}
    return _adapter(_without_stage(event), context)
