"""Issue 20: the live page under a real show, as its pages make it.

Every viewer's connection subscribes with live.js's own documents (commentAdded, viewerCount,
reactionsChanged), every seller's with dashboard.js's (streamStats, orderPlaced), each with its
own token. Meanwhile the bench's process writes through the public API on a schedule that does
not wait for the server (the rate is the load): comments at the step's rate across the streams,
likes, joins (each joiner first loads the page with live.js's STREAM document, as the page does)
and purchases (buyNow from the stream).

Latency is commit to client for every subscription alike: each payload selects `eventCursor`,
which names the stream's event it stands at; the event log (`event_log.created_at`, stamped in
the writing transaction, just before commit) says when each event was committed. A message
covers every event of its kind since the connection's previous message of that subscription
(figures are coalesced: one message may stand for several events), and each covered event's
latency is the receive time minus its commit time. An event a connection never heard of by the
end of the drain counts as missed (an infinite latency in the p99).
"""
from __future__ import annotations

import asyncio
import base64
import bisect
import datetime as dt
import itertools
import os
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import orjson

from bench import pagedocs
from bench.gql import HttpGraphQL
from bench.loadgen import Connection, SubscriberFleet, Subscription, until_every_connection_hears
from bench.procs import Server, livecart_server
from bench.seed import Seeded
from bench.stats import percentile

BOUND_MS = 500.0
CACHE_HEADER = "X-Livecart-Cache"
SHARED_ANSWERS = ("hit", "shared")  # the query cache's header values for an answer it did not execute
# Subscription id (graphql-transport-ws) = the payload's field: the records say which one spoke.
VIEWER_FIELDS = {"commentAdded": "SUB_COMMENTS", "viewerCount": "SUB_VIEWERS", "reactionsChanged": "SUB_REACTIONS"}
SELLER_FIELDS = {"streamStats": "SUB_STATS", "orderPlaced": "SUB_ORDERS"}
ALL_FIELDS = (*VIEWER_FIELDS, *SELLER_FIELDS)
# The hub sends a seller's stats at most once a second (models/events.py, coalesce=1.0): that wait alone
# is over the bound, so every step would miss it whatever the load. The ramp judges streamStats against
# the bound beyond that second, so that the curve shows what the load does; the target's rows stay strict.
COALESCED_SECONDS = {"streamStats": 1.0}


@dataclass
class Show:
    """The show's size: issue 20's by default; --quick makes it tiny."""

    streams: int = 20
    viewers_per_stream: int = 250
    likes_per_second: float = 40.0
    joins_per_second: float = 2.0
    purchases_per_second: float = 2.0
    step_seconds: float = 15.0
    ramp: tuple[float, ...] = (5, 10, 20, 40, 80)
    headline: float = 40.0  # the target's comment rate, measured on one process even past a miss
    process_counts: tuple[int, ...] = (1, 2, 4)
    drain_seconds: float = 5.0  # a step's backlog still undelivered after this counts as missed (over the bound anyway)
    client_processes: int = 4


@dataclass
class Step:
    processes: int
    comments_per_second: float
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # all server processes together
    load: float = 0.0  # 1-min load average as the step ended
    latencies_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)
    missed: Counter = field(default_factory=Counter)
    writes: Counter = field(default_factory=Counter)
    write_errors: Counter = field(default_factory=Counter)
    first_error: str = ""
    page_loads: Counter = field(default_factory=Counter)  # by X-Livecart-Cache ("none": not shareable)

    def p99(self, name: str) -> float | None:
        values = self.latencies_ms.get(name, [])
        return percentile(values + [float("inf")] * self.missed[name], 99) if values or self.missed[name] else None

    def held(self, strict: bool = False) -> bool:
        """Every type's p99 under the bound; unless `strict`, a coalesced type's beyond its interval."""
        return all((p := self.p99(name)) is not None
                   and p < BOUND_MS + (0 if strict else COALESCED_SECONDS.get(name, 0) * 1000) for name in ALL_FIELDS)

    @property
    def cpu_share(self) -> float | None:
        return self.cpu_seconds / self.seconds if self.seconds else None


