"""Every use of BentoML's internals (``bentoml._internal``, debug-only APIs, the processes of
`bentoml serve` and the circus sockets they share), of Mangum's (its lifespan cycle) and of
XGBoost's (its optional import of scikit-learn), in one place.

The pinned BentoML, circus, Mangum and XGBoost offer no public way to do these. Each function imports
what it touches only when called, and tests/service/test_bentoml_adapter.py checks that the pinned
versions still have each of them, so an upgrade that changes one fails there by name.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable

# What importing ``bentoml.models`` loads besides the model store: usage tracking and the cloud client.
CLOUD_CLIENT_MODULES = ("bentoml.models", "bentoml._internal.cloud", "bentoml._internal.utils.analytics")
# `bentoml serve`'s arbiter socket for the HTTP API workers (bentoml.serving.API_SERVER_NAME), which
# each worker gets as ``--fd $(circus.sockets.<name>)``, and the module each worker runs
# (bentoml.serving.SCRIPT_API_SERVER).
API_SOCKET_NAME = "_bento_api_server"
API_WORKER_MODULE = "bentoml_cli.worker.http_api_server"
# The CLI module of `bentoml serve`: loaded in its parent before the service, and there only.
SERVE_COMMAND_MODULE = "bentoml_cli.serve"
# What BentoML's HTTP app puts before the message of a 4xx it answers for a BentoMLException.
ERROR_PREFIX = "BentoService error handling API request: "
# What BentoML's /readyz answers (503) before the runners are loaded.
NOT_READY_MESSAGE = "Runners are not ready."
# Where `bentoml serve` logs its start line, and how that line begins.
SERVE_LOGGER = "bentoml.serving"
START_LINE = "Starting production"


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


def import_xgboost_without_sklearn() -> None:
    """Import XGBoost without scikit-learn, for a command that only predicts: XGBoost imports
    scikit-learn for its estimator classes whenever it is installed, which takes longer than the
    rest of its import. XGBoost goes without them when that import fails, and an entry of None
    in ``sys.modules`` makes it fail at once; the entry goes again afterwards."""
    if "xgboost" in sys.modules:
        return
    blocked = sys.modules.setdefault("sklearn", None) is None
    try:
        import xgboost  # noqa: F401
    finally:
        if blocked:
            del sys.modules["sklearn"]


def loaded_runnable(runner):
    """The runnable a runner has loaded into this process, or None before it is loaded."""
    return getattr(getattr(runner, "_runner_handle", None), "_runnable", None)


def deprecation_warning_class() -> type[Warning]:
    """The category of BentoML's own deprecation warnings."""
    from bentoml._internal.utils import BentoMLDeprecationWarning

    return BentoMLDeprecationWarning


def report_as(descriptor: type, stock: type) -> None:
    """Have an IO descriptor subclass report itself as ``stock``: BentoML's OpenAPI spec and its
    client tell descriptors apart by ``descriptor_id``, which a subclass does not inherit."""
    descriptor.descriptor_id = stock.descriptor_id


def without_error_prefix(message: str) -> str:
    """A 4xx message BentoML's HTTP app answered, without the prefix it adds (ERROR_PREFIX)."""
    return message.removeprefix(ERROR_PREFIX)


class _StartLine(logging.Filter):
    """Rewrites `bentoml serve`'s start line with ``rewrite(scheme, host, port)``."""

    def __init__(self, rewrite: Callable[[str, str, int], str]):
        super().__init__()
        self.rewrite = rewrite

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(START_LINE) and isinstance(record.args, tuple) and len(record.args) == 5:
            _, _, scheme, host, port = record.args
            record.msg, record.args = self.rewrite(scheme, str(host), port), ()
        return True


def start_line_filter(rewrite: Callable[[str, str, int], str]) -> logging.Filter:
    """A filter that replaces BentoML's start line (``'Starting production %s BentoServer from
    "%s" listening on %s://%s:%d ...'``) with what ``rewrite(scheme, host, port)`` returns."""
    return _StartLine(rewrite)


def rewrite_start_line(rewrite: Callable[[str, str, int], str]) -> None:
    """Put :func:`start_line_filter` on the logger `bentoml serve` writes its start line to."""
    logging.getLogger(SERVE_LOGGER).addFilter(start_line_filter(rewrite))


def arbiter_binds_api_socket_without_listening() -> None:
    """In `bentoml serve`'s parent (its CLI command loads the service before it creates the
    arbiter's sockets): circus binds the API socket with SO_REUSEPORT and does not listen on it
    (``CircusSocket.bind_and_listen``, patched once); any other circus socket is bound as circus
    does. Elsewhere (workers, Lambda, tests) circus is not even imported."""
    if SERVE_COMMAND_MODULE not in sys.modules:
        return
    from circus.sockets import CircusSocket as circus_socket

    if getattr(circus_socket.bind_and_listen, "_binds_api_socket_only", False):
        return
    stock_bind_and_listen = circus_socket.bind_and_listen

    def bind_and_listen(self):
        if self.name != API_SOCKET_NAME or self.is_unix or self.interface is not None:
            return stock_bind_and_listen(self)
        self.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.bind((self.host, self.port))
        self.setblocking(bool(self.blocking))
        self.host, self.port = self.getsockname()[:2]

    bind_and_listen._binds_api_socket_only = True
    circus_socket.bind_and_listen = bind_and_listen


def inherited_api_fd() -> int | None:
    """The descriptor of the API socket an HTTP API worker of `bentoml serve` inherited (its
    ``--fd`` argument), else None."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(main_spec, "name", None) != API_WORKER_MODULE or "--fd" not in sys.argv[:-1]:
        return None
    value = sys.argv[sys.argv.index("--fd") + 1]
    return int(value) if value.isdigit() else None


def start_app(asgi_app) -> None:
    """Run an ASGI app's start-up (the lifespan's ``startup``), as a server does before its first
    request, on this thread's event loop (``Mangum(...)`` sets one up), and leave the app
    started: its shutdown is never run. Mangum's ``LifespanCycle`` does the work."""
    from mangum.protocols import LifespanCycle

    LifespanCycle(asgi_app, "on").__enter__()
