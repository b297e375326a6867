"""One JSON line per request, and the model version on every answer.

:class:`RequestLog`, the service's outermost ASGI middleware, sees every answer (the timeout's 504
included), adds ``X-Model-Version`` and, when on, records each request once: ``time``, ``level``,
``message`` and :data:`FIELDS`. The record is one JSON line on stdout (:func:`log_to_stream`: a
`logging` record would cost as much again), or, in Lambda's JSON log format
(``AWS_LAMBDA_LOG_FORMAT=JSON``), a `logging` record whose fields awslambdaric's formatter writes
as keys of its own JSON object (:func:`log_through_logging`). The service adds what only it knows
through keys of the ASGI scope: the row count (:data:`ROWS`), a refusal's reason
(:data:`REFUSAL`) and more keys for the line (:data:`EXTRA`: the drift counts' Embedded Metric
Format document); code that holds no scope sets them with :func:`annotate`.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import sys
import time

import orjson

logger = logging.getLogger("xgb_classifier.requests")

ROWS = "xgb.rows"
REFUSAL = "xgb.refusal"
EXTRA = "xgb.extra"

_current_scope: contextvars.ContextVar[dict | None] = contextvars.ContextVar("request_scope", default=None)


def annotate(key: str, value) -> None:
    """Set ``key`` of the current request's scope (from an endpoint, which holds none)."""
    scope = _current_scope.get()
    if scope is not None:
        scope[key] = value


# After time, level and message; api_request_id (Lambda) and error (a refusal) only when they apply.
FIELDS = ("request_id", "method", "route", "status", "rows", "latency_ms", "model_version", "api_request_id", "error")
_MAX_TEXT = 300  # a refusal reason or a path is cut here: both may echo what the client sent

_stream = sys.stdout  # None: through `logging`


def log_to_stream(stream=None) -> None:
    """Write each request as one JSON line to ``stream`` (stdout), apart from other logs."""
    global _stream
    _stream = sys.stdout if stream is None else stream


def log_through_logging() -> None:
    """Send each request as a `logging` record on :data:`logger` (at INFO and above)."""
    global _stream
    _stream = None
    logger.setLevel(logging.INFO)


if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
    log_through_logging()

_ids = itertools.count(1)
_ID_PREFIX = os.urandom(6).hex()  # per process: ids stay unique across workers and restarts
_this_second = (-1, "")


def _local_request_id() -> str:
    return f"{_ID_PREFIX}-{next(_ids)}"


def _utc_now() -> str:
    """ISO 8601 UTC with milliseconds; the part up to the second is formatted once a second."""
    global _this_second
    now = time.time()
    second, text = _this_second
    if int(now) != second:
        second = int(now)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _this_second = (second, text)
    return f"{text}.{int((now - second) * 1000):03d}Z"


_LEVEL_NAMES = {level: logging.getLevelName(level) for level in (logging.INFO, logging.WARNING, logging.ERROR)}


def _level(status: int | None) -> int:
    if status is None or status >= 500:
        return logging.ERROR
    return logging.WARNING if status >= 400 else logging.INFO


def _json_line(entry: dict) -> str:
    """``entry`` as one line of ASCII JSON: orjson's, or the standard library's where it would not
    be ASCII (orjson writes UTF-8 as is and refuses lone surrogates, which a path may hold)."""
    try:
        line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE).decode()
    except orjson.JSONEncodeError:
        return json.dumps(entry) + "\n"
    return line if line.isascii() else json.dumps(entry) + "\n"


def _write_line(stream, entry: dict) -> None:
    try:
        stream.write(_json_line(entry))
        stream.flush()
    except (OSError, ValueError):  # stdout closed or gone: the answer matters more than its line
        pass


class RequestLog:
    """ASGI middleware: ``X-Model-Version: <model_version>`` on every answer and, if ``log``,
    one record per request (see the module's description)."""

    def __init__(self, app, model_version: str, log: bool = True):
        self.app, self.model_version, self.log = app, model_version, log
        self.header = (b"x-model-version", model_version.encode("latin-1"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = None

        async def send_with_version(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        token = _current_scope.set(scope)
        try:
            await self.app(scope, receive, send_with_version)
        except Exception:
            status = status or 500  # the server's error middleware answers 500
            raise
        finally:
            _current_scope.reset(token)
            if self.log:
                self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope, status: int | None, elapsed_s: float) -> None:
        level = _level(status)
        stream = _stream
        if stream is None and not logger.isEnabledFor(level):
            return
        context = scope.get("aws.context")
        method, route = scope.get("method"), scope.get("path", "")[:_MAX_TEXT]
        message = f"{method} {route} {status}"
        fields = {
            "request_id": getattr(context, "aws_request_id", None) or _local_request_id(),
            "method": method,
            "route": route,
            "status": status,
            "rows": scope.get(ROWS),
            "latency_ms": round(elapsed_s * 1000, 3),
            "model_version": self.model_version,
        }
        if stream is not None:  # the line's own keys come first, as before
            fields = {"time": _utc_now(), "level": _LEVEL_NAMES[level], "message": message, **fields}
        event = scope.get("aws.event")
        if isinstance(event, dict):
            request_context = event.get("requestContext")
            if isinstance(request_context, dict) and request_context.get("requestId"):
                fields["api_request_id"] = request_context["requestId"]
        refusal = scope.get(REFUSAL)
        if refusal is not None:
            fields["error"] = refusal[:_MAX_TEXT]
        extra = scope.get(EXTRA)
        if extra:
            fields.update(extra)
        if stream is None:
            logger.log(level, message, extra={"time": _utc_now(), **fields})
        else:
            _write_line(stream, fields)
