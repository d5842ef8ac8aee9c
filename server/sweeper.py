"""The lapsed-session sweeper: closes viewer sessions nobody renewed, so stream_viewers
keeps a true history and subscribers see the count drop.

Every process runs one; they may overlap safely (each stream's sweep is a short
transaction under the stream's row lock, and a session closes once).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from resolvers.engagement import sweep_lapsed_sessions
from server.appkeys import BROKER, SETTINGS
from server.query_cache import data_changed

log = logging.getLogger("livecart.sweeper")


async def sweep_forever(app: web.Application) -> None:
    interval = app[SETTINGS].viewer_sweep_interval_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            if await sweep_lapsed_sessions(app[BROKER]):
                await data_changed(app)
        except Exception:  # a bad pass must not end the sweeping; the next one retries
            log.exception("sweeping lapsed viewer sessions failed")


async def viewer_sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(sweep_forever(app), name="viewer-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# ---------------------------------------------------------------- the deal and auction clocks (issue 18)

# Every process sweeps this often: an auction ends within this of its clock, by whichever process
# wins its conditional UPDATE (the others find it ended and do nothing).
CLOCK_SWEEP_SECONDS = 0.25


async def sweep_clocks_forever(app: web.Application) -> None:
    from resolvers.live import sweep_clocks

    while True:
        await asyncio.sleep(CLOCK_SWEEP_SECONDS)
        try:
            if await sweep_clocks(app[BROKER]):
                await data_changed(app)
        except Exception:  # a bad pass must not stop the clocks; the next one retries
            log.exception("ending due deals and auctions failed")


async def clock_sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(sweep_clocks_forever(app), name="clock-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
