"""The service's public contract: its OpenAPI document, its page, and one shape for every error.

BentoML 1.4's generated document (legacy API) states none of the request's constraints, declares
error bodies the service never sends, lists /metrics (served only with metrics on) and fills the
page with BentoML's boilerplate. Here the document is written out from src/config.py, so every
number in it is the one the validation applies, and the page describes this model: what it
predicts, its version and validation metrics, how to call it.

Every error answer, whoever produces it (the validation, Starlette's router, the request timeout,
BentoML's handler of a failing endpoint), leaves the service as ``{"error": "<message>"}``:
:class:`ContractMiddleware` rewrites the few error bodies that are not already that shape. It
also serves the page at ``/``. Answers below 400 pass through untouched.

The same app serves `bentoml serve` and the Lambda handler, so both answer this document.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from http import HTTPStatus

import yaml

from src import config, request_log
from src.validation import FLOAT32_MAX

OPENAPI_VERSION = "3.0.3"
ERROR_CONTENT_TYPE = "application/json"
# BentoML puts this in front of every 4xx message; the message is the validation's alone.
_BENTOML_PREFIX = "BentoService error handling API request: "
# The tag BentoML's own client (bentoml.client.SyncHTTPClient.from_url) looks for.
PREDICTION_TAG = "Service APIs"
HEALTH_TAG = "Infrastructure"
DOCS_TAG = "Documentation"

# An example message per status, as the service words it.
ERROR_EXAMPLES = {
    400: f"got 8 columns per row, not {config.N_FEATURES}; expected a JSON 2-D array of numbers with "
    f"{config.N_FEATURES} columns (...)",
    404: "no such path: '/predict'; the service answers POST /classify and POST /predict_proba (...)",
    405: "'/classify' does not take GET; it takes POST",
    413: f"got {config.MAX_ROWS + 1} rows; at most {config.MAX_ROWS} rows per request (...)",
    415: "unsupported content type 'text/csv'; send 'application/json', expected a JSON 2-D array (...)",
    500: "the service failed to answer; its log has the details",
    503: "Runners are not ready.",
    504: f"not answered within {config.REQUEST_TIMEOUT_S} s",
}
ERROR_STATUSES = {
    400: "The body is not a JSON 2-D array of numbers with the expected width (the message says what was found).",
    404: "No such path (the message lists the paths the service answers).",
    405: "The path exists but does not take this method; the `Allow` header lists those it takes.",
    413: (
        f"The body is over {config.MAX_BODY_BYTES:,} bytes (AWS Lambda's 6 MB event limit less room for "
        f"headers) or has over {config.MAX_ROWS:,} rows."
    ),
    415: "The content type is not `application/json`.",
    500: "The service failed; its log has the details.",
    503: "Not ready yet: the model is still loading.",
    504: f"Not answered within the request timeout ({config.REQUEST_TIMEOUT_S:g} s).",
}


@dataclass(frozen=True)
class ModelFacts:
    """What the page and the document say about the served model (from its store metadata)."""

    tag: str
    created: str = ""
    metrics: dict = field(default_factory=dict)
    n_train_rows: int | None = None
    n_validation_rows: int | None = None
    data_sha256: str = ""
    num_boost_round: int | None = None

    @classmethod
    def from_model(cls, model) -> ModelFacts:
        meta = dict(model.info.metadata or {})
        created = model.info.creation_time
        return cls(
            tag=str(model.tag),
            created=created.strftime("%Y-%m-%d %H:%M UTC") if created else "",
            metrics=dict(meta.get("metrics") or {}),
            n_train_rows=meta.get("n_train_rows"),
            n_validation_rows=meta.get("n_validation_rows"),
            data_sha256=str(meta.get("data_sha256") or ""),
            num_boost_round=meta.get("num_boost_round"),
        )


class OpenApiDocument(dict):
    """The document in the form BentoML uses a service's ``openapi_spec``: ``asdict()`` for
    /docs.json, plain YAML for the Bento's apis/openapi.yaml."""

    def asdict(self) -> dict:
        return dict(self)


