"""Load, clients that vanish mid-request, and faults: the server keeps answering, loses
nothing, and fails early and clearly where it cannot work."""

from __future__ import annotations

import json
import socket
import threading
import time
import http.client

import numpy as np
import pytest

from src import config
from tests.conftest import start_server
from tests.processes import process_tree_rss_mb, stop_process_group

ROW = [0.1, -1.2, 0.3, 2.4, -0.5, 0.6, 1.7]
SOAK_SECONDS = 20
CONCURRENCY = 32


def server_rss_mb(server) -> float:
    return process_tree_rss_mb(server.process.pid)


def hammer(url: str, seconds: float, concurrency: int, body: bytes) -> dict:
    """Keep-alive clients posting for ``seconds``; counts answers by status and failures."""
    host, port = url.removeprefix("http://").split(":")
    counts: dict = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        local: dict = {}
        while time.monotonic() < deadline:
            try:
                connection.request("POST", "/classify", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                local[response.status] = local.get(response.status, 0) + 1
            except (OSError, http.client.HTTPException) as exc:
                local[type(exc).__name__] = local.get(type(exc).__name__, 0) + 1
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.close()
        with lock:
            for key, value in local.items():
                counts[key] = counts.get(key, 0) + value

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    return counts


def test_soak_has_no_errors_and_bounded_memory(server):
    body = json.dumps([ROW]).encode()
    hammer(server.url, 3, CONCURRENCY, body)  # warm-up
    before = server_rss_mb(server)
    counts = hammer(server.url, SOAK_SECONDS, CONCURRENCY, body)
    after = server_rss_mb(server)
    print(f"\nsoak {SOAK_SECONDS} s at c={CONCURRENCY}: {counts}; RSS {before:.0f} MB -> {after:.0f} MB")
    assert set(counts) == {200}, counts
    assert counts[200] > 1000
    assert after <= before * 1.2


def raw(server, payload: bytes, read: bool = False) -> bytes:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        if payload:
            sock.sendall(payload)
        return sock.recv(65536) if read else b""


def test_clients_that_disconnect_mid_request_do_not_hurt_the_server(server):
    body = json.dumps([ROW] * 100).encode()
    head = (f"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    before = server_rss_mb(server)
    for _ in range(100):
        raw(server, b"")                                  # connect and leave
        raw(server, head)                                 # headers, no body
        raw(server, head + body[: len(body) // 2])        # half the body
        raw(server, head + body)                          # whole request, answer never read
        raw(server, b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Le")  # headers cut short
    time.sleep(1)
    assert server.alive()
    answer = raw(server, head + body, read=True)
    assert answer.startswith(b"HTTP/1.1 200")
    assert server_rss_mb(server) <= before * 1.2


def test_garbage_on_the_wire_gets_an_answer_not_a_crash(server):
    for payload in (b"\x00\x01\x02\x03" * 100, b"GET / HTTP/9.9\r\n\r\n", b"POST /classify HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        raw(server, payload, read=True)
    assert server.alive()
    assert raw(server, b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", read=True).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("case", ["empty store", "absent tag"])
def test_missing_model_fails_at_start_with_a_clear_message(tmp_path, case):
    env = {"BENTOML_HOME": str(tmp_path / "empty-home")}
    if case == "absent tag":
        env["XGB_MODEL_TAG"] = f"{config.MODEL_NAME}:doesnotexist"
    started = time.monotonic()
    with pytest.raises(RuntimeError) as error:
        start_server(tmp_path, env=env, ready_timeout=60)
    assert time.monotonic() - started < 60, "must fail at start, not wait for a request"
    message = str(error.value)
    assert "exited" in message and "is not in the BentoML model store" in message
    assert "python -m src.train" in message


def test_retraining_while_serving_does_not_disturb_the_server(trained, data_path, tmp_path):
    """A server on `:latest` keeps answering, with the model it loaded, while a new version is
    trained into the same store; a restart picks the new version up."""
    srv = start_server(tmp_path)  # no XGB_MODEL_TAG: the service loads xgb_model:latest
    try:
        rows = np.random.default_rng(5).normal(scale=2, size=(50, 7)).round(5).tolist()
        body = json.dumps(rows).encode()
        status, before = ask_once(srv, body)
        assert status == 200
        results: list = []
        stop = threading.Event()

        def keep_asking():
            while not stop.is_set():
                results.append(ask_once(srv, body))

        thread = threading.Thread(target=keep_asking)
        thread.start()
        from src.train import train

        new = train(data_path, rounds=7, report_dir=None)
        time.sleep(0.5)
        stop.set()
        thread.join(30)
        assert results and all(status == 200 for status, _ in results)
        assert all(answer == before for _, answer in results), "the running server keeps its model"
        assert srv.alive()
    finally:
        stop_process_group(srv.process)

    srv = start_server(tmp_path)
    try:
        status, after = ask_once(srv, body)
        assert status == 200 and after != before, f"restarted server should load {new.tag}"
    finally:
        stop_process_group(srv.process)


def ask_once(srv, body: bytes) -> tuple[int, list]:
    """One POST /predict_proba on a fresh connection: (status, decoded answer)."""
    host, port = srv.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/predict_proba", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())
