"""The payload format 1.0 event REST APIs (and HTTP APIs set to 1.0) send, field for field as in
the API Gateway developer guide's example ("Working with AWS Lambda proxy integrations for REST
APIs"). Only the tests send it: main.tf's HTTP API sends 2.0, built by deploy/lambda_events.py.
"""

from __future__ import annotations

import json

from deploy.lambda_events import API_ID, DOMAIN, SOURCE_IP, USER_AGENT


def rest_api_v1(body, path="/classify", method="POST", content_type="application/json", stage="Prod") -> dict:
    text = body if isinstance(body, str) else json.dumps(body)
    headers = {
        "Accept": "*/*",
        "Host": DOMAIN,
        "User-Agent": USER_AGENT,
        "X-Forwarded-For": SOURCE_IP,
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
            "identity": {"sourceIp": SOURCE_IP, "userAgent": USER_AGENT},
            "domainName": DOMAIN,
            "apiId": API_ID,
        },
        "body": text,
        "isBase64Encoded": False,
    }
