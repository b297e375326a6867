"""A minimal Lambda Runtime API on loopback, so the image's real entry command
(`python -m awslambdaric lambda_app.handler`) can be driven end to end without AWS.

It implements the calls the runtime interface client makes, as AWS documents them:
GET  /2018-06-01/runtime/invocation/next               → the next event, with its headers
POST /2018-06-01/runtime/invocation/<id>/response      ← the handler's result
POST /2018-06-01/runtime/invocation/<id>/error         ← a handler error
POST /2018-06-01/runtime/init/error                    ← an initialisation error
"""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:xgb-classifier"


class FakeRuntimeApi:
    def __init__(self, events: list[dict]):
        self.pending: queue.Queue = queue.Queue()
        for number, event in enumerate(events):
            self.pending.put((f"request-{number}", event))
        self.results: dict[str, dict] = {}
        self.errors: list[dict] = []
        self.answered_at: dict[str, float] = {}  # time.monotonic() of each result or error
        self.done = threading.Event()
        self.expected = len(events)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _record(self, key, payload, is_error):
        self.answered_at.setdefault(key, time.monotonic())
        if is_error:
            self.errors.append({"request": key, **payload})
            self.done.set()
        else:
            self.results[key] = payload
            if len(self.results) == self.expected:
                self.done.set()

    def _handler_class(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                request_id, event = api.pending.get()  # blocks like the real API between invocations
                self._reply(
                    200,
                    json.dumps(event).encode(),
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(int((time.time() + 30) * 1000)),
                        "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
                    },
                )

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = json.loads(body or b"{}")
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if parts[:2] == ["init", "error"]:
                    api._record("init", payload, is_error=True)
                elif len(parts) == 3 and parts[0] == "invocation":
                    api._record(parts[1], payload, is_error=parts[2] == "error")
                else:
                    return self._reply(404)
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        return Handler
