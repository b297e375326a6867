"""How the service is served: BentoML settings for a model that predicts in a fraction of a
millisecond, where BentoML's per-request machinery, not the model, is the cost (figures in
bench/results.md). No side effects at import: src/service.py applies them.

This is the one module that reaches into ``bentoml._internal`` and the server's process
machinery; tests/test_server_balance.py fails loudly when the pinned BentoML changes any of it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import sys

from starlette.responses import JSONResponse

from src import config


def tune_bentoml_server() -> None:
    """Tracing (and its middleware), Prometheus metrics and the access log off unless config.py's
    flags ask for them (each costs more per request than the prediction); BentoML's request
    timeout replaced by :class:`RequestTimeout`; the worker count, if set.

    Called from src/service.py, so it runs in `bentoml serve`'s parent and in every worker
    before BentoML builds its app: the tutorial's plain `bentoml serve` command gets it.
    Connections are spread over the workers too (:func:`balance_connections`)."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    api_server = BentoMLContainer.api_server_config
    api_server.traffic.timeout.set(None)  # RequestTimeout below takes its place
    api_server.metrics.enabled.set(config.SERVER_METRICS)
    api_server.logging.access.enabled.set(config.ACCESS_LOG)
    if config.SERVER_WORKERS:
        api_server.workers.set(config.SERVER_WORKERS)
    if not config.TRACING:
        BentoMLContainer.tracing.excluded_urls.set([".*"])
        _leave_out_tracing_middleware()
    balance_connections()


def _leave_out_tracing_middleware() -> None:
    """With tracing off every URL is excluded from it, and BentoML's OpenTelemetry middleware,
    which it adds to every HTTP app, only builds each request's URL to find that out: leave it
    out of the app (``HTTPAppFactory.middlewares`` without it)."""
    from bentoml._internal.server import http_app

    factory = http_app.HTTPAppFactory
    if getattr(factory.middlewares.fget, "_leaves_out_tracing", False):
        return
    stock = factory.middlewares.fget

    def middlewares(self):
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return [middleware for middleware in stock(self) if middleware.cls is not OpenTelemetryMiddleware]

    middlewares._leaves_out_tracing = True
    factory.middlewares = property(middlewares)


def stored_model(tag: str):
    """``bentoml.models.get(tag)`` without importing ``bentoml.models``: that module's import
    loads BentoML's usage tracking and, with it, its cloud client (httpx, rich, the cloud
    schemas), a tenth of a second of every Lambda cold start for nothing serving uses. Same
    store, same model aliases, the same NotFound for a missing tag."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    aliases = BentoMLContainer.model_aliases.get()
    return BentoMLContainer.model_store.get().get(aliases.get(tag, tag))


# ---------------------------------------------------------------------------- connections per worker

# bentoml.serving.API_SERVER_NAME: the name of the arbiter's socket for the HTTP API workers, which
# each worker receives as ``--fd $(circus.sockets.<name>)``.
API_SOCKET_NAME = "_bento_api_server"
# The module `bentoml serve` runs for each HTTP API worker (bentoml.serving.SCRIPT_API_SERVER).
API_WORKER_MODULE = "bentoml_cli.worker.http_api_server"


def balance_connections() -> None:
    """Give each HTTP API worker its own listening socket on the server's port (SO_REUSEPORT),
    so that the kernel spreads new connections evenly over the workers.

    Stock `bentoml serve` has every worker accept from one shared socket, and the first worker
    to wake up accepts every connection waiting: under a burst of keep-alive connections one
    worker serves them all and the other cores idle. Here the arbiter binds the port (so it
    stays reserved) without listening, and each worker binds a SO_REUSEPORT socket of its own
    and listens on it once its app has started. A worker that fails to take its own socket
    listens on the shared one, as stock BentoML does. Only processes of the same user can share
    a SO_REUSEPORT port. Linux only (elsewhere SO_REUSEPORT does not balance); a no-op outside
    `bentoml serve`.
    """
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return
    _arbiter_binds_without_listening()
    _worker_takes_its_own_socket()


def _arbiter_binds_without_listening() -> None:
    """In `bentoml serve`'s parent (its CLI command loads the service before it creates the
    arbiter's sockets): the API socket is bound with SO_REUSEPORT and left unlistened, so that
    only the workers' own sockets receive connections. Any other circus socket is bound as
    circus does. Elsewhere (workers, Lambda, tests) circus is not even imported."""
    if "bentoml_cli.serve" not in sys.modules:
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


def _inherited_api_fd() -> int | None:
    """The ``--fd`` of an HTTP API worker started by `bentoml serve`, else None."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(main_spec, "name", None) != API_WORKER_MODULE or "--fd" not in sys.argv[:-1]:
        return None
    value = sys.argv[sys.argv.index("--fd") + 1]
    return int(value) if value.isdigit() else None


