"""Fan-out: N subscribers to commentAdded on one stream, comments posted at a steady rate.

Latency is commit-to-client: the receive time in the subscriber's process minus the
comment's createdAt (stamped by the server as the row is inserted, just before commit,
so the figure slightly over-states the delay). Server CPU comes from /proc/<pid>/stat
before and after the window, divided by the messages delivered in it.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import time
from dataclasses import dataclass, field

import aiohttp

from bench.gql import HttpGraphQL, statement_counts
from bench.loadgen import SubscriberFleet, until_every_connection_hears
from bench.procs import Server
from bench.seed import Seeded
from bench.stats import percentile

SUBSCRIPTION = "subscription($s: ID!) { commentAdded(streamId: $s) { id text createdAt author { username } } }"
POST_COMMENT = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id createdAt } }"


@dataclass
class Posted:
    comment_id: str
    posted_at: float
    created_at: float


@dataclass
class Window:
    """One measured stretch: what was posted, what arrived, what the server spent."""

    comments: int = 0
    expected: int = 0
    delivered: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    post_latencies_ms: list[float] = field(default_factory=list, repr=False)
    statements: dict[str, int] = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    last_receive: float = 0.0
    first_post: float = 0.0
    load: float = 0.0  # the machine's 1-min load average as the window ended

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float | None:
        return percentile(self.latencies_ms, 99)

    @property
    def max_ms(self) -> float | None:
        return max(self.latencies_ms) if self.latencies_ms else None

    @property
    def cpu_us_per_message(self) -> float | None:
        return self.cpu_seconds / self.delivered * 1e6 if self.delivered else None

    @property
    def deliveries_per_second(self) -> float | None:
        span = self.last_receive - self.first_post
        return self.delivered / span if self.delivered and span > 0 else None


@dataclass
class FanoutRun:
    path: str
    subscribers: int
    connected: int = 0
    connect_failed: int = 0
    connect_error: str = ""
    connect_seconds: float = 0.0
    rss_before: int = 0
    rss_subscribed: int = 0
    steady: Window | None = None
    burst: Window | None = None
    note: str = ""

    @property
    def rss_per_subscriber(self) -> float | None:
        if not self.connected:
            return None
        return (self.rss_subscribed - self.rss_before) / self.connected


class CommentPoster:
    """Posts comments through the public API, rotating authors so no one hits a rate limit."""

    def __init__(self, api: HttpGraphQL, stream_id: int, tokens: list[str]) -> None:
        self.api = api
        self.stream_id = stream_id
        self.tokens = itertools.cycle(tokens)
        self.sequence = itertools.count(1)

    async def post(self) -> Posted:
        posted_at = time.time()
        data = await self.api.data(
            POST_COMMENT,
            {"s": str(self.stream_id), "t": f"bench {next(self.sequence)} t={posted_at:.6f}"},
            token=next(self.tokens),
        )
        comment = data["postComment"]
        created = dt.datetime.fromisoformat(comment["createdAt"]).timestamp()
        return Posted(comment["id"], posted_at, created)


def _join(window: Window, posted: list[Posted], received: list[tuple[int, str, str, float]], errors: dict) -> None:
    by_id = {p.comment_id: p for p in posted}
    for _connection, _subscription, comment_id, received_at in received:
        p = by_id.get(comment_id)
        if p is None:
            continue  # a comment from before the window
        window.delivered += 1
        window.latencies_ms.append((received_at - p.created_at) * 1000)
        window.post_latencies_ms.append((received_at - p.posted_at) * 1000)
        window.last_receive = max(window.last_receive, received_at)
    window.errors = errors


async def measure_steady(server: Server, fleet: SubscriberFleet, poster: CommentPoster, session: aiohttp.ClientSession,
                         comments: int, interval: float, drain_timeout: float) -> Window:
    """`comments` comments, one every `interval` seconds; waits until all are delivered (or the timeout)."""
    window = Window(comments=comments, expected=comments * fleet.connected)
    await asyncio.to_thread(fleet.collect)  # forget what came before
    statements_before = await statement_counts(session, server.url)
    cpu_before, started = server.cpu_seconds(), time.time()
    window.first_post = started

    async def post_at(due: float) -> Posted:
        # On schedule even when the server is slow to answer: the rate is the load, not the server's pace.
        await asyncio.sleep(max(0.0, due - time.time()))
        return await poster.post()

    posted = list(await asyncio.gather(*(post_at(started + i * interval) for i in range(comments))))
    await asyncio.to_thread(fleet.wait_for, window.expected, drain_timeout)
    window.cpu_seconds = server.cpu_seconds() - cpu_before
    window.seconds = time.time() - started
    window.load = os.getloadavg()[0]
    statements_after = await statement_counts(session, server.url)
    window.statements = {k: statements_after.get(k, 0) - statements_before.get(k, 0) for k in statements_after}
    received, errors = await asyncio.to_thread(fleet.collect)
    _join(window, posted, received, errors)
    return window


async def measure_burst(server: Server, fleet: SubscriberFleet, poster: CommentPoster, comments: int,
                        concurrency: int, drain_timeout: float) -> Window:
    """As many comments as the server takes, `concurrency` posters at once: the most deliveries a second."""
    window = Window(comments=comments, expected=comments * fleet.connected)
    await asyncio.to_thread(fleet.collect)
    cpu_before, started = server.cpu_seconds(), time.time()
    window.first_post = started
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Posted:
        async with gate:
            return await poster.post()

    posted = await asyncio.gather(*(one() for _ in range(comments)))
    await asyncio.to_thread(fleet.wait_for, window.expected, drain_timeout)
    window.cpu_seconds = server.cpu_seconds() - cpu_before
    window.seconds = time.time() - started
    received, errors = await asyncio.to_thread(fleet.collect)
    _join(window, list(posted), received, errors)
    return window


async def fanout(server: Server, seeded: Seeded, path: str, subscribers: int, *, comments: int, interval: float,
                 processes: int, burst_comments: int = 0, drain_timeout: float = 60.0,
                 during=None) -> FanoutRun:
    """One fan-out size against one server: connect, warm up, the steady window, then the burst.
    `during`, if given, is an async callable run around an extra steady window (the profiler)."""
    run = FanoutRun(path=path, subscribers=subscribers)
    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        api = HttpGraphQL(session, f"{server.url}/graphql")
        poster = CommentPoster(api, seeded.stream_id, seeded.commenter_tokens)
        run.rss_before = server.rss_bytes()
        fleet = SubscriberFleet(ws_url, subscribers, processes, SUBSCRIPTION, {"s": str(seeded.stream_id)},
                                "commentAdded")
        started = time.monotonic()
        await asyncio.to_thread(fleet.start)
        try:
            run.connect_seconds = time.monotonic() - started
            run.connected, run.connect_failed, run.connect_error = fleet.connected, fleet.failed, fleet.first_error
            await until_every_connection_hears(fleet, poster.post, drain_timeout)
            await asyncio.sleep(1.0)
            run.rss_subscribed = server.rss_bytes()
            run.steady = await measure_steady(server, fleet, poster, session, comments, interval, drain_timeout)
            if during is not None:
                await during(server, lambda: measure_steady(server, fleet, poster, session, comments, interval,
                                                             drain_timeout))
            if burst_comments:
                run.burst = await measure_burst(server, fleet, poster, burst_comments, 8, drain_timeout)
        finally:
            await asyncio.to_thread(fleet.close)
    return run
