"""Peer: a Lambda handler written by hand, without BentoML: the baseline for ours.

The booster is loaded at import from the image's model store (``XGB_MODEL_TAG`` under
``BENTOML_HOME``); each API Gateway event (payload 2.0 or 1.0, base64 bodies too) is checked
with the service's own rules (src/validation.py) and answered as the service answers
``/classify`` (labels) and ``/predict_proba`` (probabilities), with one JSON log line per
request, as ours writes. Nothing else: no other routes, no OpenAPI, no middleware.
"""

import base64
import json
import os
import sys
import time

import numpy as np
import xgboost as xgb

from src import config
from src.validation import InvalidInput, check_content_type, parse_features

_name, _version = os.environ["XGB_MODEL_TAG"].split(":")
_model_file = os.path.join(os.environ["BENTOML_HOME"], "models", _name, _version, "saved_model.ubj")
booster = xgb.Booster(model_file=_model_file)
booster.set_param({"nthread": 1})
MODEL_VERSION = f"{_name}:{_version}"


def _answer(status: int, payload) -> dict:
    return {
        "statusCode": status,
        "body": json.dumps(payload),
        "headers": {"content-type": "application/json", "x-model-version": MODEL_VERSION},
    }


def _request(event: dict) -> tuple[str, str, dict, bytes]:
    if event.get("version") == "2.0":
        http = event["requestContext"]["http"]
        method, path = http["method"], http["path"]
    else:
        method, path = event["httpMethod"], event["path"]
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    return method, path, headers, raw


def handler(event, context):
    started = time.perf_counter()
    method, path, headers, raw = _request(event)
    rows, error = None, None
    if method != "POST" or path not in ("/classify", "/predict_proba"):
        response = _answer(404, "not found")
    else:
        try:
            check_content_type(headers.get("content-type"))
            features = parse_features(raw)
        except InvalidInput as exc:
            response, error = _answer(exc.status, str(exc)), str(exc)
        else:
            rows = len(features)
            proba = booster.inplace_predict(features, validate_features=False)
            if path == "/classify":
                response = _answer(200, (proba >= config.DECISION_THRESHOLD).astype(np.int64).tolist())
            else:
                response = _answer(200, proba.astype(np.float64).tolist())
    entry = {
        "method": method,
        "route": path,
        "status": response["statusCode"],
        "rows": rows,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "model_version": MODEL_VERSION,
    }
    if error:
        entry["error"] = error[:300]
    sys.stdout.write(json.dumps(entry) + "\n")
    return response
