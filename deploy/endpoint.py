"""The first call to a new deployment: the example rows to <endpoint>/classify, authenticated as
the spec's `auth` asks, retried while the API and a cold function come up: 429 and 5xx for up to
90 s, and when the apply created the endpoint (a stage, a function URL or an invoke permission)
403 and 404 for its first minute too; any other refusal fails at once.

auth iam: the call is signed with SigV4 from the deployer's AWS credentials (service
`execute-api` for the HTTP API, `lambda` for a function URL). auth jwt: the token in
XGB_DEPLOY_JWT goes in `Authorization: Bearer`; without one, only the public `/livez` is called
and the deploy says that the model route was not tried.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from deploy.deployment import Deployment
from deploy.steps import StepFailed
from src import client, config

RETRY_STATUSES = {429, 500, 502, 503, 504}
# Right after a create, a function URL's permission and an HTTP API's $default stage take seconds
# to appear: until then AWS answers 403 or 404. Retried for this long after a create only.
NEW_ENDPOINT_STATUSES = {403, 404}
NEW_ENDPOINT_WINDOW_S = 60
JWT_VARIABLE = "XGB_DEPLOY_JWT"
PUBLIC_ROUTE = "/livez"


@dataclass(frozen=True)
class Caller:
    """How the first call authenticates: SigV4 for ``service`` in ``region``, a bearer ``token``, or neither."""

    service: str = ""
    region: str = ""
    token: str = ""

    def headers(self, method: str, url: str, body: bytes | None) -> dict:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            return {**headers, "Authorization": f"Bearer {self.token}"}
        if not self.service:
            return headers
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = boto3.Session(region_name=self.region).get_credentials()
        if credentials is None:
            raise StepFailed("no AWS credentials to sign the first call with (auth is iam)")
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), self.service, self.region).add_auth(request)
        return dict(request.headers.items())


def request_once(caller: Caller, method: str, url: str, body: bytes | None, timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method, headers=caller.headers(method, url, body))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def answer(
    url: str, caller: Caller, body: bytes | None, created: bool, wait_s: float, timeout: float
) -> tuple[int, str]:
    """The first 200 from ``url`` (POST with ``body``, else GET) or the last refusal: 429 and 5xx
    are retried for ``wait_s``, 403 and 404 for the first minute when ``created``, others not."""
    started = time.monotonic()
    for attempt in itertools.count(1):
        try:
            status, text = request_once(caller, "GET" if body is None else "POST", url, body, timeout)
        except OSError as error:
            status, text = 0, str(error)
        elapsed = time.monotonic() - started
        transient = status == 0 or status in RETRY_STATUSES
        appearing = created and status in NEW_ENDPOINT_STATUSES and elapsed < NEW_ENDPOINT_WINDOW_S
        if status == 200 or not (transient or appearing) or elapsed > wait_s:
            return status, text
        time.sleep(min(3, attempt))


# For each endpoint, the service a SigV4-signed call names and the IAM action it needs (auth iam).
SIGNED_CALL = {
    "http_api": ("execute-api", "execute-api:Invoke"),
    "function_url": ("lambda", "lambda:InvokeFunctionUrl"),
}


def refusal_hint(deployment: Deployment, status: int) -> str:
    auth = deployment.spec["auth"]
    if status in (401, 403) and auth == "iam":
        permission = SIGNED_CALL[deployment.spec["endpoint"]][1]
        return f"your AWS identity needs {permission} on this deployment to call it (the deployment itself is in place)"
    if status in (401, 403) and auth == "jwt":
        return f"{JWT_VARIABLE} must hold a token that jwt_issuer issued for one of jwt_audience"
    return f"read the function's logs: `aws logs tail /aws/lambda/{deployment.name} --since 10m`"


def check(
    deployment: Deployment, endpoint: str, created: bool = False, wait_s: float = 90, timeout: float = client.TIMEOUT_S
) -> str:
    """POST the example rows until a 200 with one label per row (with auth jwt and no token: GET
    the public health route); returns what was called and how it answered."""
    base = endpoint.rstrip("/")
    auth = deployment.spec["auth"]
    caller = Caller()
    if auth == "iam":
        caller = Caller(service=SIGNED_CALL[deployment.spec["endpoint"]][0], region=deployment.region)
    elif auth == "jwt":
        caller = Caller(token=os.environ.get(JWT_VARIABLE, ""))
    if auth == "jwt" and not caller.token:
        status, text = answer(base + PUBLIC_ROUTE, caller, None, created, wait_s, timeout)
        if status != 200:
            raise StepFailed(
                f"{base}{PUBLIC_ROUTE} did not answer ({status or 'no connection'}: {text[:300]})",
                refusal_hint(deployment, status),
            )
        return (
            f"{base}{PUBLIC_ROUTE} answered 200; /classify was not tried: auth is jwt and {JWT_VARIABLE} "
            "is not set (set it to a token to have the model route called)"
        )
    rows = config.EXAMPLE_ROWS
    status, text = answer(base + "/classify", caller, json.dumps(rows).encode(), created, wait_s, timeout)
    if status != 200:
        raise StepFailed(
            f"{base}/classify did not answer the example rows ({status or 'no connection'}: {text[:300]})",
            refusal_hint(deployment, status),
        )
    try:
        labels = json.loads(text)
    except ValueError:
        labels = None
    if not (isinstance(labels, list) and len(labels) == len(rows) and set(labels) <= {0, 1}):
        raise StepFailed(f"{base}/classify answered 200 with {text[:200]!r}, not {len(rows)} labels")
    return f"{base}/classify answered {labels}"
