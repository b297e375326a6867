"""Stage 3: the model behind a ``classify`` endpoint, the tutorial's service on BentoML 1.4.

The tutorial's shape on the API that still supports it (``bentoml.legacy.Service``): the model as
a runner, ``NumpyNdarray`` in and out, a bare JSON 2-D array as the request body. ``/classify``
answers class labels (0/1), ``/predict_proba`` the probability of class 1.

Built for a model that predicts in a fraction of a millisecond: the runner is embedded and called
inline from async endpoints, so a request crosses no process or thread. Every body is validated
before the model sees it (:mod:`src.validation`); `bentoml serve` is tuned by
:mod:`src.server_tuning`; the document is :mod:`src.openapi_document`'s, the page
:mod:`src.service_page`'s, the error shape :mod:`src.error_middleware`'s and the request log
:mod:`src.request_log`'s.
"""

from __future__ import annotations

import functools
import os
from http import HTTPStatus

import bentoml
import numpy as np

from src.startup import announce_on_start, quiet_known_warnings

quiet_known_warnings()  # before the imports and calls below that warn

import orjson  # noqa: E402
from bentoml.exceptions import BentoMLException, NotFound  # noqa: E402
from bentoml.io import NumpyNdarray  # noqa: E402
from starlette.responses import Response  # noqa: E402

from src import body_parser, config, drift_metrics, openapi_document, request_log, service_page  # noqa: E402
from src.bentoml_adapter import load_booster, report_as, stored_model  # noqa: E402
from src.error_middleware import ErrorMiddleware  # noqa: E402
from src.server_tuning import (  # noqa: E402
    RequestTimeout,
    freeze_long_lived_objects,
    quiet_refusals,
    tune_bentoml_server,
)
from src.validation import InvalidInput, check_body_size, check_content_type  # noqa: E402


class RequestRejected(BentoMLException):
    """Carries a validation failure to BentoML, which answers it with its status and message."""


def _load_model_ref() -> bentoml.Model:
    """Fail at start-up, with a way out, when the store has no such model."""
    try:
        return stored_model(config.MODEL_TAG)
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
    ``NumpyNdarray``, so BentoML's client still works) and rejects every malformed body with a
    4xx that says what was expected.
    """

    async def from_http_request(self, request) -> np.ndarray:
        try:
            check_content_type(request.headers.get("content-type"))
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit():
                check_body_size(int(declared))
            features = await body_parser.parse(await _read_limited(request))
        except InvalidInput as exc:
            request.scope[request_log.REFUSAL] = str(exc)
            raise RequestRejected(str(exc), error_code=HTTPStatus(exc.status)) from None
        request.scope[request_log.ROWS] = len(features)
        return features


report_as(FeatureMatrix, NumpyNdarray)


class Answers(NumpyNdarray):
    """``NumpyNdarray`` output written by orjson straight from the array (the stock one builds a
    Python list first and writes it with the standard library: about 20 times slower at 100,000
    rows). The same JSON values; it reports itself as a plain ``NumpyNdarray``."""

    async def to_http_response(self, obj, ctx=None):
        if ctx is not None:  # an API that takes a context: the stock answer, its headers and cookies
            return await super().to_http_response(obj, ctx)
        array = np.ascontiguousarray(self.validate_array(obj))
        return Response(orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


report_as(Answers, NumpyNdarray)


async def _read_limited(request) -> bytes:
    """Read the body, stopping as soon as it passes the size limit (chunked uploads too)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_size(size)
        chunks.append(chunk)
    return b"".join(chunks)


