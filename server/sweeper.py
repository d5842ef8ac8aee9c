"""The lapsed-session sweeper: closes viewer sessions nobody renewed, so stream_viewers
keeps a true history and subscribers see the count drop.

Every process runs one; they may overlap safely (each stream's sweep is a short
transaction under the stream's row lock, and a session closes once).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from livecart.resolvers.engagement import sweep_lapsed_sessions
from livecart.server.appkeys import BROKER, SETTINGS
from livecart.server.query_cache import data_changed
from livecart.models.clock import utcnow
from livecart.models.events import CLOCKS_CHANNEL

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

# Every process hears each clock set on any process (CLOCKS_CHANNEL) and sets a timer for it; the
# process whose conditional UPDATE wins ends it (the others find it ended and do nothing). A slow
# sweep also ends whatever a process missed (started while it was down, an event lost).
CLOCK_SAFETY_SWEEP_SECONDS = 5.0
CLOCK_GRACE_SECONDS = 0.02  # a timer fires this long after the end, so the end has passed on every clock


async def _sweep_clocks_once(app: web.Application) -> None:
    from livecart.resolvers.live import sweep_clocks

    try:
        if await sweep_clocks(app[BROKER]):
            await data_changed(app)
    except Exception:  # a bad pass must not stop the clocks; the next one retries
        log.exception("ending due deals and auctions failed")


async def _follow_clocks(app: web.Application, inbox, timers: dict) -> None:
    loop = asyncio.get_running_loop()
    while True:
        event = await inbox.get()
        ends_at = dt.datetime.fromisoformat(event["ends_at"])
        delay = max(0.0, (ends_at - utcnow()).total_seconds()) + CLOCK_GRACE_SECONDS
        key = (event["kind"], event["id"])
        if key in timers:
            timers[key].cancel()  # a later clock for the same deal or auction replaces the earlier

        def fire(key=key) -> None:
            timers.pop(key, None)
            task = loop.create_task(_sweep_clocks_once(app), name="clock-timer-sweep")
            app[CLOCK_TASKS].add(task)
            task.add_done_callback(app[CLOCK_TASKS].discard)

        timers[key] = loop.call_later(delay, fire)


async def _safety_sweep(app: web.Application) -> None:
    while True:
        await asyncio.sleep(CLOCK_SAFETY_SWEEP_SECONDS)
        await _sweep_clocks_once(app)


async def clock_sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    hub = app[BROKER].hub
    inbox = await hub.add(CLOCKS_CHANNEL, frozenset({"clock_set"}))
    timers: dict = {}
    app[CLOCK_TASKS] = set()
    tasks = [
        asyncio.create_task(_follow_clocks(app, inbox, timers), name="clock-timers"),
        asyncio.create_task(_safety_sweep(app), name="clock-sweeper"),
    ]
    yield
    for timer in timers.values():
        timer.cancel()
    for task in [*tasks, *app[CLOCK_TASKS]]:
        task.cancel()
    for task in [*tasks, *app[CLOCK_TASKS]]:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    hub.remove(inbox)


CLOCK_TASKS = web.AppKey("clock_tasks", set)


# ---------------------------------------------------------------- the event log's retention (issue 15)

EVENT_PRUNE_SECONDS = 60.0


async def _prune_forever(app: web.Application) -> None:
    from livecart.models import outbox

    settings = app[SETTINGS]
    while True:
        await asyncio.sleep(EVENT_PRUNE_SECONDS)
        try:
            removed = await outbox.prune(
                retention_seconds=settings.event_retention_seconds, keep=settings.event_keep_per_stream
            )
            if removed:
                log.info("pruned %d events from the log", removed)
        except Exception:  # a bad pass must not end the pruning; the next one retries
            log.exception("pruning the event log failed")


async def event_pruner_ctx(app: web.Application) -> AsyncIterator[None]:
    """Every process prunes (in short batches, each its own transaction); overlapping passes
    delete nothing twice: a batch moves the stream's pruned mark forward only."""
    task = asyncio.create_task(_prune_forever(app), name="event-pruner")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
