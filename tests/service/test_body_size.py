"""An oversized body is refused before it has been read, over a raw socket to the live server.

A 413 produced after the whole body was read passes every status and message test, and still
lets a client make the server read (and hold) any amount of data. So here the client declares a
length far above the limit and sends no body at all, or streams a chunked body (no declared
length) and watches for the answer while it is still sending: the 413 must arrive before the
body is complete.
"""

from __future__ import annotations

import select
import socket
import time
from urllib.parse import urlsplit

from src import config

# Well under the service's request timeout (30 s, which would answer a waiting request with a 504)
# and far over what an answer takes on a busy shared runner (under a second): a server that waits
# for the body does not answer in this time, one that checks early does.
DEADLINE_S = 15
DECLARED = 50 * 1024 * 1024  # 50 MB, eight times the limit
CHUNK = 64 * 1024


def connect(server) -> socket.socket:
    address = urlsplit(server.url)
    return socket.create_connection((address.hostname, address.port), timeout=DEADLINE_S)


def head(length: str) -> bytes:
    return (
        "POST /classify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"{length}\r\nConnection: close\r\n\r\n"
    ).encode()


def read_answer(sock: socket.socket, deadline: float) -> bytes:
    """Whatever the server sends until it closes the connection or the deadline passes."""
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data and b"limit" in data:
            break
    return data


def status_of(answer: bytes) -> int | None:
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else None


def test_a_declared_length_over_the_limit_is_refused_without_sending_the_body(server):
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(head(f"Content-Length: {DECLARED}"))  # and not one byte of the body
        answer = read_answer(sock, started + DEADLINE_S)
        elapsed = time.monotonic() - started
    assert status_of(answer) == 413, (
        f"no 413 within {DEADLINE_S} s of declaring {DECLARED:,} bytes and sending none "
        f"(the server waits for the body instead of checking Content-Length first): {answer[:300]!r}"
    )
    assert f"limit of {config.MAX_BODY_BYTES} bytes".encode() in answer
    assert elapsed < DEADLINE_S
    assert server.alive()


def test_a_chunked_upload_over_the_limit_is_refused_while_it_is_still_being_sent(server):
    """No Content-Length: the server can only count as it reads. Four times the limit is offered,
    64 KB a chunk, and the client stops sending as soon as an answer is readable."""
    total = 4 * config.MAX_BODY_BYTES
    payload = b"[" + b" " * (CHUNK - 1)
    frame = f"{len(payload):x}\r\n".encode() + payload + b"\r\n"
    with connect(server) as sock:
        sock.setblocking(False)
        started = time.monotonic()
        deadline = started + DEADLINE_S
        pending, sent, answered = head("Transfer-Encoding: chunked"), 0, False
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if pending or sent < total else [], [], 1)
            if readable:
                answered = True
                break
            if not writable:
                continue
            if not pending:
                if sent >= total:
                    pending = b"0\r\n\r\n"  # the end of the body, once all of it is sent
                else:
                    pending, sent = frame, sent + len(payload)
            try:
                pending = pending[sock.send(pending) :]
            except (BlockingIOError, InterruptedError):
                pass
            except (BrokenPipeError, ConnectionResetError):
                break  # the server closed while we were sending: read what it said
        sock.setblocking(True)
        answer = read_answer(sock, deadline)
    assert answered or answer, (
        f"no answer within {DEADLINE_S} s, {sent:,} of the {total:,} bytes offered sent: the server "
        f"kept reading past the limit of {config.MAX_BODY_BYTES:,} bytes (the streaming cap is gone)"
    )
    assert sent < total, (
        f"the answer came only after the whole {total:,}-byte body was sent: the server read all of it "
        "before counting (the streaming cap is gone)"
    )
    assert status_of(answer) == 413, answer[:300]
    assert b"over the limit" in answer
    assert server.alive()
