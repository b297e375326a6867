"""How `bentoml serve` is tuned for this service: BentoML's settings (workers, metrics, tracing,
the access log) for a model that predicts in a fraction of a millisecond, where BentoML's
per-request machinery, not the model, is the cost; connections spread over the workers' own
sockets; a request timeout that cleans up after itself; refusals logged without a traceback.
No side effects at import: src/service.py applies them. BentoML's internals are reached through
src/bentoml_adapter.py.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import sys

from starlette.responses import JSONResponse

from src import bentoml_adapter, config


def tune_bentoml_server() -> None:
    """Tracing (and its middleware), Prometheus metrics and the access log off unless config.py's
    flags ask for them (each costs more per request than the prediction); BentoML's request
    timeout off (:class:`RequestTimeout` takes its place); the worker count, if set; one socket
    per worker (:func:`balance_connections`).

    Called from src/service.py, so it runs in `bentoml serve`'s parent and in every worker
    before BentoML builds its app: the tutorial's plain `bentoml serve` command gets it."""
    bentoml_adapter.configure_api_server(
        metrics=config.SERVER_METRICS,
        access_log=config.ACCESS_LOG,
        workers=config.SERVER_WORKERS or None,
        tracing=config.TRACING,
    )
    if not config.TRACING:
        bentoml_adapter.leave_out_tracing_middleware()
    balance_connections()


# ---------------------------------------------------------------------------- connections per worker


def balance_connections() -> None:
    """Give each HTTP API worker its own listening socket on the server's port (SO_REUSEPORT),
    so that the kernel spreads new connections evenly over the workers.

    Stock `bentoml serve` has every worker accept from one shared socket, and the first worker to
    wake up takes every connection waiting, so one core may serve a burst alone. Here the arbiter
    binds the port (keeping it reserved) without listening (src/bentoml_adapter.py), and each
    worker listens on a SO_REUSEPORT socket of its own; a worker that cannot take one listens on
    the shared socket. Linux only; a no-op outside `bentoml serve`.
    """
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return
    bentoml_adapter.arbiter_binds_api_socket_without_listening()
    _worker_takes_its_own_socket()


def _worker_takes_its_own_socket() -> None:
    """In an HTTP API worker whose inherited socket is the arbiter's unlistened SO_REUSEPORT one:
    put a new socket bound to the same address in its place (same descriptor number, so the
    worker's `socket.socket(fileno=fd)` picks it up); uvicorn listens on it after start-up."""
    fd = bentoml_adapter.inherited_api_fd()
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
    """BentoML's HTTP app logs every exception an endpoint raises at ERROR with a traceback, a
    client's bad request included. Drop those records for ``kinds`` (the service's 4xx, which the
    request log records with their reason); any other exception, every 5xx among them, keeps its
    ERROR and traceback."""
    bentoml_adapter.http_app_module().logger.addFilter(_DropTracebacksOf(kinds))


def timeout_message(timeout: float) -> str:
    """What the 504 of :class:`RequestTimeout` says."""
    return f"not answered within {timeout} s"


class RequestTimeout:
    """Answer 504 when a request takes longer than ``timeout`` seconds.

    One timer per event loop watches every request in flight: it is set for the earliest
    deadline, cancels the requests whose deadline has passed, and is cancelled as soon as no
    request is in flight, so nothing outlives the requests (BentoML's own keeps a timer per
    request for 60 s; a timer per request would also cost more than the rest of this)."""

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
                response = JSONResponse(timeout_message(self.timeout), status_code=504)
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
    collector's full passes, whose pauses otherwise land on requests in flight. Collected first,
    unless the collector is paused: a start that paused it (the Lambda handler's cold start) has
    made little garbage, and a full pass would cost more than it frees."""
    if gc.isenabled():
        gc.collect()
    gc.freeze()
