"""The Lambda path on localhost: `python -m deploy.lambda_local --port 3001` (or `make lambda-local`).

A local HTTP endpoint in front of the Lambda handler, like `sam local start-api` without Docker:
each request becomes the payload 2.0 event API Gateway's HTTP API would send ($default stage,
headers lower-cased, cookies apart, the body base64-encoded where API Gateway encodes it), the
function (deploy/lambda_runtime.py: the image's code, read-only, under the real awslambdaric)
answers it, and its result becomes the HTTP answer (status, headers, cookies, base64 bodies
decoded); deploy/lambda_events.py makes both translations. curl, `python -m src.client` and
schemathesis use it as they use the deployed URL.

Every method and path reaches the function, as with a function URL; the HTTP API in main.tf
also routes only the service's own paths and answers the rest itself. What API Gateway answers
when the function fails (an error, a timeout, an event over Lambda's 6 MB) is answered here the
same way: ``{"message": "..."}`` with 500 or 413.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deploy.lambda_events import http_answer, http_event
from deploy.lambda_runtime import (
    FunctionConfiguration,
    FunctionError,
    LocalFunction,
    context_from_bento,
    read_only_copy,
)
from src import config
from src.config import PROJECT_ROOT

# API Gateway's limits: an HTTP API takes request bodies up to 10 MB; Lambda takes events up to 6 MB.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
LAMBDA_EVENT_LIMIT_BYTES = config.LAMBDA_PAYLOAD_LIMIT_BYTES


def gateway_error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An answer API Gateway gives itself (the function's answer is missing or not allowed)."""
    return status, [("content-type", "application/json")], json.dumps({"message": message}).encode()


class BodyTooLarge(Exception):
    pass


class LambdaEndpoint(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], function: LocalFunction):
        self.function = function
        super().__init__(address, _handler_class())

    def handle_error(self, request, client_address):  # a client gone mid-answer
        pass


def _handler_class():
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes

        def __getattr__(self, name):  # every method reaches the function, as through a function URL
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def version_string(self):
            return "lambda-local"

        def log_message(self, *args):  # the function logs each request itself
            pass

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks, size = [], 0
                while True:
                    length = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if length == 0:
                        while self.rfile.readline().strip():  # trailers
                            pass
                        return b"".join(chunks)
                    size += length
                    if size > MAX_REQUEST_BYTES:
                        raise BodyTooLarge
                    chunks.append(self.rfile.read(length))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                raise BodyTooLarge
            return self.rfile.read(length)

        def _handle(self):
            try:
                body = self._read_body()
            except BodyTooLarge:
                self.close_connection = True
                return self._send(*gateway_error(413, "Request Entity Too Large"))
            except ValueError:
                self.close_connection = True
                return self._send(*gateway_error(400, "Bad Request"))
            event = http_event(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
            if len(json.dumps(event, ensure_ascii=False).encode()) > LAMBDA_EVENT_LIMIT_BYTES:
                return self._send(*gateway_error(413, "Request Entity Too Large"))
            try:
                answer = http_answer(self.server.function.invoke(event))
            except FunctionError as exc:
                print(f"lambda-local: invocation failed: {exc}", file=sys.stderr, flush=True)
                answer = gateway_error(500, "Internal Server Error")
            except (ValueError, TypeError) as exc:  # a result API Gateway could not turn into an answer
                print(f"lambda-local: malformed Lambda result: {exc}", file=sys.stderr, flush=True)
                answer = gateway_error(500, "Internal Server Error")
            self._send(*answer)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes):
            self.send_response(status)
            skip = {"content-length", "transfer-encoding", "connection", "date", "server"}
            for name, value in headers:
                if name.lower() not in skip:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def date_time_string(self, timestamp=None):
            return formatdate(timestamp, usegmt=True)

    return Handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy.lambda_local", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--bento",
        help="a Bento in the store, e.g. xgb_classifier:latest: its build context "
        "is made with this repository's operator, as `bentoctl build` makes it",
    )
    source.add_argument("--context", type=Path, help="a build context `bentoctl build` made (its app/ and env/)")
    parser.add_argument(
        "--python",
        type=Path,
        default=Path(sys.executable),
        help="the Python the function runs with: the image's environment "
        "(make lambda-local builds .venv-lambda); default: this one",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument("--port", type=int, default=3001, help="default: %(default)s")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=PROJECT_ROOT,
        help="where deployment_config.yaml is (timeout, memory, region, env)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="lambda-local-context-"))
    task = None
    function = None
    try:
        context = args.context or context_from_bento(args.bento, scratch)
        task = read_only_copy(context)
        function = LocalFunction(task, args.python.absolute(), FunctionConfiguration.from_project(args.workdir))
        server = LambdaEndpoint((args.host, args.port), function)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if function is not None:
            function.close()
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    print(
        f"lambda-local: starting the function (lambda_app.handler, {function.python}) from a read-only "
        f"copy of {context} ...",
        flush=True,
    )
    try:
        function.start()
        function.wait_ready()
        print(
            f"lambda-local: the Lambda handler behind API Gateway's payload 2.0 at {url} "
            f"(Press CTRL+C to quit)\n  page and Try it out: {url}/\n  OpenAPI document:    {url}/docs.json\n"
            f"  e.g. python -m src.client --url {url}",
            flush=True,
        )
        server.serve_forever()
    except FunctionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        function.close()
        shutil.rmtree(task.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
