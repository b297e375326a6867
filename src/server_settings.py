"""How the service is served: BentoML settings for a model that predicts in a fraction of a
millisecond, where BentoML's per-request machinery, not the model, is the cost.

Measured on 2 cores (bench/results.md): with BentoML's defaults the service answered one row in
1.3 ms at the median and 31 ms at p99, against 0.45 ms and 1 ms for a framework-free app; with
these settings, 0.56 ms and 1.1 ms. No side effects at import: src/service.py applies them.
"""

from __future__ import annotations

import asyncio
import gc
import logging

from starlette.responses import JSONResponse

from src import config


def tune_bentoml_server() -> None:
    """Tracing, Prometheus metrics and the access log off unless config.py's flags ask for them
    (each costs more per request than the prediction); BentoML's request timeout replaced by
    :class:`RequestTimeout`; the worker count, if set.

    Called from src/service.py, so it runs in `bentoml serve`'s parent and in every worker
    before BentoML builds its app: the tutorial's plain `bentoml serve` command gets it."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    api_server = BentoMLContainer.api_server_config
    api_server.traffic.timeout.set(None)  # RequestTimeout below takes its place
    api_server.metrics.enabled.set(config.SERVER_METRICS)
    api_server.logging.access.enabled.set(config.ACCESS_LOG)
    if config.SERVER_WORKERS:
        api_server.workers.set(config.SERVER_WORKERS)
    if not config.TRACING:
        BentoMLContainer.tracing.excluded_urls.set([".*"])


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
    fails before answering leaves the client waiting the full 60 s. Here the timer is
    cancelled as soon as the request finishes (asyncio.timeout)."""

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


def freeze_long_lived_objects(*_) -> None:
    """Everything imported and built by now lives as long as the process: keep it out of the
    collector's full passes, whose pauses otherwise land on requests in flight."""
    gc.collect()
    gc.freeze()
