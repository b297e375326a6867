"""API Gateway events shaped as AWS documents them (Lambda proxy integrations).

Payload format 2.0 is what the HTTP API in main.tf sends; 1.0 is what REST APIs and HTTP APIs
set to 1.0 send. Field for field these follow the examples in the API Gateway developer guide
("Working with AWS Lambda proxy integrations for HTTP APIs" and "... for REST APIs").
"""

from __future__ import annotations

import base64
import json

API_ID = "r3pmxmplak"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


def _body(body) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def http_api_v2(
    body, path="/classify", method="POST", content_type="application/json", stage="$default", base64_body=False
) -> dict:
    """``body``: a JSON-able value, text, or raw bytes (raw bytes need ``base64_body`` unless UTF-8)."""
    raw = body if isinstance(body, bytes) else _body(body).encode()
    headers = {
        "accept": "*/*",
        "content-length": str(len(raw)),
        "host": DOMAIN,
        "user-agent": "curl/8.5.0",
        "x-amzn-trace-id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
        "x-forwarded-for": "205.255.255.176",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if content_type is not None:
        headers["content-type"] = content_type
    full_path = path if stage == "$default" else f"/{stage}{path}"
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": full_path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": DOMAIN,
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": full_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "205.255.255.176",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": f"{method} {path}",
            "stage": stage,
            "time": "10/Mar/2020:05:16:23 +0000",
            "timeEpoch": 1583817383220,
        },
        "body": base64.b64encode(raw).decode() if base64_body else raw.decode(),
        "isBase64Encoded": base64_body,
    }


def rest_api_v1(body, path="/classify", method="POST", content_type="application/json", stage="Prod") -> dict:
    text = _body(body)
    headers = {
        "Accept": "*/*",
        "Host": DOMAIN,
        "User-Agent": "curl/8.5.0",
        "X-Forwarded-For": "205.255.255.176",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if content_type is not None:
        headers["Content-Type"] = content_type
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "2gxmpl",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "extendedRequestId": "JJbxmplHYosFVYQ=",
            "requestTime": "10/Mar/2020:00:03:59 +0000",
            "path": f"/{stage}{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": API_ID,
            "requestTimeEpoch": 1583798639428,
            "requestId": "77375676-xmpl-4b79-853a-f982474efe18",
            "identity": {"sourceIp": "205.255.255.176", "userAgent": "curl/8.5.0"},
            "domainName": DOMAIN,
            "apiId": API_ID,
        },
        "body": text,
        "isBase64Encoded": False,
    }
