"""A stand-in for what AWS puts in front of a deployment: a threaded HTTP proxy on a free port that
answers some requests itself, as API Gateway (or Lambda's own front end) would, and passes the rest
to an upstream server (the local model server, or moto's).

Rules decide, per request, on an answer or None (pass on): `sigv4` checks a SigV4 signature by
computing it again with botocore from the test credentials, `bearer` a JWT-style bearer token,
`refuse_first` answers the first requests to a path with given statuses (a new API or URL that is
not there yet). Every request is kept in `seen` with the status it got.
"""

from __future__ import annotations

import datetime
import hmac
import http.client
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from src import config
from tests.deploy_harness import AWS_ENV, REGION

# The routes main.tf protects with `auth`; the health and documentation routes stay public.
PROTECTED = config.PREDICTION_ROUTES
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "upgrade"}
SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r" ?SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict  # lower-case names
    body: bytes
    status: int = 0


Answer = tuple[int, dict, bytes]
Rule = Callable[[Seen], Answer | None]


def json_answer(status: int, value, **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(value).encode()


def sigv4_problem(
    seen: Seen,
    service: str,
    region: str = REGION,
    access_key: str = AWS_ENV["AWS_ACCESS_KEY_ID"],
    secret_key: str = AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    token: str = AWS_ENV["AWS_SESSION_TOKEN"],
) -> str:
    """Why ``seen`` is not a valid SigV4 request for ``service`` in ``region`` ('' if it is)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    match = SIGV4.fullmatch(seen.headers.get("authorization", ""))
    if not match:
        return "no SigV4 Authorization header"
    if match["key"] != access_key:
        return f"unknown access key {match['key']}"
    if (match["service"], match["region"]) != (service, region):
        return f"signed for {match['service']} in {match['region']}, not {service} in {region}"
    if seen.headers.get("x-amz-security-token") != token:
        return "wrong or missing session token"
    names = match["signed"].split(";")
    if "host" not in names or any(name not in seen.headers for name in names):
        return f"signed headers {names} are not all present (host must be one)"
    stamp = seen.headers.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return f"bad X-Amz-Date {stamp!r}"
    if abs(datetime.datetime.now(datetime.UTC) - signed_at) > datetime.timedelta(minutes=5):
        return "signed too long ago"
    request = AWSRequest(
        method=seen.method,
        url=f"http://{seen.headers['host']}{seen.path}",
        data=seen.body,
        headers={name: seen.headers[name] for name in names},
    )
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(access_key, secret_key, token), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return "" if hmac.compare_digest(expected, match["signature"]) else "signature does not match"


def sigv4(service: str = "execute-api") -> Rule:
    """The protected routes need a valid SigV4 signature (auth iam); 403 otherwise, as AWS answers."""

    def rule(seen: Seen) -> Answer | None:
        if not urlsplit(seen.path).path.startswith(PROTECTED):
            return None
        problem = sigv4_problem(seen, service)
        return json_answer(403, {"message": f"Forbidden ({problem})"}) if problem else None

    return rule


def bearer(token: str) -> Rule:
    """The protected routes need `Authorization: Bearer <token>` (auth jwt); 401 otherwise."""

    def rule(seen: Seen) -> Answer | None:
        if not urlsplit(seen.path).path.startswith(PROTECTED):
            return None
        if seen.headers.get("authorization") == f"Bearer {token}":
            return None
        return json_answer(401, {"message": "Unauthorized"}, **{"www-authenticate": "Bearer"})

    return rule


def refuse_first(statuses: list[int], path: str = "/classify") -> Rule:
    """The first requests to ``path`` get ``statuses`` in turn (API Gateway's bodies), later ones pass."""
    left = list(statuses)
    lock = threading.Lock()

    def rule(seen: Seen) -> Answer | None:
        if urlsplit(seen.path).path != path:
            return None
        with lock:
            if not left:
                return None
            status = left.pop(0)
        return json_answer(status, {"message": http.client.responses[status]})

    return rule


class Gateway:
    """The proxy: ``url`` to call, ``seen`` what came in. Use as a context manager."""

    def __init__(self, upstream: str, *rules: Rule):
        self.upstream, self.rules, self.seen = urlsplit(upstream), list(rules), []
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def __enter__(self) -> Gateway:
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.http.shutdown()
        self.http.server_close()

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and urlsplit(s.path).path == path]

    def answer(self, seen: Seen) -> Answer:
        for rule in self.rules:
            found = rule(seen)
            if found is not None:
                return found
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in seen.headers.items() if k not in HOP_BY_HOP}
            connection.request(seen.method, seen.path, body=seen.body or None, headers=headers)
            response = connection.getresponse()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
            return response.status, kept, response.read()
        finally:
            connection.close()

    def _handler(self):
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                gateway.seen.append(seen)
                status, headers, body = gateway.answer(seen)
                seen.status = status
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one

            def log_message(self, *args) -> None:
                pass

        return Handler
