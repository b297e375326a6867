"""The one home for settings every stage shares.

Paths, the model and service names and the feature layout are defined here once, so the data
generator, the trainer, the service, the client and the deployment cannot drift apart.
Everything a user may want to override at run time is read from an environment variable
with a default that fits the tutorial's layout.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR = PROJECT_ROOT / "data"
DATA_PATH = DATA_DIR / "data.csv"
MODELS_DIR = PROJECT_ROOT / "models"
REPORTS_DIR = PROJECT_ROOT / "reports"

# Data set shape: the tutorial's make_classification call.
N_ROWS = 10_000
N_FEATURES = 7
N_REDUNDANT = 2  # make_classification's default: combinations of the informative features
N_INFORMATIVE = N_FEATURES - N_REDUNDANT
FEATURE_NAMES: tuple[str, ...] = tuple(f"feature_{i}" for i in range(N_FEATURES))
TARGET_NAME = "target"
DEFAULT_SEED = 42

# Names in the BentoML model store and for the Bento.
MODEL_NAME = "xgb_model"
SERVICE_NAME = "xgb_classifier"

# Which model version the service loads. An exact tag pins a deployment to one version.
MODEL_TAG = os.environ.get("XGB_MODEL_TAG", f"{MODEL_NAME}:latest")

# The routes the service answers: POST a prediction endpoint (each a BentoML API of that name);
# GET its page, its OpenAPI document and BentoML's health checks; /metrics only with
# XGB_SERVER_METRICS on. ROUTES lists them as (method, path).
PREDICTION_ENDPOINTS = ("classify", "predict_proba")
PREDICTION_ROUTES = tuple(f"/{name}" for name in PREDICTION_ENDPOINTS)
PAGE_ROUTE = "/"
DOCUMENT_ROUTE = "/docs.json"
HEALTH_ROUTES = ("/livez", "/readyz")
METRICS_ROUTE = "/metrics"
ROUTES = (
    *(("POST", route) for route in PREDICTION_ROUTES),
    ("GET", PAGE_ROUTE),
    ("GET", DOCUMENT_ROUTE),
    *(("GET", route) for route in HEALTH_ROUTES),
)

# Probability at or above which `classify` answers 1.
DECISION_THRESHOLD = 0.5

# AWS Lambda takes at most 6 MB (6,291,456 bytes) per synchronous invocation, and that counts the
# whole event API Gateway sends: the body as an escaped JSON string plus headers and request context.
# The body limit leaves room for the rest (an HTTP API allows 10 KB of request line and headers),
# and the local server applies the same limit, so a request that works locally works on Lambda.
LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
EVENT_ENVELOPE_BYTES = 16 * 1024
MAX_BODY_BYTES = LAMBDA_PAYLOAD_LIMIT_BYTES - EVENT_ENVELOPE_BYTES
# The answer has the same 6 MB limit; a row's probability takes up to ~26 bytes of JSON.
MAX_ROWS = 100_000


# How `bentoml serve` is tuned (src/server_tuning.py explains each). Off by default: they cost
# more per request than the model does. Set XGB_ACCESS_LOG=1 to log every request.
def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


ACCESS_LOG = _flag("XGB_ACCESS_LOG")
SERVER_METRICS = _flag("XGB_SERVER_METRICS")
TRACING = _flag("XGB_TRACING")
SERVER_WORKERS = int(os.environ.get("XGB_SERVER_WORKERS", "0"))  # 0: BentoML's default, one per CPU
REQUEST_TIMEOUT_S = float(os.environ.get("XGB_REQUEST_TIMEOUT_S", "30"))

# A row that works as the Swagger UI's example request, N_FEATURES values long.
_EXAMPLE_VALUES = (0.1, -1.2, 0.3, 2.4, -0.5, 0.6, 1.7)
EXAMPLE_ROWS = [[_EXAMPLE_VALUES[i % len(_EXAMPLE_VALUES)] for i in range(N_FEATURES)]]

# One JSON log line per request (src/request_log.py), locally and on Lambda, on unless
# XGB_REQUEST_LOG=0; every answer carries X-Model-Version either way.
REQUEST_LOG = os.environ.get("XGB_REQUEST_LOG", "1").strip().lower() not in ("0", "false", "no", "off")

# Bodies of this many bytes or more are parsed in a helper process, so that their parse does not
# hold up the small requests on the same worker (src/body_parser.py).
# 0: always in the worker's own thread (the Lambda handler sets it: one request at a time there).
OFF_LOOP_PARSE_BYTES = int(os.environ.get("XGB_OFF_LOOP_PARSE_BYTES", str(1024 * 1024)))
# Requests of this many rows or more are predicted on the runner's thread (XGBoost lets go of the
# GIL while it predicts) rather than on the event loop; 0: always on the loop (Lambda sets it).
OFF_LOOP_PREDICT_ROWS = int(os.environ.get("XGB_OFF_LOOP_PREDICT_ROWS", "10000"))

# Drift counts per reference bin (src/drift_metrics.py). On Lambda, Terraform sets the namespace
# and how many series (the probability first, then features by importance) go to CloudWatch
# through the request's log line; locally /metrics counts every series when metrics are on.
DRIFT_NAMESPACE = os.environ.get("XGB_DRIFT_NAMESPACE", "")
DRIFT_METRICS = int(os.environ.get("XGB_DRIFT_METRICS", "0"))
FUNCTION_VERSION = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")  # Lambda sets it: "$LATEST" or 1, 2, ...
