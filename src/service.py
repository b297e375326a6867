"""Stage 3: the model behind a ``classify`` endpoint, the tutorial's service on BentoML 1.4.

The tutorial's shape, on the API that still supports it (``bentoml.legacy.Service``; the 1.4
``bentoml.Service`` no longer takes runners): the model as a runner, ``NumpyNdarray`` in and out,
a bare JSON 2-D array as the request body.

Two endpoints, because the tutorial's ``classify`` returned probabilities under that name:
``/classify`` answers class labels (0/1), ``/predict_proba`` the positive-class probability.

Tuned for a model that predicts in a fraction of a millisecond, where BentoML's per-request
machinery, not the model, is the cost (figures in bench/results.md):
- the runner is embedded in the API server process and predicts with ``inplace_predict``; the
  endpoints are async and call it inline, so a request crosses no process or thread;
- tracing, Prometheus metrics and the access log are off unless asked for (config.py);
- BentoML's request timeout leaves a 60 s timer behind every request (memory grows under load,
  and a handler that fails before answering hangs for the full 60 s); it is replaced by
  :class:`RequestTimeout`, which cancels its timer;
- objects alive after import are frozen out of the garbage collector's full passes, which
  otherwise pause every request in flight for tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import gc
import os
from http import HTTPStatus

import numpy as np
from starlette.responses import JSONResponse

import bentoml
from bentoml.exceptions import BentoMLException, NotFound
from bentoml.io import NumpyNdarray

from src import config
from src.validation import InvalidInput, check_body_size, check_content_type, parse_features


class RequestRejected(BentoMLException):
    """Carries a validation failure to BentoML, which answers it with its status and message."""


def _load_model_ref() -> bentoml.Model:
    """Fail at start-up, with a way out, when the store has no such model."""
    try:
        return bentoml.models.get(config.MODEL_TAG)
    except NotFound:
        raise NotFound(
            f"model {config.MODEL_TAG!r} is not in the BentoML model store "
            f"under {os.environ.get('BENTOML_HOME', '~/bentoml')}; "
            "train one with `python -m src.train` or import an archive with "
            "`python -m src.model_store import models/<file>.bentomodel`"
        ) from None


class FeatureMatrix(NumpyNdarray):
    """``NumpyNdarray`` input that validates the body before the model sees it.

    BentoML's own parser answers bodies that are not JSON with a 500 and passes wrong shapes to
    the model. This subclass keeps the wire contract (it reports itself as a plain
    ``NumpyNdarray``, so BentoML clients and the OpenAPI document are unchanged) and rejects
    every malformed body with a 4xx that says what was expected.
    """

    async def from_http_request(self, request) -> np.ndarray:
        try:
            check_content_type(request.headers.get("content-type"))
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit():
                check_body_size(int(declared))
            return parse_features(await _read_limited(request))
        except InvalidInput as exc:
            raise RequestRejected(str(exc), error_code=HTTPStatus(exc.status)) from None


FeatureMatrix.descriptor_id = NumpyNdarray.descriptor_id


async def _read_limited(request) -> bytes:
    """Read the body, stopping as soon as it passes the size limit (chunked uploads too)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_size(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _tune_bentoml_server() -> None:
    """Apply the settings above. Runs in `bentoml serve`'s parent and in every worker, before
    BentoML builds its app, so the tutorial's plain `bentoml serve` command gets them."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    api_server = BentoMLContainer.api_server_config
    api_server.traffic.timeout.set(None)  # RequestTimeout below takes its place
    api_server.metrics.enabled.set(config.SERVER_METRICS)
    api_server.logging.access.enabled.set(config.ACCESS_LOG)
    if config.SERVER_WORKERS:
        api_server.workers.set(config.SERVER_WORKERS)
    if not config.TRACING:
        BentoMLContainer.tracing.excluded_urls.set([".*"])


class RequestTimeout:
    """Answer 504 when a request takes longer than ``timeout`` seconds; the timer is cancelled
    as soon as the request finishes (asyncio.timeout), so nothing outlives a request."""

    def __init__(self, app, timeout: float):
        self.app, self.timeout = app, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked_send(message):
            nonlocal started
            started = True
            await send(message)

        try:
            async with asyncio.timeout(self.timeout):
                await self.app(scope, receive, tracked_send)
        except TimeoutError:
            if not started:
                response = JSONResponse(f"not answered within {self.timeout} s", status_code=504)
                await response(scope, receive, send)


class BoosterRunnable(bentoml.legacy.Runnable):
    """The booster as a runnable: ``inplace_predict`` on the array as it comes (BentoML's stock
    XGBoost runnable builds a DMatrix on every call), one thread per prediction."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self, model: bentoml.Model):
        self.booster = bentoml.xgboost.load_model(model)
        self.booster.set_param({"nthread": 1})

    @bentoml.legacy.Runnable.method(batchable=False)
    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(features, validate_features=False)


_tune_bentoml_server()
model_ref = _load_model_ref()
runner = bentoml.legacy.Runner(
    BoosterRunnable, name=config.MODEL_NAME, models=[model_ref],
    runnable_init_params={"model": model_ref}, embedded=True,
)
svc = bentoml.legacy.Service(config.SERVICE_NAME, runners=[runner])
svc.add_asgi_middleware(RequestTimeout, timeout=config.REQUEST_TIMEOUT_S)

_example = np.asarray(config.EXAMPLE_ROWS, dtype=np.float64)
features_input = FeatureMatrix.from_sample(_example, enforce_shape=False)


def positive_probability(features: np.ndarray) -> np.ndarray:
    return np.asarray(runner.predict_proba.run(features), dtype=np.float64)


@svc.api(
    input=features_input,
    output=NumpyNdarray.from_sample(np.array([1], dtype=np.int64)),
    route="classify",
    doc="Class labels (0 or 1), one per row. Body: a JSON 2-D array, one row of 7 numbers per sample.",
)
async def classify(features: np.ndarray) -> np.ndarray:
    return (positive_probability(features) >= config.DECISION_THRESHOLD).astype(np.int64)


@svc.api(
    input=features_input,
    output=NumpyNdarray.from_sample(np.array([0.87], dtype=np.float64)),
    route="predict_proba",
    doc="Probability of class 1, one per row, in [0, 1]. Same body as /classify.",
)
async def predict_proba(features: np.ndarray) -> np.ndarray:
    return positive_probability(features)


def freeze_long_lived_objects(*_) -> None:
    """Everything imported and built by now lives as long as the process: keep it out of the
    collector's full passes, whose pauses otherwise land on requests in flight."""
    gc.collect()
    gc.freeze()


svc.on_startup(freeze_long_lived_objects)
