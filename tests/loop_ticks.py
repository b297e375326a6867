"""Whether the event loop kept running while something was awaited: a second task counts its
turns meanwhile (0: the awaited work held the loop from start to end)."""

from __future__ import annotations

import asyncio


async def while_ticking(awaitable, interval_s: float = 0.0005) -> tuple[object, int]:
    """(what ``awaitable`` returned, how many turns another task had while it ran); what it
    raises is raised."""
    ticks = 0
    done = asyncio.Event()

    async def tick():
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(interval_s)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)  # the ticker is running
    ticks = 0
    try:
        result = await awaitable
        during = ticks
    finally:
        done.set()
        await ticker
    return result, during
