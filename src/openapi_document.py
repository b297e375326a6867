"""The service's OpenAPI document, served at /docs.json and kept in the Bento's apis/openapi.yaml.

BentoML 1.4's generated document (legacy API) states none of the request's constraints, declares
error bodies the service never sends and lists /metrics (served only with metrics on). This one
is written out from src/config.py, so every number in it is the one the validation applies; its
error examples are the messages the service really sends (src/validation.py's refusals, the
error middleware's and the request timeout's). The same app serves `bentoml serve` and the
Lambda handler, so both answer this document.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import yaml

from src import bentoml_adapter, config
from src.error_middleware import ERROR_CONTENT_TYPE, FAILURE_MESSAGE, method_not_allowed_message, not_found_message
from src.server_tuning import timeout_message
from src.service_page import ModelFacts, description
from src.validation import FLOAT32_MAX, InvalidInput, check_body_size, check_content_type, parse_features

OPENAPI_VERSION = "3.0.3"
# The tag BentoML's own client (bentoml.client.SyncHTTPClient.from_url) looks for.
PREDICTION_TAG = "Service APIs"
HEALTH_TAG = "Infrastructure"
DOCS_TAG = "Documentation"


def _refusal(check, *args) -> str:
    """The message src/validation.py refuses ``check(*args)`` with."""
    try:
        check(*args)
    except InvalidInput as refused:
        return str(refused)
    raise ValueError(f"{check.__name__}{args!r} was not refused")


# An example message per status, as the service words it.
ERROR_EXAMPLES = {
    400: _refusal(parse_features, json.dumps([[0.0] * (config.N_FEATURES + 1)])),
    404: not_found_message("/predict"),
    405: method_not_allowed_message(config.PREDICTION_ROUTES[0], "GET", "POST"),
    413: _refusal(check_body_size, config.MAX_BODY_BYTES + 1),
    415: _refusal(check_content_type, "text/csv"),
    500: FAILURE_MESSAGE,
    503: bentoml_adapter.NOT_READY_MESSAGE,
    504: timeout_message(config.REQUEST_TIMEOUT_S),
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
    classify, predict_proba = config.PREDICTION_ENDPOINTS
    livez, readyz = config.HEALTH_ROUTES
    paths = {
        f"/{classify}": _prediction_path(
            classify,
            svc.apis[classify],
            "Class label (0 or 1) per row",
            f"Answers 1 for a row whose probability of class 1 is at least {config.DECISION_THRESHOLD}, "
            "else 0. " + _BODY_SENTENCE,
            "Labels",
        ),
        f"/{predict_proba}": _prediction_path(
            predict_proba,
            svc.apis[predict_proba],
            "Probability of class 1 per row",
            "Answers the probability of class 1 for each row, in [0, 1]. " + _BODY_SENTENCE,
            "Probabilities",
        ),
        config.PAGE_ROUTE: _get(
            "page",
            "This page",
            "The service page (Swagger UI) for this document.",
            {"text/html": {"schema": {"type": "string"}}},
            DOCS_TAG,
        ),
        config.DOCUMENT_ROUTE: _get(
            "openapi_document",
            "This document",
            "The OpenAPI document the page shows.",
            {"application/json": {"schema": {"type": "object"}}},
            DOCS_TAG,
        ),
        livez: _get(
            "livez",
            "Liveness",
            "200 while the server process runs.",
            {text: {"schema": {"type": "string"}}},
            HEALTH_TAG,
        ),
        readyz: _get(
            "readyz",
            "Readiness",
            "200 once the model is loaded and the service takes requests.",
            {text: {"schema": {"type": "string"}}},
            HEALTH_TAG,
            statuses=(*_ANY_PATH, 503),
        ),
    }
    if config.SERVER_METRICS:
        paths[config.METRICS_ROUTE] = _get(
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


def title() -> str:
    """The document's title: the service's name, which BentoML's client reads as a Service name
    (so it must be a valid BentoML tag name); the page's own title says what it predicts."""
    return config.SERVICE_NAME


def version_label(model: ModelFacts, bento_tag: str | None) -> str:
    return f"{bento_tag}, model {model.tag}" if bento_tag else model.tag