@dataclass
class Curve:
    processes: int
    steps: list[Step] = field(default_factory=list)
    connections: int = 0
    connect_failed: int = 0
    rss_before: int = 0
    rss_under_traffic: int = 0  # at the end of the headline step (one process)
    note: str = ""

    def most_held(self, strict: bool = False) -> float | None:
        """The highest rate of the ramp held before the first miss."""
        best = None
        for step in self.steps:
            if not step.held(strict):
                break
            best = step.comments_per_second
        return best

    def at(self, rate: float) -> Step | None:
        return next((s for s in self.steps if s.comments_per_second == rate), None)

    @property
    def rss_per_connection(self) -> float | None:
        if not self.connections or not self.rss_under_traffic:
            return None
        return (self.rss_under_traffic - self.rss_before) / self.connections


# ---------------------------------------------------------------- connections

def connections(seeded: Seeded, show: Show, ws_urls: list[str]) -> list[Connection]:
    """The viewers (three subscriptions each) and the sellers (two), spread over the servers."""
    viewer = tuple(Subscription(name, pagedocs.live(doc), {}, name) for name, doc in VIEWER_FIELDS.items())
    seller = tuple(Subscription(name, pagedocs.dashboard(doc), {}, name) for name, doc in SELLER_FIELDS.items())
    tokens = itertools.cycle(seeded.viewer_tokens)
    out = []
    for i, stream_id in enumerate(seeded.live_stream_ids[:show.streams]):
        with_stream = {"s": str(stream_id)}
        mine = tuple(Subscription(s.id, s.query, with_stream, s.field_name) for s in viewer)
        for _ in range(show.viewers_per_stream):
            out.append(Connection(ws_urls[len(out) % len(ws_urls)], next(tokens), mine))
        theirs = tuple(Subscription(s.id, s.query, with_stream, s.field_name) for s in seller)
        out.append(Connection(ws_urls[len(out) % len(ws_urls)], seeded.seller_tokens[i], theirs))
    return out


# ---------------------------------------------------------------- traffic

class Traffic:
    """The writes of a show through the public API, spread over the servers."""

    def __init__(self, session: aiohttp.ClientSession, urls: list[str], seeded: Seeded, show: Show) -> None:
        self.session = session
        self.apis = [HttpGraphQL(session, f"{url}/graphql") for url in urls]
        self.urls = urls
        self.streams = seeded.live_stream_ids[:show.streams]
        self.products = seeded.stream_product_ids[:show.streams]
        self.seeded = seeded
        self.count = itertools.count()
        self.commenters = itertools.cycle(seeded.commenter_tokens)
        self.buyers = itertools.cycle(seeded.buyer_tokens)
        self.joiners = itertools.cycle(seeded.viewer_tokens)
        # Each like by a (viewer, stream) pair; once all have liked they flip to dislike and back
        # (Seeded.next_reaction), so that every reaction changes something.
        self.pairs = itertools.cycle([(t, s) for t in seeded.viewer_tokens for s in self.streams])
        self.step: Step | None = None

    def _pick(self) -> tuple[int, HttpGraphQL, int]:
        i = next(self.count)
        return i, self.apis[i % len(self.apis)], self.streams[i % len(self.streams)]

    async def _write(self, kind: str, job) -> None:
        step = self.step
        try:
            await job
            step.writes[kind] += 1
        except Exception as exc:  # noqa: BLE001 - a failed write is a figure of the step
            step.write_errors[kind] += 1
            step.first_error = step.first_error or f"{kind}: {exc!r}"[:300]

    async def comment(self) -> None:
        i, api, stream = self._pick()
        await self._write("postComment", api.data(pagedocs.live("POST_COMMENT"),
                                                  {"s": str(stream), "t": f"show {i}"}, next(self.commenters)))

    async def like(self) -> None:
        _, api, _ = self._pick()
        token, stream = next(self.pairs)
        kind = self.seeded.next_reaction(token, stream)
        await self._write("react", api.data(pagedocs.live("REACT"), {"s": str(stream), "k": kind}, token))

    async def join(self) -> None:
        i, api, stream = self._pick()
        token = next(self.joiners)
        await self._write("page load", self.load_page(self.urls[i % len(self.urls)], stream, token))
        await self._write("joinStream", api.data(pagedocs.live("JOIN"), {"s": str(stream), "b": None}, token))

    async def purchase(self) -> None:
        i, api, _ = self._pick()
        which = i % len(self.streams)
        products = self.products[which]
        await self._write("buyNow", api.data(pagedocs.live("BUY_NOW"), {
            "p": str(products[i % len(products)]), "q": 1, "s": str(self.streams[which]),
            "k": secrets.token_hex(8)}, next(self.buyers)))

    async def load_page(self, url: str, stream: int, token: str) -> None:
        """live.js's STREAM document as the page sends it; the query cache's header is tallied."""
        body = orjson.dumps({"query": pagedocs.live("STREAM"), "variables": {"id": str(stream)}})
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        async with self.session.post(f"{url}/graphql", data=body, headers=headers) as response:
            answer = orjson.loads(await response.read())
            if answer.get("errors") or not (answer.get("data") or {}).get("stream"):
                raise RuntimeError(str(answer.get("errors"))[:200])
            self.step.page_loads[response.headers.get(CACHE_HEADER, "none")] += 1


