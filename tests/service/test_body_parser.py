"""src/body_parser.py: large bodies are parsed in a helper process while the event loop goes on,
with the same answers and the same refusals as the inline parse; a helper that dies costs no
request."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal

import numpy as np
import pytest

from src import body_parser, config
from src.validation import InvalidInput, parse_features
from tests.loop_ticks import while_ticking
from tests.sample_requests import counting_row

pytestmark = pytest.mark.unit

BIG_ROWS = 35_000  # about 5 MB of JSON: a body that goes to the helper


@pytest.fixture
def helper(monkeypatch):
    monkeypatch.setattr(config, "OFF_LOOP_PARSE_BYTES", 1024 * 1024)
    yield
    body_parser.stop()


def big_body(rows: int = BIG_ROWS) -> bytes:
    return json.dumps(np.random.default_rng(7).standard_normal((rows, config.N_FEATURES)).tolist()).encode()


async def parse_while_ticking(raw: bytes) -> tuple[object, int | None]:
    """(the parse's result or InvalidInput, how often another task ran during it)."""
    try:
        return await while_ticking(body_parser.parse(raw))
    except InvalidInput as exc:
        return exc, None


def test_a_large_body_is_parsed_in_the_helper_while_the_loop_runs(helper):
    raw = big_body()
    assert body_parser.off_loop(len(raw))
    asyncio.run(body_parser.parse(raw))  # the helper's start is not what is measured
    result, ticks = asyncio.run(parse_while_ticking(raw))
    assert result.dtype == np.float32 and result.tobytes() == parse_features(raw).tobytes()
    assert ticks >= 3, "the event loop did not run while the body was parsed"


def test_a_small_body_is_parsed_inline(helper):
    raw = json.dumps([counting_row()]).encode()
    assert not body_parser.off_loop(len(raw))
    result, _ = asyncio.run(parse_while_ticking(raw))
    assert result.tolist() == [counting_row()]
    assert body_parser._pool is None, "no helper process for a small body"


def test_a_large_bad_body_is_refused_with_the_inline_message_and_status(helper):
    raw = big_body()[:-2] + b"x]"  # not JSON at its very end
    result, _ = asyncio.run(parse_while_ticking(raw))
    with pytest.raises(InvalidInput) as inline:
        parse_features(raw)
    assert isinstance(result, InvalidInput)
    assert (result.status, str(result)) == (inline.value.status, str(inline.value))


def test_a_refusal_keeps_its_status_across_processes():
    refused = pickle.loads(pickle.dumps(InvalidInput("too big", status=413)))
    assert (type(refused), str(refused), refused.status) == (InvalidInput, "too big", 413)


def test_a_helper_that_dies_is_replaced_and_the_body_still_answered(helper):
    raw = big_body()
    asyncio.run(body_parser.parse(raw))
    pool = body_parser._pool
    for process in list(pool._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
    result = asyncio.run(body_parser.parse(raw))
    assert result.tobytes() == parse_features(raw).tobytes()
    again = asyncio.run(body_parser.parse(raw))
    assert again.shape == (BIG_ROWS, config.N_FEATURES) and body_parser._pool is not pool


def test_zero_turns_the_helper_off(monkeypatch):
    monkeypatch.setattr(config, "OFF_LOOP_PARSE_BYTES", 0)
    assert not body_parser.off_loop(config.MAX_BODY_BYTES)


def test_the_helper_yields_the_cpu_to_the_event_loops(helper):
    asyncio.run(body_parser.parse(big_body()))
    [pid] = body_parser._pool._processes
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + body_parser.HELPER_NICENESS)