class BoosterRunnable(bentoml.legacy.Runnable):
    """The booster as a runnable: ``inplace_predict`` on the array as it comes (BentoML's stock
    XGBoost runnable builds a DMatrix on every call), one thread per prediction."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self, model: bentoml.Model):
        self.booster = load_booster(model)
        self.booster.set_param({"nthread": 1})

    @bentoml.legacy.Runnable.method(batchable=False)
    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(features, validate_features=False)


tune_bentoml_server()
quiet_refusals(RequestRejected)
model_ref = _load_model_ref()
MODEL_VERSION = str(model_ref.tag)  # exact, even when config.MODEL_TAG says :latest
runner = bentoml.legacy.Runner(
    BoosterRunnable,
    name=config.MODEL_NAME,
    models=[model_ref],
    runnable_init_params={"model": model_ref},
    embedded=True,
)
MODEL_FACTS = service_page.ModelFacts.from_model(model_ref)
DRIFT = drift_metrics.for_model(dict(model_ref.info.metadata or {}), config.FUNCTION_VERSION)


class DocumentedService(bentoml.legacy.Service):
    """The legacy service with this service's own OpenAPI document (src/openapi_document.py) in place
    of BentoML's, at /docs.json and in the Bento's apis/openapi.yaml."""

    @property
    def openapi_spec(self) -> openapi_document.OpenApiDocument:
        return _document(bento_tag())


@functools.lru_cache(maxsize=4)
def _document(bento: str | None) -> openapi_document.OpenApiDocument:
    return openapi_document.OpenApiDocument(openapi_document.document(svc, MODEL_FACTS, bento))


def bento_tag() -> str | None:
    """The Bento being served (BentoML sets it after importing this module), if any."""
    bento = getattr(svc, "bento", None)
    return str(bento.tag) if bento is not None else None


svc = DocumentedService(config.SERVICE_NAME, runners=[runner])
# Outermost first: the request log sees (and labels) every answer, the timeout's 504 included,
# after the error middleware has given each error answer its one shape.
svc.add_asgi_middleware(request_log.RequestLog, model_version=MODEL_VERSION, log=config.REQUEST_LOG)
svc.add_asgi_middleware(ErrorMiddleware, page=service_page.page(MODEL_FACTS))
svc.add_asgi_middleware(RequestTimeout, timeout=config.REQUEST_TIMEOUT_S)
announce_on_start(MODEL_VERSION, bento_tag)

_example = np.asarray(config.EXAMPLE_ROWS, dtype=np.float64)
features_input = FeatureMatrix.from_sample(_example, enforce_shape=False)


async def positive_probability(features: np.ndarray) -> np.ndarray:
    """The model's probabilities: inline for the usual few rows, on the runner's thread for large
    requests (config.OFF_LOOP_PREDICT_ROWS), so that the event loop serves others meanwhile.
    Each answer's rows are counted in the drift bins, when drift metrics are on."""
    if 0 < config.OFF_LOOP_PREDICT_ROWS <= len(features):
        predicted = await runner.predict_proba.async_run(features)
    else:
        predicted = runner.predict_proba.run(features)
    predicted = np.asarray(predicted, dtype=np.float64)
    if DRIFT is not None:
        request_log.annotate(request_log.EXTRA, DRIFT.observe(features, predicted))
    return predicted


CLASSIFY, PREDICT_PROBA = config.PREDICTION_ENDPOINTS  # each the API's name and its route


@svc.api(
    input=features_input,
    output=Answers.from_sample(np.array([1], dtype=np.int64)),
    name=CLASSIFY,
    doc=f"Class labels (0 or 1), one per row. Body: a JSON 2-D array, one row of {config.N_FEATURES} numbers a sample.",
)
async def classify(features: np.ndarray) -> np.ndarray:
    return (await positive_probability(features) >= config.DECISION_THRESHOLD).astype(np.int64)


@svc.api(
    input=features_input,
    output=Answers.from_sample(np.array([0.87], dtype=np.float64)),
    name=PREDICT_PROBA,
    doc="Probability of class 1, one per row, in [0, 1]. The same body as the class labels' endpoint.",
)
async def predict_proba(features: np.ndarray) -> np.ndarray:
    return await positive_probability(features)


svc.on_startup(freeze_long_lived_objects)
svc.on_shutdown(body_parser.stop)