async def _every(rate: float, action, stop: asyncio.Event, running: set) -> None:
    """`action` `rate` times a second on schedule, each on its own task: a slow server does not slow the load."""
    if rate <= 0:
        return
    interval, due = 1.0 / rate, time.monotonic()
    while not stop.is_set():
        task = asyncio.create_task(action())
        running.add(task)
        task.add_done_callback(running.discard)
        due += interval
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))
        except TimeoutError:
            pass


# ---------------------------------------------------------------- latency from the event log

def _seq(cursor: str) -> tuple[int, int] | None:
    """(stream, number) from an eventCursor (models/outbox.py's encoding: ev1:<stream>:<seq>:<epoch>)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        _, stream, seq, _ = raw.split(":")
        return int(stream), int(seq)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class EventLog:
    """The events committed in a window, per stream in order: number, type, commit time."""

    seqs: dict[int, list[int]]
    types: dict[int, list[str]]
    committed: dict[int, list[float]]

    @classmethod
    async def read(cls, database_url: str, since: float, until: float) -> "EventLog":
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT stream_id, seq, type, created_at FROM event_log"
                " WHERE created_at >= $1 AND created_at <= $2 ORDER BY stream_id, seq",
                dt.datetime.fromtimestamp(since, dt.timezone.utc), dt.datetime.fromtimestamp(until, dt.timezone.utc))
        finally:
            await conn.close()
        log = cls(defaultdict(list), defaultdict(list), defaultdict(list))
        for row in rows:
            created = row["created_at"]
            if created.tzinfo is None:
                created = created.replace(tzinfo=dt.timezone.utc)
            log.seqs[row["stream_id"]].append(row["seq"])
            log.types[row["stream_id"]].append(row["type"])
            log.committed[row["stream_id"]].append(created.timestamp())
        return log

    def type_of(self, stream: int, seq: int) -> str | None:
        seqs = self.seqs.get(stream, [])
        i = bisect.bisect_left(seqs, seq)
        return self.types[stream][i] if i < len(seqs) and seqs[i] == seq else None


def latencies(step: Step, received: list[tuple[int, str, str, float]], log: EventLog,
              followed: list[Connection], families: dict[str, set[str]]) -> None:
    """Each event's delay to each connection that follows its kind (see the module's docstring).
    `families` (a subscription's event types) is learned from the cursors its messages name."""
    by_subscription: dict[tuple[int, str], list[tuple[float, int]]] = defaultdict(list)
    for connection, name, cursor, at in received:
        where = _seq(cursor)
        if where is None:
            continue
        stream, seq = where
        kind = log.type_of(stream, seq)
        if kind is not None:
            families.setdefault(name, set()).add(kind)
        by_subscription[(connection, name)].append((at, seq))
    pairs = [(c, sub.field_name, int(sub.variables["s"])) for c, conn in enumerate(followed) for sub in conn.subscriptions]
    for connection, name, stream in pairs:
        seqs, types, committed = log.seqs.get(stream, []), log.types.get(stream, []), log.committed.get(stream, [])
        family = families.get(name, set())
        if not family or not seqs:
            continue
        messages = sorted(by_subscription.get((connection, name), []))
        out = step.latencies_ms.setdefault(name, [])
        covered = 0  # index into the stream's events: those before it are accounted for
        for at, seq in messages:
            upto = bisect.bisect_right(seqs, seq)
            for i in range(covered, upto):
                if types[i] in family:
                    out.append((at - committed[i]) * 1000)
            covered = max(covered, upto)
        step.missed[name] += sum(1 for i in range(covered, len(seqs)) if types[i] in family)


# ---------------------------------------------------------------- one curve

async def run_step(servers: list[Server], fleet: SubscriberFleet, traffic: Traffic, show: Show, rate: float,
                   database_url: str, followed: list[Connection], families: dict[str, set[str]]) -> Step:
    step = Step(processes=len(servers), comments_per_second=rate)
    traffic.step = step
    await asyncio.to_thread(fleet.collect)  # forget what came before
    stop, running = asyncio.Event(), set()
    cpu_before = sum(s.cpu_seconds() for s in servers)
    started = time.time()
    tickers = [asyncio.create_task(_every(r, action, stop, running)) for r, action in (
        (rate, traffic.comment), (show.likes_per_second, traffic.like),
        (show.joins_per_second, traffic.join), (show.purchases_per_second, traffic.purchase))]
    await asyncio.sleep(show.step_seconds)
    stop.set()
    await asyncio.gather(*tickers)
    if running:
        await asyncio.wait(set(running), timeout=show.drain_seconds)
    writes_ended = time.time()
    # Until no message has come for a second (everything delivered), or the drain's limit.
    await asyncio.to_thread(fleet.wait_for, 1 << 62, show.drain_seconds, 1.0)
    step.cpu_seconds = sum(s.cpu_seconds() for s in servers) - cpu_before
    step.seconds = time.time() - started
    step.load = os.getloadavg()[0]
    received, errors = await asyncio.to_thread(fleet.collect)
    if errors.get("first_error"):
        step.first_error = step.first_error or f"subscriber: {errors['first_error']}"[:300]
    # The step's events are those committed while it wrote: one committed during the drain (a sweeper's)
    # may still be on its way when the drain ends, and would count as missed.
    log = await EventLog.read(database_url, started, writes_ended)
    await asyncio.to_thread(latencies, step, received, log, followed, families)
    return step


def _describe(step: Step) -> str:
    p99s = ", ".join(f"{name} {_ms(step.p99(name))}" for name in ALL_FIELDS)
    return (f"bench:   {step.processes} process(es), {step.comments_per_second:g} comments/s: p99 {p99s};"
            f" CPU {step.cpu_share or 0:.0%}, load {step.load:.1f}")


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "missed" if value == float("inf") else f"{value:,.0f} ms"


async def curve(processes: int, seeded: Seeded, show: Show, database_url: str, redis_url: str, port: int,
                out: Path, env: dict[str, str], families: dict[str, set[str]]) -> Curve:
    """`processes` servers sharing PostgreSQL and Redis, the show's clients spread over them, the ramp."""
    result = Curve(processes=processes)
    servers = [livecart_server(f"livecart-livepage-{processes}-{k}", port + k, database_url, redis_url, out, env)
               for k in range(processes)]
    started: list[Server] = []
    try:
        for server in servers:
            started.append(server.start())
        result.rss_before = sum(s.rss_bytes() for s in servers)
        ws_urls = [s.url.replace("http://", "ws://") + "/graphql" for s in servers]
        wanted = connections(seeded, show, ws_urls)
        fleet = SubscriberFleet("", 0, show.client_processes, connections=wanted)
        await asyncio.to_thread(fleet.start)
        try:
            result.connections, result.connect_failed = fleet.connected, fleet.failed
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024)) as session:
                traffic = Traffic(session, [s.url for s in servers], seeded, show)
                traffic.step = Step(processes=processes, comments_per_second=0)

                async def a_comment_on_each_stream() -> None:
                    await asyncio.gather(*(traffic.comment() for _ in traffic.streams))

                await until_every_connection_hears(fleet, a_comment_on_each_stream, 60, stall=3.0)
                rates = list(show.ramp)
                while rates:
                    rate = rates.pop(0)
                    step = await run_step(servers, fleet, traffic, show, rate, database_url, wanted, families)
                    result.steps.append(step)
                    print(_describe(step), flush=True)
                    if processes == 1 and rate == show.headline:
                        result.rss_under_traffic = sum(s.rss_bytes() for s in servers)
                    if not step.held():
                        # The ramp stops at its first miss; one process still measures the target's rate.
                        rates = [show.headline] if processes == 1 and show.headline > rate else []
        finally:
            await asyncio.to_thread(fleet.close)
    except Exception as exc:  # noqa: BLE001 - a curve that could not run is a row, not the end of the bench
        result.note = f"failed: {type(exc).__name__}: {exc}"[:300]
    finally:
        for server in started:
            server.stop()
    return result


async def live_page(seeded: Seeded, show: Show, database_url: str, redis_url: str, port: int, out: Path,
                    env: dict[str, str]) -> list[Curve]:
    curves, families = [], {}  # a subscription's event types, learned over the whole run
    for processes in show.process_counts:
        print(f"bench: live page, {processes} process(es)", flush=True)
        curves.append(await curve(processes, seeded, show, database_url, redis_url, port, out, env, families))
    return curves