def _worker_takes_its_own_socket() -> None:
    """In an HTTP API worker whose inherited socket is the arbiter's unlistened SO_REUSEPORT one:
    put a new socket bound to the same address in its place (same descriptor number, so the
    worker's `socket.socket(fileno=fd)` picks it up); uvicorn listens on it after start-up."""
    fd = _inherited_api_fd()
    if fd is None:
        return
    try:
        inherited = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    with inherited:
        if (
            inherited.type != socket.SOCK_STREAM
            or inherited.family not in (socket.AF_INET, socket.AF_INET6)
            or inherited.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            or not inherited.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        ):
            return
        try:
            with socket.socket(inherited.family, socket.SOCK_STREAM) as own:
                own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                own.bind(inherited.getsockname())
                os.dup2(own.fileno(), fd)
        except OSError as error:
            logging.getLogger(__name__).warning(
                "this worker shares the server's socket (no socket of its own: %s)", error
            )


class _DropTracebacksOf(logging.Filter):
    """Drops records that carry an exception of the given kinds."""

    def __init__(self, kinds: tuple[type[BaseException], ...]):
        super().__init__()
        self.kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        exc_type = record.exc_info[0] if record.exc_info else None
        return not (exc_type is not None and issubclass(exc_type, self.kinds))


def quiet_refusals(*kinds: type[BaseException]) -> None:
    """BentoML's HTTP app logs every exception an endpoint raises at ERROR with a traceback
    (``log_exception`` in bentoml._internal.server.http_app), a client's bad request included.
    Drop those records for ``kinds`` (the service's 4xx, which the request log records with
    their reason); any other exception, every 5xx among them, keeps its ERROR and traceback."""
    from bentoml._internal.server import http_app

    http_app.logger.addFilter(_DropTracebacksOf(kinds))


class RequestTimeout:
    """Answer 504 when a request takes longer than ``timeout`` seconds.

    BentoML's own timeout middleware schedules a timer per request and never cancels it: each
    keeps the request's objects alive for 60 s (memory climbs under load), and a handler that
    fails before answering leaves the client waiting the full 60 s. Here one timer per event
    loop watches every request in flight: it is set for the earliest deadline, cancels the
    requests whose deadline has passed, and is itself cancelled as soon as no request is in
    flight, so nothing outlives the requests. A timer per request (``asyncio.timeout``) would
    cost more than the rest of this middleware under load."""

    def __init__(self, app, timeout: float):
        self.app, self.timeout = app, timeout
        self._in_flight: dict[asyncio.Task, list] = {}  # task: [deadline, answer started, timed out]
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        state = [loop.time() + self.timeout, False, False]

        async def tracked_send(message):
            state[1] = True
            await send(message)

        self._in_flight[task] = state
        if self._watchdog is None or self._watchdog_loop is not loop:
            self._watch(loop, state[0])
        try:
            await self.app(scope, receive, tracked_send)
        except asyncio.CancelledError:
            if not state[2] or task.uncancel() > 0:
                raise  # not (only) the timeout's cancellation
            if not state[1]:
                response = JSONResponse(f"not answered within {self.timeout} s", status_code=504)
                await response(scope, receive, send)
        finally:
            del self._in_flight[task]
            if not self._in_flight and self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None

    def _watch(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._watchdog_loop = loop
        self._watchdog = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        """Cancel the requests past their deadline; set the timer for the next deadline."""
        loop = self._watchdog_loop
        now, next_deadline = loop.time(), None
        for task, state in list(self._in_flight.items()):
            if state[2]:
                continue
            if state[0] <= now:
                state[2] = True
                task.cancel()
            elif next_deadline is None or state[0] < next_deadline:
                next_deadline = state[0]
        self._watchdog = None
        if next_deadline is not None:
            self._watch(loop, next_deadline)


def freeze_long_lived_objects(*_) -> None:
    """Everything imported and built by now lives as long as the process: keep it out of the
    collector's full passes, whose pauses otherwise land on requests in flight."""
    gc.collect()
    gc.freeze()
