"""Every use of BentoML's internals (``bentoml._internal``, debug-only APIs) and of asyncio's, in
one place.

The pinned BentoML (requirements-serve.txt) offers no public way to do these. Each function
imports what it touches only when called, and tests/test_bentoml_adapter.py checks that the
pinned version still has each of them, so an upgrade that changes one fails there by name.
"""

from __future__ import annotations

import asyncio

# What importing ``bentoml.models`` loads besides the model store: usage tracking and the cloud client.
CLOUD_CLIENT_MODULES = ("bentoml.models", "bentoml._internal.cloud", "bentoml._internal.utils.analytics")
# `bentoml serve`'s arbiter socket for the HTTP API workers (bentoml.serving.API_SERVER_NAME), which
# each worker gets as ``--fd $(circus.sockets.<name>)``, and the module each worker runs
# (bentoml.serving.SCRIPT_API_SERVER).
API_SOCKET_NAME = "_bento_api_server"
API_WORKER_MODULE = "bentoml_cli.worker.http_api_server"


def _container():
    from bentoml._internal.configuration.containers import BentoMLContainer

    return BentoMLContainer


def http_app_module():
    """BentoML's HTTP app module: ``HTTPAppFactory``, ``log_exception`` and its ``logger``."""
    from bentoml._internal.server import http_app

    return http_app


def configure_api_server(*, metrics: bool, access_log: bool, workers: int | None, tracing: bool) -> None:
    """The API server's settings, set in the loaded configuration: BentoML's own request timeout
    off (the service brings its own), Prometheus metrics, the access log, the worker count (None:
    BentoML's default) and, with ``tracing`` off, every URL excluded from tracing."""
    container = _container()
    api_server = container.api_server_config
    api_server.traffic.timeout.set(None)
    api_server.metrics.enabled.set(metrics)
    api_server.logging.access.enabled.set(access_log)
    if workers:
        api_server.workers.set(workers)
    if not tracing:
        container.tracing.excluded_urls.set([".*"])


def leave_out_tracing_middleware() -> None:
    """Drop BentoML's OpenTelemetry middleware from every HTTP app it builds: with every URL
    excluded it only builds each request's URL to find that out (``HTTPAppFactory.middlewares``)."""
    factory = http_app_module().HTTPAppFactory
    if getattr(factory.middlewares.fget, "_leaves_out_tracing", False):
        return
    stock = factory.middlewares.fget

    def middlewares(self):
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return [middleware for middleware in stock(self) if middleware.cls is not OpenTelemetryMiddleware]

    middlewares._leaves_out_tracing = True
    factory.middlewares = property(middlewares)


def stored_model(tag: str):
    """``bentoml.models.get(tag)`` without importing ``bentoml.models`` (see CLOUD_CLIENT_MODULES):
    the same store, the same aliases (``:latest``), the same NotFound."""
    container = _container()
    aliases = container.model_aliases.get()
    return container.model_store.get().get(aliases.get(tag, tag))


# Where bentoml.xgboost (API v2) keeps the booster inside a stored model.
XGBOOST_MODULE, XGBOOST_API_VERSION, XGBOOST_MODEL_FILE = "bentoml.xgboost", "v2", "saved_model.ubj"


def load_booster(model):
    """The booster of a model ``bentoml.xgboost.save_model`` stored, as ``bentoml.xgboost.load_model``
    loads it, without importing ``bentoml.xgboost`` (which imports ``bentoml.models``; see
    CLOUD_CLIENT_MODULES) and without reading ``model.info.options`` (which imports it too)."""
    import xgboost as xgb
    from bentoml.exceptions import NotFound

    if model.info.module != XGBOOST_MODULE or model.info.api_version != XGBOOST_API_VERSION:
        raise NotFound(f"model {model.tag} was not saved by {XGBOOST_MODULE} (API {XGBOOST_API_VERSION})")
    return xgb.Booster(model_file=model.path_of(XGBOOST_MODEL_FILE))


def loaded_runnable(runner):
    """The runnable a runner has loaded into this process, or None before it is loaded."""
    return getattr(getattr(runner, "_runner_handle", None), "_runnable", None)


def deprecation_warning_class() -> type[Warning]:
    """The category of BentoML's own deprecation warnings."""
    from bentoml._internal.utils import BentoMLDeprecationWarning

    return BentoMLDeprecationWarning


def bentoml_timeout_middleware() -> type:
    """BentoML's own request timeout middleware (what src/server_settings.RequestTimeout replaces)."""
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    return TimeoutMiddleware


def live_timers(loop: asyncio.AbstractEventLoop) -> int:
    """Timers scheduled on ``loop`` and not cancelled (asyncio keeps them in ``loop._scheduled``)."""
    return sum(not handle.cancelled() for handle in loop._scheduled)
