"""The service's request timeout: 504 for a request that takes too long, and no timer left
behind by requests that finish (BentoML's own middleware keeps one alive for 60 s each)."""

import asyncio

from src.server_settings import RequestTimeout


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
        return sum(not handle.cancelled() for handle in asyncio.get_running_loop()._scheduled)

    return asyncio.run(many())


def test_finished_requests_leave_no_timer_behind():
    assert live_timers_after_requests(RequestTimeout) == 0


def test_bentoml_default_timeout_keeps_a_timer_per_request():
    """The control: what RequestTimeout replaces keeps each request's timer alive for 60 s."""
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    assert live_timers_after_requests(TimeoutMiddleware) == 200