yaml.add_representer(OpenApiDocument, lambda dumper, document: dumper.represent_dict(dict(document)))


# ---------------------------------------------------------------------------- schemas


def feature_rows_schema() -> dict:
    """The request body: what :func:`src.validation.parse_features` accepts, as JSON Schema."""
    return {
        "type": "array",
        "description": (
            f"Rows of features, one row per sample: 1 to {config.MAX_ROWS:,} rows, each exactly "
            f"{config.N_FEATURES} finite numbers ({', '.join(config.FEATURE_NAMES)}), "
            f"each within ±{FLOAT32_MAX:.4g} (float32)."
        ),
        "minItems": 1,
        "maxItems": config.MAX_ROWS,
        "items": {
            "type": "array",
            "description": f"One sample: {', '.join(config.FEATURE_NAMES)}, in this order.",
            "minItems": config.N_FEATURES,
            "maxItems": config.N_FEATURES,
            "items": {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX},
        },
        "example": _example_rows(),
    }


def _example_rows() -> list:
    return [list(row) for row in config.EXAMPLE_ROWS]


def labels_schema() -> dict:
    return {
        "type": "array",
        "description": (
            f"One class label per row, in the rows' order: 1 when the probability of class 1 is "
            f"at least {config.DECISION_THRESHOLD}, else 0."
        ),
        "minItems": 1,
        "maxItems": config.MAX_ROWS,
        "items": {"type": "integer", "enum": [0, 1]},
        "example": [1],
    }


def probabilities_schema() -> dict:
    return {
        "type": "array",
        "description": "The probability of class 1 for each row, in the rows' order.",
        "minItems": 1,
        "maxItems": config.MAX_ROWS,
        "items": {"type": "number", "minimum": 0, "maximum": 1},
        "example": [0.87],
    }


def error_schema() -> dict:
    return {
        "type": "object",
        "description": "Every error answer, whatever its status.",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {"error": {"type": "string", "description": "What was wrong, and what was expected."}},
    }


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _model_header() -> dict:
    return {"X-Model-Version": _ref("headers", "ModelVersion")}


def _error_responses(*statuses: int) -> dict:
    return {str(status): _ref("responses", f"Error{status}") for status in statuses}


def _component_responses() -> dict:
    responses = {}
    for status, text in ERROR_STATUSES.items():
        headers = _model_header()
        if status == 405:
            headers["Allow"] = {
                "description": "The methods the path takes.",
                "required": True,
                "schema": {"type": "string"},
            }
        responses[f"Error{status}"] = {
            "description": f"{HTTPStatus(status).phrase}. {text}",
            "headers": headers,
            "content": {
                ERROR_CONTENT_TYPE: {"schema": _ref("schemas", "Error"), "example": {"error": ERROR_EXAMPLES[status]}}
            },
        }
    return responses


# Statuses any path may answer: an unknown path, an undeclared method, a failure, the timeout.
_ANY_PATH = (404, 405, 500, 504)


def _get(operation_id: str, summary: str, description: str, content: dict, tag: str, statuses=_ANY_PATH) -> dict:
    return {
        "get": {
            "tags": [tag],
            "summary": summary,
            "description": description,
            "operationId": operation_id,
            "responses": {
                "200": {"description": "OK", "headers": _model_header(), "content": content},
                **_error_responses(*statuses),
            },
        }
    }


def _plain(spec: dict) -> dict:
    """BentoML's descriptor spec as plain JSON values (its shapes are tuples)."""
    return json.loads(json.dumps(spec))


