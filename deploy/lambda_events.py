"""API Gateway's side of the Lambda function: the payload format 2.0 event an HTTP API sends for
a request, and the HTTP answer it makes of the function's result.

`python -m deploy.lambda_local` builds its events here from each HTTP request it takes; the
tests and the benchmarks build theirs here too, from :func:`http_api_v2`, which fills in the
values of the example event in the API Gateway developer guide ("Working with AWS Lambda proxy
integrations for HTTP APIs").
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

# Content types API Gateway passes as text; every other body (and a body without one) is base64.
TEXT_TYPES = ("application/json", "application/xml", "application/javascript")
# The developer guide's example API, its address, caller and request.
API_ID = "r3pmxmplak"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"
SOURCE_IP = "205.255.255.176"
USER_AGENT = "curl/8.5.0"
TRACE_ID = "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e"
REQUEST_ID = "JKJaXmPLvHcESHA="
REQUEST_TIME = 1_583_817_383.220


def is_text(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_TYPES


def http_event(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str | None = None,
    now: float | None = None,
    *,
    route_key: str = "$default",
    stage: str = "$default",
    api_id: str = "local",
    base64_body: bool | None = None,
) -> dict:
    """The payload format 2.0 event API Gateway's HTTP API sends for this request.

    ``route_key`` and ``stage`` are the route and stage that took it (``$default``: the catch-all
    route of the default stage); ``base64_body`` None encodes the body where API Gateway does,
    True or False forces it either way."""
    now = time.time() if now is None else now
    split = urlsplit(target)
    path = split.path or "/"
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        lowered[name] = f"{lowered[name]},{value}" if name in lowered else value
    host = lowered.get("host", "localhost")
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": split.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": api_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": request_id or base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
            "routeKey": route_key,
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if split.query:
        parameters: dict[str, str] = {}
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
        event["queryStringParameters"] = parameters
    if body:
        text = None
        if base64_body is False or (base64_body is None and is_text(lowered.get("content-type"))):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                if base64_body is False:
                    raise
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = text
    return event


def http_api_v2(
    body, path="/classify", method="POST", content_type="application/json", stage="$default", base64_body=False
) -> dict:
    """The event the developer guide's example HTTP API sends for ``method path`` with ``body``
    (a JSON-able value, text, or raw bytes; raw bytes need ``base64_body`` unless UTF-8), through
    the route ``method path`` of ``stage``."""
    raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
    headers = [
        ("accept", "*/*"),
        ("content-length", str(len(raw))),
        ("host", DOMAIN),
        ("user-agent", USER_AGENT),
        ("x-amzn-trace-id", TRACE_ID),
        ("x-forwarded-for", SOURCE_IP),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
    ]
    if content_type is not None:
        headers.append(("content-type", content_type))
    return http_event(
        method,
        path if stage == "$default" else f"/{stage}{path}",
        headers,
        raw,
        SOURCE_IP,
        REQUEST_ID,
        REQUEST_TIME,
        route_key=f"{method} {path}",
        stage=stage,
        api_id=API_ID,
        base64_body=base64_body,
    )


def http_answer(result) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) API Gateway makes of a payload 2.0 result.

    A dict with ``statusCode`` is taken as it is (``cookies`` become Set-Cookie headers, a base64
    body is decoded); any other JSON value is a 200 with that value as an ``application/json`` body."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return 200, [("content-type", "application/json")], json.dumps(result).encode()
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or ())
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, raw
