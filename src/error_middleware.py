"""One shape for every error answer: ``{"error": "<message>"}``, and the service page at ``/``.

Whoever produces an error (the validation, Starlette's router, the request timeout, BentoML's
handler of a failing endpoint), it leaves the service in that shape: :class:`ErrorMiddleware`
rewrites the few error bodies that are not already that shape. Answers below 400 pass through
untouched. The same middleware answers ``GET /`` with the page (src/service_page.py), so the
page costs no extra layer on every other request.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from src import bentoml_adapter, config, request_log

ERROR_CONTENT_TYPE = "application/json"
FAILURE_MESSAGE = "the service failed to answer; its log has the details"
# What a 404 lists: every route the service answers, as src/config.py names them.
_ANSWERED = (
    " and ".join(f"POST {route}" for route in config.PREDICTION_ROUTES)
    + f" (a JSON 2-D array of features), GET {config.PAGE_ROUTE} (its page), "
    + f"GET {config.DOCUMENT_ROUTE} (its OpenAPI document), "
    + " and ".join(f"GET {route}" for route in config.HEALTH_ROUTES)
)


def _shown(path: str) -> str:
    return repr(path[:200])  # a path may echo anything the client sent: cut it short


def not_found_message(path: str) -> str:
    return f"no such path: {_shown(path)}; the service answers {_ANSWERED}"


def method_not_allowed_message(path: str, method: str, allow: str) -> str:
    return f"{_shown(path)} does not take {method}; it takes {allow or 'no other method'}"


def _error_message(status: int, body: bytes, content_type: str, scope, allow: str) -> str | None:
    """The message for an error answer, or None when ``body`` already is ``{"error": ...}``."""
    refusal = scope.get(request_log.REFUSAL)
    if refusal is not None:
        return refusal
    if content_type.startswith("application/json"):
        try:
            found = json.loads(body)
        except ValueError:
            found = None
        if isinstance(found, dict) and set(found) == {"error"} and isinstance(found["error"], str):
            return None
        if isinstance(found, str) and found:
            return bentoml_adapter.without_error_prefix(found)
    method, path = scope.get("method", ""), scope.get("path", "")
    if status == 404:
        return not_found_message(path)
    if status == 405:
        return method_not_allowed_message(path, method, allow)
    text = body.decode("utf-8", "replace").strip()
    if content_type.startswith("text/plain") and text:
        return text
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"error {status}"


class ErrorMiddleware:
    """ASGI middleware: every error answer (status >= 400) as ``{"error": "<message>"}`` with
    ``Content-Type: application/json``, and the service page at ``GET /``.

    For a request the validation refused, the message is the validation's own (without BentoML's
    prefix); a JSON string body becomes that object; Starlette's plain-text 404 and 405 get a
    message that says what the service answers. An exception that escapes the app is answered
    500 in the same shape, then raised again so the server logs its traceback."""

    def __init__(self, app, page: bytes):
        self.app, self.page = app, page

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == config.PAGE_ROUTE and scope["method"] in ("GET", "HEAD"):
            return await self._send_page(scope, send)

        held: dict | None = None  # an error answer's start, kept until its body is complete
        chunks: list[bytes] = []
        forwarded = False  # whether anything reached the client's side

        async def shaping_send(message):
            nonlocal held, forwarded
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held = message
                return
            if message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                forwarded = True
                return await self._send_error(scope, send, held, b"".join(chunks))
            forwarded = True
            await send(message)

        try:
            await self.app(scope, receive, shaping_send)
        except Exception:
            if not forwarded:
                await self._send_json(scope, send, 500, [], FAILURE_MESSAGE)
            raise

    async def _send_page(self, scope, send):
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(self.page)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else self.page})

    async def _send_error(self, scope, send, start: dict, body: bytes):
        headers = [(name, value) for name, value in start.get("headers", ())]
        found = {name.lower(): value.decode("latin-1") for name, value in headers}
        message = _error_message(start["status"], body, found.get(b"content-type", ""), scope, found.get(b"allow", ""))
        if message is None:  # already the contract's shape
            await send(start)
            return await send({"type": "http.response.body", "body": body})
        kept = [(name, value) for name, value in headers if name.lower() not in (b"content-type", b"content-length")]
        await self._send_json(scope, send, start["status"], kept, message)

    @staticmethod
    async def _send_json(scope, send, status: int, headers: list, message: str):
        payload = json.dumps({"error": message}, ensure_ascii=False).encode()
        headers = [
            *headers,
            (b"content-type", ERROR_CONTENT_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else payload})
