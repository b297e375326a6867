"""The service's request timeout: 504 for a request that takes too long, in the middleware and
in the served app, and no timer left behind by requests that finish (BentoML's own middleware
keeps one alive for 60 s each)."""

import asyncio
import http.client
import inspect
import json
import socket
import time

import pytest
import requests

from src.server_tuning import RequestTimeout
from tests.commands import serve
from tests.sample_requests import N, expected_labels


def bentoml_timeout_middleware() -> type:
    """BentoML's own request timeout middleware, which RequestTimeout replaces (the control)."""
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    return TimeoutMiddleware


def live_timers(loop: asyncio.AbstractEventLoop) -> int:
    """Timers scheduled on ``loop`` and not cancelled (asyncio keeps them in ``loop._scheduled``)."""
    return sum(not handle.cancelled() for handle in loop._scheduled)


@pytest.mark.unit
def test_bentomls_timeout_middleware_takes_the_app_and_a_timeout():
    middleware = bentoml_timeout_middleware()
    assert list(inspect.signature(middleware).parameters)[:2] == ["app", "timeout"]


@pytest.mark.unit
def test_live_timers_counts_what_is_scheduled_and_not_cancelled():
    loop = asyncio.new_event_loop()
    try:
        first, second = loop.call_later(60, print), loop.call_later(60, print)
        assert live_timers(loop) == 2
        first.cancel()
        assert live_timers(loop) == 1
        second.cancel()
        assert live_timers(loop) == 0
    finally:
        loop.close()


async def call(app, timeout, middleware=RequestTimeout):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await middleware(app, timeout)({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
    return sent


async def quick(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def slow(scope, receive, send):
    await asyncio.sleep(5)
    await quick(scope, receive, send)


@pytest.mark.unit
def test_slow_request_gets_504():
    sent = asyncio.run(call(slow, 0.05))
    assert sent[0]["status"] == 504
    assert b"not answered within" in sent[1]["body"]


def live_timers_after_requests(middleware, requests=200):
    async def many():
        for _ in range(requests):
            sent = await call(quick, 60, middleware)
            assert sent[0]["status"] == 200
        # Cancelled handles wait in the heap for lazy removal, but hold no callback or request.
        return live_timers(asyncio.get_running_loop())

    return asyncio.run(many())


@pytest.mark.unit
def test_finished_requests_leave_no_timer_behind():
    assert live_timers_after_requests(RequestTimeout) == 0


@pytest.mark.unit
def test_bentoml_default_timeout_keeps_a_timer_per_request():
    """The control: what RequestTimeout replaces keeps each request's timer alive for 60 s."""
    assert live_timers_after_requests(bentoml_timeout_middleware()) == 200


REQUEST_TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def short_timeout_server(trained, tmp_path_factory):
    """`bentoml serve` with a request timeout short enough to outlast on purpose."""
    srv = serve(
        tmp_path_factory.mktemp("timeout-server"),
        env={"XGB_MODEL_TAG": trained.tag, "XGB_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S)},
    )
    yield srv
    srv.stop()


def test_the_service_answers_504_when_a_request_outlasts_its_timeout(short_timeout_server, booster):
    """The timeout is installed in the served app: a body that trickles in for longer than it
    gets the service's 504, while a prompt request on the same server gets its answer."""
    host, port = short_timeout_server.url.removeprefix("http://").split(":")
    body = json.dumps([[0.0] * N] * 20).encode()
    head = (
        f"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body[:10])
        time.sleep(REQUEST_TIMEOUT_S * 3)
        try:
            sock.sendall(body[10:])
        except OSError:
            pass  # the server may already have answered and closed
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 504
        assert json.loads(response.read()) == {"error": f"not answered within {REQUEST_TIMEOUT_S} s"}

    prompt = requests.post(f"{short_timeout_server.url}/classify", json=[[0.0] * N], timeout=10)
    assert prompt.status_code == 200 and prompt.json() == expected_labels(booster, [[0.0] * N])
