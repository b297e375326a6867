"""Parsing request bodies without blocking the event loop when they are large.

A body near the 6 MB limit takes a tenth of a second or more to parse and validate, and the
parse holds the GIL all along (orjson and NumPy do not release it), so a thread would not help:
the small requests on that worker would still wait behind it. Bodies of
:data:`src.config.OFF_LOOP_PARSE_BYTES` or more are parsed in one helper process per worker
instead (started on the first such body, from a clean interpreter by ``forkserver``, never by
forking the server); smaller ones inline, where a process hop would cost more than the parse. A
helper that dies is replaced and the body parsed inline, so the request is answered either way.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from src import config
from src.validation import parse_features

# The helper yields the CPU to the workers' event loops: the small requests' latency comes first,
# the large body's parse takes what is left.
HELPER_NICENESS = 10

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _helper() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["src.validation"])
            _pool = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=os.nice, initargs=(HELPER_NICENESS,)
            )
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def off_loop(size: int) -> bool:
    """Whether a body of ``size`` bytes is parsed in the helper process."""
    return 0 < config.OFF_LOOP_PARSE_BYTES <= size


async def parse(raw: bytes) -> np.ndarray:
    """:func:`src.validation.parse_features` of ``raw``, in the helper process when it is large;
    raises its :class:`~src.validation.InvalidInput` either way."""
    if not off_loop(len(raw)):
        return parse_features(raw)
    pool = _helper()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, parse_features, raw)
    except BrokenProcessPool:
        _discard(pool)
        return parse_features(raw)


def stop(*_) -> None:
    """Stop the helper process, if one was started (a shutdown hook: any arguments are ignored)."""
    with _pool_lock:
        pool = _pool
    if pool is not None:
        _discard(pool)