def _prediction_path(name: str, api, summary: str, description: str, answer_schema: str) -> dict:
    return {
        "post": {
            "tags": [PREDICTION_TAG],
            "summary": summary,
            "description": description,
            "operationId": name,
            "x-bentoml-name": name,
            "requestBody": {
                "required": True,
                "description": "Content-Type: application/json.",
                "content": {"application/json": {"schema": _ref("schemas", "FeatureRows"), "example": _example_rows()}},
                "x-bentoml-io-descriptor": _plain(api.input.to_spec()),
            },
            "responses": {
                "200": {
                    "description": "One answer per row.",
                    "headers": _model_header(),
                    "content": {"application/json": {"schema": _ref("schemas", answer_schema)}},
                    "x-bentoml-io-descriptor": _plain(api.output.to_spec()),
                },
                **_error_responses(400, 404, 405, 413, 415, 500, 504),
            },
        }
    }


def document(svc, model: ModelFacts, bento_tag: str | None = None) -> dict:
    """The OpenAPI document of ``svc`` (the service's two endpoints) serving ``model``."""
    text = "text/plain"
    paths = {
        "/classify": _prediction_path(
            "classify",
            svc.apis["classify"],
            "Class label (0 or 1) per row",
            f"Answers 1 for a row whose probability of class 1 is at least {config.DECISION_THRESHOLD}, "
            "else 0. " + _BODY_SENTENCE,
            "Labels",
        ),
        "/predict_proba": _prediction_path(
            "predict_proba",
            svc.apis["predict_proba"],
            "Probability of class 1 per row",
            "Answers the probability of class 1 for each row, in [0, 1]. " + _BODY_SENTENCE,
            "Probabilities",
        ),
        "/": _get(
            "page",
            "This page",
            "The service page (Swagger UI) for this document.",
            {"text/html": {"schema": {"type": "string"}}},
            DOCS_TAG,
        ),
        "/docs.json": _get(
            "openapi_document",
            "This document",
            "The OpenAPI document the page shows.",
            {"application/json": {"schema": {"type": "object"}}},
            DOCS_TAG,
        ),
        "/livez": _get(
            "livez",
            "Liveness",
            "200 while the server process runs.",
            {text: {"schema": {"type": "string"}}},
            HEALTH_TAG,
        ),
        "/readyz": _get(
            "readyz",
            "Readiness",
            "200 once the model is loaded and the service takes requests.",
            {text: {"schema": {"type": "string"}}},
            HEALTH_TAG,
            statuses=(*_ANY_PATH, 503),
        ),
    }
    if config.SERVER_METRICS:
        paths["/metrics"] = _get(
            "metrics",
            "Prometheus metrics",
            "Served while XGB_SERVER_METRICS is on.",
            {text: {"schema": {"type": "string"}}},
            HEALTH_TAG,
        )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title(),
            "version": version_label(model, bento_tag),
            "description": description(model, bento_tag),
        },
        "servers": [{"url": ".", "description": "the server this page came from"}],
        "tags": [
            {"name": PREDICTION_TAG, "description": "Predictions of the XGBoost model"},
            {"name": DOCS_TAG, "description": "This page and its OpenAPI document"},
            {"name": HEALTH_TAG, "description": "Health checks for load balancers and orchestrators"},
        ],
        "paths": paths,
        "components": {
            "schemas": {
                "FeatureRows": feature_rows_schema(),
                "Labels": labels_schema(),
                "Probabilities": probabilities_schema(),
                "Error": error_schema(),
            },
            "responses": _component_responses(),
            "headers": {
                "ModelVersion": {
                    "description": "The model version that answered (on every answer, errors included).",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
    }


_BODY_SENTENCE = (
    f"Body: a JSON 2-D array of 1 to {config.MAX_ROWS:,} rows of {config.N_FEATURES} numbers "
    f"({config.FEATURE_NAMES[0]} … {config.FEATURE_NAMES[-1]}), e.g. "
    f"`{json.dumps(config.EXAMPLE_ROWS)}`."
)


# ---------------------------------------------------------------------------- the page's words


def title() -> str:
    """The document's title: the service's name, which BentoML's client reads as a Service name
    (so it must be a valid BentoML tag name); the page's own title says what it predicts."""
    return config.SERVICE_NAME


def headline() -> str:
    return f"XGBoost binary classifier: class 0 or 1 for each row of {config.N_FEATURES} features"


def version_label(model: ModelFacts, bento_tag: str | None) -> str:
    return f"{bento_tag}, model {model.tag}" if bento_tag else model.tag


def _metrics_sentence(model: ModelFacts) -> str:
    names = {"auc": "AUC {:.4f}", "accuracy": "accuracy {:.4f}", "log_loss": "log loss {:.4f}"}
    found = [names[key].format(model.metrics[key]) for key in names if key in model.metrics]
    if not found:
        return "Its store metadata has no validation metrics."
    rows = f" on {model.n_validation_rows:,} held-out rows" if model.n_validation_rows else ""
    return f"Validation{rows}: {', '.join(found)} (accuracy at the threshold {config.DECISION_THRESHOLD})."


def description(model: ModelFacts, bento_tag: str | None) -> str:
    """Markdown for the page: what the model predicts, which model, how to call it."""
    first, last = config.FEATURE_NAMES[0], config.FEATURE_NAMES[-1]
    trained = []
    if model.created:
        trained.append(f"trained {model.created}")
    if model.n_train_rows:
        trained.append(f"on {model.n_train_rows:,} rows")
    if model.num_boost_round:
        trained.append(f"{model.num_boost_round} boosting rounds")
    data = f" Training data SHA-256 `{model.data_sha256[:16]}…`." if model.data_sha256 else ""
    bento = f" in Bento `{bento_tag}`" if bento_tag else ""
    example = json.dumps(config.EXAMPLE_ROWS)
    return f"""\
### {headline()}

Predicts a **binary class, 0 or 1**, for each row of **{config.N_FEATURES} numeric features** \
(`{first}` … `{last}`), with an XGBoost model (gradient-boosted trees, `binary:logistic`) trained on \
a synthetic data set ({config.N_ROWS:,} rows, {config.N_INFORMATIVE} of the {config.N_FEATURES} \
features informative).

| endpoint | answers, one per row |
|---|---|
| `POST /classify` | the class: `1` when the probability of class 1 is at least \
**{config.DECISION_THRESHOLD}**, else `0` |
| `POST /predict_proba` | the probability of class 1, in [0, 1] |

**Model** `{model.tag}`{bento}{", " + ", ".join(trained) if trained else ""}. {_metrics_sentence(model)}{data}

**Request**: `Content-Type: application/json`; a JSON 2-D array of 1 to {config.MAX_ROWS:,} rows, \
each exactly {config.N_FEATURES} finite numbers within ±{FLOAT32_MAX:.4g}; at most \
{config.MAX_BODY_BYTES:,} bytes. Example: `{example}`.

**Errors** are all one JSON object, `{{"error": "<what was wrong and what was expected>"}}`: \
400 a malformed body, 413 too large, 415 not JSON, 404 an unknown path, 405 a method the path does \
not take, 500 a failure, 504 no answer within {config.REQUEST_TIMEOUT_S:g} s. Every answer names the \
model in its `X-Model-Version` header.

**Call it** (or use *Try it out* below):

```
BASE=http://127.0.0.1:3000   # or the deployed endpoint
curl -X POST "$BASE/classify" -H 'Content-Type: application/json' -d '{example}'
python -m src.client --url "$BASE" --rows 5                 # random rows
python -m src.client --url "$BASE" --csv data/data.csv --rows 5 --endpoint predict_proba
```
"""


def page(model: ModelFacts) -> bytes:
    """The service page: Swagger UI (BentoML's bundled copy) on this document, nothing fetched
    from elsewhere."""
    name = html.escape(f"{headline()} | {config.SERVICE_NAME}, {model.tag}")
    return f"""\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{name}</title>
  <link rel="icon" type="image/png" href="./static_content/favicon-light-32x32.png" sizes="32x32">
  <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css">
  <style>body {{ margin: 0; background: #fafafa; }}</style>
</head>
<body>
  <noscript>This page shows the API with JavaScript; the document is <a href="./docs.json">docs.json</a>.</noscript>
  <div id="swagger-ui"></div>
  <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "./docs.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    }});
  </script>
</body>
</html>
""".encode()


# ---------------------------------------------------------------------------- the middleware


def _error_message(status: int, body: bytes, content_type: str, scope, allow: str) -> str | None:
    """The message for an error answer, or None when ``body`` already is ``{"error": ...}``."""
    refusal = scope.get(request_log.REFUSAL)
    if refusal is not None:
        return refusal
    if content_type.startswith("application/json"):
        try:
            found = json.loads(body)
        except ValueError:
            found = None
        if isinstance(found, dict) and set(found) == {"error"} and isinstance(found["error"], str):
            return None
        if isinstance(found, str) and found:
            return found.removeprefix(_BENTOML_PREFIX)
    method, path = scope.get("method", ""), scope.get("path", "")
    shown = repr(path[:200])
    if status == 404:
        return (
            f"no such path: {shown}; the service answers POST /classify and POST /predict_proba "
            "(a JSON 2-D array of features), GET / (its page), GET /docs.json (its OpenAPI document), "
            "GET /livez and GET /readyz"
        )
    if status == 405:
        return f"{shown} does not take {method}; it takes {allow or 'no other method'}"
    text = body.decode("utf-8", "replace").strip()
    if content_type.startswith("text/plain") and text:
        return text
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"error {status}"


class ContractMiddleware:
    """ASGI middleware: the service page at ``GET /``, and every error answer (status >= 400) as
    ``{"error": "<message>"}`` with ``Content-Type: application/json``.

    For a request the validation refused, the message is the validation's own (without BentoML's
    prefix); a JSON string body becomes that object; Starlette's plain-text 404 and 405 get a
    message that says what the service answers. An exception that escapes the app is answered
    500 in the same shape, then raised again so the server logs its traceback."""

    def __init__(self, app, page: bytes):
        self.app, self.page = app, page

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/" and scope["method"] in ("GET", "HEAD"):
            return await self._send_page(scope, send)

        held: dict | None = None  # an error answer's start, kept until its body is complete
        chunks: list[bytes] = []
        forwarded = False  # whether anything reached the client's side

        async def shaping_send(message):
            nonlocal held, forwarded
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message
                return
            if message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                forwarded = True
                return await self._send_error(scope, send, held, b"".join(chunks))
            forwarded = True
            await send(message)

        try:
            await self.app(scope, receive, shaping_send)
        except Exception:
            if not forwarded:
                await self._send_json(scope, send, 500, [], "the service failed to answer; its log has the details")
            raise

    async def _send_page(self, scope, send):
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(self.page)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else self.page})

    async def _send_error(self, scope, send, start: dict, body: bytes):
        headers = [(name, value) for name, value in start.get("headers", ())]
        found = {name.lower(): value.decode("latin-1") for name, value in headers}
        message = _error_message(start["status"], body, found.get(b"content-type", ""), scope, found.get(b"allow", ""))
        if message is None:  # already the contract's shape
            await send(start)
            return await send({"type": "http.response.body", "body": body})
        kept = [(name, value) for name, value in headers if name.lower() not in (b"content-type", b"content-length")]
        await self._send_json(scope, send, start["status"], kept, message)

    @staticmethod
    async def _send_json(scope, send, status: int, headers: list, message: str):
        payload = json.dumps({"error": message}, ensure_ascii=False).encode()
        headers = [
            *headers,
            (b"content-type", ERROR_CONTENT_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else payload})
