"""`livecart simulate`: N simulated viewers drive a live stream of a served
instance, for demos and load. Each registers, joins (with heartbeats), then
comments, reacts and buys at random times at the rates asked (a Poisson
process per viewer), and leaves at the end. Some also watch the chat over a
subscription. It keeps its own tallies and, at the end, sets them beside the
stream's figures as the API reports them (the seller dashboard's, when the
seller's login is given), so a run shows whether every action was counted.

A server limits accounts and joins per address; simulating many viewers from
one machine needs the server run with RATE_LIMITS=off.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import random
import secrets
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TextIO

import aiohttp

from livecart.client.livecart_client import LivecartClient, LivecartError

COMMENT_LINES = (
    "Love this!", "How much is shipping?", "Does it come in blue?", "Just ordered one 🎉",
    "Greetings from the simulator", "Can you show the back?", "What size is that?", "👏👏👏",
)
REACTIONS = ("LIKE", "DISLIKE")
RATE_LIMIT_HINT = (
    "the server rate-limits accounts and joins per address: to simulate many viewers from one machine, "
    "serve with RATE_LIMITS=off"
)

LIVE_STREAMS = "{ liveStreams { id title } }"
STREAM = """query($id: ID!) {
  stream(id: $id) { id title status viewerCount likes dislikes commentCount featuredProducts { id stock price } }
}"""
STATS = """query($id: ID!) { stream(id: $id) { stats {
  viewerCount uniqueViewers peakViewers likes dislikes comments orders itemsSold revenue
} } }"""
JOIN = "mutation($s: ID!) { joinStream(streamId: $s) { id expiresAt } }"
HEARTBEAT = "mutation($id: ID!) { viewerHeartbeat(sessionId: $id) { id expiresAt } }"
LEAVE = "mutation($id: ID!) { leaveStream(sessionId: $id) }"
COMMENT = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"
REACT = "mutation($s: ID!, $k: ReactionKind!) { react(streamId: $s, kind: $k) { likes } }"
CLEAR = "mutation($s: ID!) { clearReaction(streamId: $s) { likes } }"
BUY = "mutation($p: ID!, $s: ID) { buyNow(productId: $p, quantity: 1, streamId: $s) { id total } }"
WATCH_COMMENTS = "subscription($s: ID!) { commentAdded(streamId: $s) { id } }"


class SimulationError(Exception):
    """The run cannot start (no stream, bad login, a server that refuses); the message says why."""


@dataclasses.dataclass(frozen=True)
class Plan:
    url: str
    stream_id: str | None = None
    viewers: int = 200
    duration: float = 30.0
    comment_rate: float = 0.05  # per viewer per second
    react_rate: float = 0.03
    buy_rate: float = 0.005
    watchers: int = 20  # viewers who also hold a commentAdded subscription
    seller: tuple[str, str] | None = None  # username, password: read the dashboard's stats
    seed: int | None = None
    concurrency: int = 16  # registrations and joins at once while the viewers arrive

    def validate(self) -> None:
        if self.viewers < 1:
            raise SimulationError("--viewers must be at least 1")
        if self.duration <= 0:
            raise SimulationError("--duration must be positive")
        if min(self.comment_rate, self.react_rate, self.buy_rate) < 0:
            raise SimulationError("rates must not be negative")
        if self.watchers < 0:
            raise SimulationError("--watchers must not be negative")


@dataclasses.dataclass
class Tally:
    """What the simulated viewers did that the server accepted; refusals are counted apart."""

    registered: int = 0
    joined: int = 0
    left: int = 0
    heartbeats: int = 0
    comments: int = 0
    reactions_sent: int = 0
    orders: int = 0
    items: int = 0
    revenue: Decimal = Decimal("0.00")
    comments_seen: int = 0  # commentAdded events the watchers received
    rate_limited: int = 0
    out_of_stock: int = 0
    errors: int = 0
    final_reactions: dict[int, str] = dataclasses.field(default_factory=dict)

    @property
    def likes(self) -> int:
        return sum(1 for kind in self.final_reactions.values() if kind == "LIKE")

    @property
    def dislikes(self) -> int:
        return sum(1 for kind in self.final_reactions.values() if kind == "DISLIKE")


# Figures that only grow: a change above ours is someone else's doing, one below ours a miss.
GROWING = frozenset({"comments", "orders", "itemsSold", "revenue", "uniqueViewers"})


@dataclasses.dataclass(frozen=True)
class Row:
    """One figure: the stream's totals before and after the run, their change, what the simulator
    did, and the verdict: "match", "others" (ours all counted; someone else moved it too) or "MISMATCH"."""

    name: str
    before: object
    after: object
    change: object
    mine: object
    verdict: str


@dataclasses.dataclass
class Result:
    stream_id: str
    title: str
    tally: Tally
    # Each figure's change over the run as the API reports it, and where from.
    server: dict[str, object]
    source: str
    seconds: float
    watchers: int = 0
    before: dict[str, object] = dataclasses.field(default_factory=dict)
    after: dict[str, object] = dataclasses.field(default_factory=dict)
    # The simulated viewers' own reactions as the server has them at the end (None: not read).
    reactions_on_server: dict[str, int] | None = None

    def mine(self) -> dict[str, object]:
        return {
            "comments": self.tally.comments,
            "likes": self.tally.likes,
            "dislikes": self.tally.dislikes,
            "orders": self.tally.orders,
            "itemsSold": self.tally.items,
            "revenue": self.tally.revenue,
            "uniqueViewers": self.tally.joined,
            "viewerCount": 0,  # every simulated viewer has left again
        }

    def rows(self) -> list[tuple[str, object, object]]:
        """(figure, the simulator's count, the server's change) for every figure both know."""
        mine = self.mine()
        return [(name, mine[name], self.server[name]) for name in mine if name in self.server]

    def _verdict(self, name: str, mine: object, change: object) -> str:
        if Decimal(str(mine)) == Decimal(str(change)):
            return "match"
        if name in GROWING:
            return "others" if Decimal(str(change)) > Decimal(str(mine)) else "MISMATCH"
        if name == "viewerCount":
            # Ours all left (each leave answered): the rest came or went on their own.
            return "others" if self.tally.left == self.tally.joined else "MISMATCH"
        if name in ("likes", "dislikes") and self.reactions_on_server is not None:
            # Ours, read back viewer by viewer, are what we set: the difference is other viewers'.
            return "others" if self.reactions_on_server.get(name) == mine else "MISMATCH"
        return "MISMATCH"

    def table(self) -> list[Row]:
        return [
            Row(name, self.before.get(name), self.after.get(name), change, mine, self._verdict(name, mine, change))
            for name, mine, change in self.rows()
        ]

    @property
    def matches(self) -> bool:
        """Every action of ours is counted (other viewers' activity on the stream does not count against it)."""
        return all(row.verdict != "MISMATCH" for row in self.table())

    @property
    def others_active(self) -> bool:
        return any(row.verdict == "others" for row in self.table())


# ---------------------------------------------------------------- the stream's figures

async def public_figures(client: LivecartClient, stream_id: str) -> dict[str, object]:
    stream = (await client.execute(STREAM, {"id": stream_id}))["stream"]
    return {
        "comments": stream["commentCount"],
        "likes": stream["likes"],
        "dislikes": stream["dislikes"],
        "viewerCount": stream["viewerCount"],
    }


async def dashboard_figures(client: LivecartClient, stream_id: str) -> dict[str, object]:
    stats = (await client.execute(STATS, {"id": stream_id}))["stream"]["stats"]
    figures = {key: stats[key] for key in ("comments", "likes", "dislikes", "orders", "itemsSold", "uniqueViewers", "viewerCount")}
    figures["revenue"] = Decimal(stats["revenue"])
    return figures


def change(before: dict[str, object], after: dict[str, object]) -> dict[str, object]:
    changed = {key: after[key] - before[key] for key in before}  # type: ignore[operator]
    changed["viewerCount"] = after["viewerCount"] - before["viewerCount"]  # type: ignore[operator]
    return changed


# ---------------------------------------------------------------- one viewer

class Viewer:
    def __init__(self, number: int, plan: Plan, stream_id: str, products: list[dict], session: aiohttp.ClientSession,
                 tally: Tally, rng: random.Random, run: str) -> None:
        self.number = number
        self.plan = plan
        self.stream_id = stream_id
        self.products = products
        self.tally = tally
        self.rng = rng
        self.username = f"sim-{run}-{number}"
        self.client = LivecartClient(plan.url, session=session)
        self.session_id: str | None = None
        self.presence: asyncio.Task | None = None
        self.reaction: str | None = None

    async def arrive(self, password: str) -> None:
        await self.client.register(self.username, password)
        self.tally.registered += 1
        session = (await self.client.execute(JOIN, {"s": self.stream_id}))["joinStream"]
        self.session_id = session["id"]
        self.tally.joined += 1
        # Heartbeats start at once: arriving takes a while (a password hash per viewer), and the
        # first to join must not lapse while the last are still registering.
        self.presence = asyncio.create_task(self.keep_alive(session["expiresAt"]))

    async def keep_alive(self, expires_at: str) -> None:
        while True:
            # A third of the session's life left, so one slow heartbeat never lets it lapse.
            left = (dt.datetime.fromisoformat(expires_at) - dt.datetime.now(dt.timezone.utc)).total_seconds()
            await asyncio.sleep(min(20.0, max(2.0, left / 3)))
            try:
                session = (await self.client.execute(HEARTBEAT, {"id": self.session_id}))["viewerHeartbeat"]
            except (LivecartError, aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                self.tally.errors += 1
                await asyncio.sleep(5.0)  # and try again: the session outlives a missed heartbeat
                continue
            expires_at = session["expiresAt"]
            self.tally.heartbeats += 1

    async def act_until(self, deadline: float) -> None:
        rate = self.plan.comment_rate + self.plan.react_rate + self.plan.buy_rate
        while True:
            now = time.monotonic()
            wake = min(now + (self.rng.expovariate(rate) if rate > 0 else deadline), deadline)
            await asyncio.sleep(max(0.0, wake - now))
            if wake >= deadline:
                return
            await self.guarded(self.pick_action(rate))

    def pick_action(self, rate: float) -> Callable:
        roll = self.rng.random() * rate
        if roll < self.plan.comment_rate:
            return self.comment
        if roll < self.plan.comment_rate + self.plan.react_rate:
            return self.react
        return self.buy

    async def guarded(self, action: Callable) -> None:
        try:
            await action()
        except LivecartError as exc:
            if exc.code == "RATE_LIMITED":
                self.tally.rate_limited += 1
            elif exc.code == "OUT_OF_STOCK":
                self.tally.out_of_stock += 1
            else:
                self.tally.errors += 1
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            self.tally.errors += 1

    async def comment(self) -> None:
        text = f"{self.rng.choice(COMMENT_LINES)} (#{self.number})"
        await self.client.execute(COMMENT, {"s": self.stream_id, "t": text})
        self.tally.comments += 1

    async def react(self) -> None:
        """No reaction yet: like (mostly) or dislike; else switch or take it back."""
        if self.reaction is None:
            kind = "LIKE" if self.rng.random() < 0.75 else "DISLIKE"
        else:
            kind = None if self.rng.random() < 0.5 else REACTIONS[1 - REACTIONS.index(self.reaction)]
        if kind is None:
            await self.client.execute(CLEAR, {"s": self.stream_id})
        else:
            await self.client.execute(REACT, {"s": self.stream_id, "k": kind})
        self.reaction = kind
        self.tally.reactions_sent += 1
        if kind is None:
            self.tally.final_reactions.pop(self.number, None)
        else:
            self.tally.final_reactions[self.number] = kind

    async def buy(self) -> None:
        in_stock = [p for p in self.products if p["stock"] > 0]
        if not in_stock:
            self.tally.out_of_stock += 1
            return
        product = self.rng.choice(in_stock)
        try:
            order = (await self.client.execute(BUY, {"p": product["id"], "s": self.stream_id}))["buyNow"]
        except LivecartError as exc:
            if exc.code == "OUT_OF_STOCK":
                product["stock"] = 0  # shared by all viewers: stop trying what is sold out
            raise
        product["stock"] -= 1
        self.tally.orders += 1
        self.tally.items += 1
        self.tally.revenue += Decimal(order["total"])

    async def leave(self) -> None:
        if self.presence is not None:
            self.presence.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.presence
            self.presence = None
        if self.session_id is None:
            return
        with contextlib.suppress(LivecartError, aiohttp.ClientError, asyncio.TimeoutError):
            await self.client.execute(LEAVE, {"id": self.session_id})
            self.tally.left += 1
        self.session_id = None

    async def watch(self, stop: asyncio.Event) -> None:
        """Holds a commentAdded subscription, as a viewer's page does, and counts what arrives."""
        connection = await self.client.connect()
        try:
            results = await connection.start(WATCH_COMMENTS, {"s": self.stream_id})

            async def count() -> None:
                async for _ in results:
                    self.tally.comments_seen += 1

            counting = asyncio.create_task(count())
            await stop.wait()
            counting.cancel()
            with contextlib.suppress(asyncio.CancelledError, LivecartError):
                await counting
        finally:
            await connection.close()


# ---------------------------------------------------------------- the run

async def choose_stream(client: LivecartClient, stream_id: str | None) -> dict:
    if stream_id is None:
        live = (await client.execute(LIVE_STREAMS))["liveStreams"]
        if not live:
            raise SimulationError("no stream is live: start one on /seller (or run `livecart demo-data`), or pass --stream")
        stream_id = live[0]["id"]
    stream = (await client.execute(STREAM, {"id": stream_id}))["stream"]
    if stream is None:
        raise SimulationError(f"no stream {stream_id}")
    if stream["status"] != "LIVE":
        raise SimulationError(f"stream {stream_id} is {stream['status']}, not LIVE")
    return stream


class Progress:
    """One line, rewritten in place on a terminal; a line every few seconds otherwise."""

    def __init__(self, out: TextIO, tally: Tally, viewers: int) -> None:
        self.out = out
        self.tally = tally
        self.viewers = viewers
        self.inplace = out.isatty()
        self.phase = "arriving"
        self.started = time.monotonic()

    def line(self) -> str:
        t = self.tally
        return (
            f"{self.phase:<8} {time.monotonic() - self.started:5.1f}s  viewers {t.joined - t.left}/{self.viewers}"
            f"  comments {t.comments}  likes {t.likes}  dislikes {t.dislikes}  orders {t.orders}"
            f"  revenue {t.revenue}  seen {t.comments_seen}  limited {t.rate_limited}  errors {t.errors}"
        )

    def show(self) -> None:
        if self.inplace:
            self.out.write("\r" + self.line() + "\x1b[K")
        else:
            self.out.write(self.line() + "\n")
        self.out.flush()

    async def run(self) -> None:
        every = 1.0 if self.inplace else 5.0
        while True:
            await asyncio.sleep(every)
            self.show()

    def done(self) -> None:
        self.phase = "done"
        self.show()
        if self.inplace:
            self.out.write("\n")


async def simulate(plan: Plan, out: TextIO = sys.stdout) -> Result:
    plan.validate()
    rng = random.Random(plan.seed)
    run = secrets.token_hex(3)
    password = secrets.token_urlsafe(12)
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=max(plan.concurrency * 2, 32))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        public = LivecartClient(plan.url, session=session)
        stream = await choose_stream(public, plan.stream_id)
        stream_id = stream["id"]
        owner = None
        if plan.seller:
            owner = LivecartClient(plan.url, session=session)
            try:
                await owner.login(*plan.seller)
                before = await dashboard_figures(owner, stream_id)
            except LivecartError as exc:
                raise SimulationError(f"the seller's login cannot read this stream's stats: {exc}") from None
        else:
            before = await public_figures(public, stream_id)
        products = [dict(p) for p in stream["featuredProducts"]]
        out.write(
            f"livecart simulate: {plan.viewers} viewers on stream {stream_id} “{stream['title']}” for {plan.duration:g} s"
            f" (per viewer per second: {plan.comment_rate:g} comments, {plan.react_rate:g} reactions, {plan.buy_rate:g} buys)\n"
        )
        out.flush()

        viewers = [Viewer(i, plan, stream_id, products, session, tally, rng, run) for i in range(plan.viewers)]
        progress = Progress(out, tally, plan.viewers)
        ticker = asyncio.create_task(progress.run())
        started = time.monotonic()
        stop_watching = asyncio.Event()
        watching: list[asyncio.Task] = []
        try:
            await arrive_all(viewers, password, plan.concurrency)
            progress.phase = "live"
            watching = [asyncio.create_task(v.watch(stop_watching)) for v in viewers[: plan.watchers]]
            deadline = time.monotonic() + plan.duration
            await asyncio.gather(*(v.act_until(deadline) for v in viewers))
            progress.phase = "leaving"
            # Let the last comments reach the watchers before they hang up.
            await asyncio.sleep(0.5)
        finally:
            stop_watching.set()
            await asyncio.gather(*watching, return_exceptions=True)
            await asyncio.gather(*(v.leave() for v in viewers))
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            progress.done()

        after = await (dashboard_figures(owner, stream_id) if owner else public_figures(public, stream_id))
        reactions = await reactions_on_server(viewers, plan.concurrency)
        return Result(
            before=before,
            after=after,
            reactions_on_server=reactions,
            stream_id=stream_id,
            title=stream["title"],
            tally=tally,
            server=change(before, after),
            source="seller dashboard (stats)" if owner else "public stream figures",
            seconds=time.monotonic() - started,
            watchers=min(plan.watchers, plan.viewers),
        )


MY_REACTION = "query($s: ID!) { stream(id: $s) { myReaction } }"


async def reactions_on_server(viewers: list[Viewer], concurrency: int) -> dict[str, int] | None:
    """The simulated viewers' reactions as the server has them, read back one by one: what tells
    other viewers' likes from ours. None when they cannot all be read."""
    gate = asyncio.Semaphore(concurrency)

    async def mine(viewer: Viewer) -> str | None:
        async with gate:
            return (await viewer.client.execute(MY_REACTION, {"s": viewer.stream_id}))["stream"]["myReaction"]

    try:
        kinds = await asyncio.gather(*(mine(v) for v in viewers if v.client.token))
    except (LivecartError, aiohttp.ClientError, asyncio.TimeoutError):
        return None
    return {"likes": kinds.count("LIKE"), "dislikes": kinds.count("DISLIKE")}


async def arrive_all(viewers: list[Viewer], password: str, concurrency: int) -> None:
    """Registers and joins every viewer, a few at a time (registration hashes a password: it is slow on purpose)."""
    gate = asyncio.Semaphore(concurrency)

    async def arrive(viewer: Viewer) -> None:
        async with gate:
            await viewer.arrive(password)

    try:
        await asyncio.gather(*(arrive(v) for v in viewers))
    except LivecartError as exc:
        if exc.code == "RATE_LIMITED":
            raise SimulationError(f"{exc} ({RATE_LIMIT_HINT})") from None
        raise SimulationError(f"a viewer could not join: {exc}") from None


VERDICTS = {"match": "", "others": "   other viewers too", "MISMATCH": "   <- MISMATCH: ours not all counted"}


def report(result: Result, out: TextIO) -> None:
    t = result.tally
    out.write(f"\nstream {result.stream_id} “{result.title}”, {result.seconds:.1f} s; figures from the {result.source}:\n")
    out.write(f"  {'figure':<14}{'before':>10}{'after':>10}{'change':>10}{'simulator':>11}\n")
    for row in result.table():
        out.write(
            f"  {row.name:<14}{row.before!s:>10}{row.after!s:>10}{_signed(row.change):>10}{row.mine!s:>11}"
            f"{VERDICTS[row.verdict]}\n"
        )
    out.write(
        f"  also: {t.heartbeats} heartbeats, {t.reactions_sent} reaction changes, {t.comments_seen} comment events"
        f" delivered to {result.watchers} watchers, {t.rate_limited} rate-limited, {t.out_of_stock} out of stock,"
        f" {t.errors} errors\n"
    )
    if not result.matches:
        out.write("MISMATCH: some of the simulator's actions are missing from the figures\n")
    elif result.others_active:
        out.write("all of the simulator's actions are counted; other viewers were active on the stream too\n")
    else:
        out.write("all figures match\n")
    out.flush()


def _signed(value: object) -> str:
    """A change with its sign (+3, -1, 0): a change, not a total."""
    number = Decimal(str(value))
    return f"+{value}" if number > 0 else str(value)


# ---------------------------------------------------------------- the command

def add_parser(commands) -> None:
    """`livecart simulate ...`, added to the CLI's subcommands."""
    import argparse

    parser = commands.add_parser(
        "simulate",
        help="drive a live stream of a served instance with simulated viewers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="the served instance (default: PUBLIC_URL, else http://HOST:PORT as `livecart serve` uses)")
    parser.add_argument("--stream", help="the stream's id (default: the newest live stream)")
    parser.add_argument("--viewers", type=int, default=200, help="simulated viewers (default 200)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of activity once all have joined (default 30)")
    parser.add_argument("--comment-rate", type=float, default=0.05, help="comments per viewer per second (default 0.05)")
    parser.add_argument("--react-rate", type=float, default=0.03, help="reaction changes per viewer per second (default 0.03)")
    parser.add_argument("--buy-rate", type=float, default=0.005, help="Buy Now per viewer per second (default 0.005)")
    parser.add_argument("--watchers", type=int, default=20, help="viewers who also subscribe to the chat (default 20)")
    parser.add_argument("--seller", metavar="USER:PASSWORD",
                        help="the stream owner's login, to compare with the dashboard's stats (orders, revenue...)")
    parser.add_argument("--seed", type=int, help="random seed, for a repeatable run")
    parser.set_defaults(func=run_command)


def run_command(args) -> None:
    from livecart.server.settings import Settings, SettingsError

    if args.url:
        url = args.url
    else:
        try:
            url = Settings.from_env().public_url
        except SettingsError as exc:
            sys.exit(f"livecart: {exc}")
    seller = None
    if args.seller:
        username, sep, password = args.seller.partition(":")
        if not sep:
            sys.exit("livecart simulate: --seller takes USER:PASSWORD")
        seller = (username, password)
    plan = Plan(
        url=url, stream_id=args.stream, viewers=args.viewers, duration=args.duration,
        comment_rate=args.comment_rate, react_rate=args.react_rate, buy_rate=args.buy_rate,
        watchers=args.watchers, seller=seller, seed=args.seed,
    )
    try:
        result = asyncio.run(simulate(plan))
    except SimulationError as exc:
        sys.exit(f"livecart simulate: {exc}")
    except (aiohttp.ClientError, OSError) as exc:
        sys.exit(
            f"livecart simulate: cannot reach {url} ({exc}); point it at the server with --url, "
            "or set PORT (or PUBLIC_URL) as for `livecart serve`"
        )
    except KeyboardInterrupt:
        sys.exit("livecart simulate: interrupted")
    report(result, sys.stdout)
    if not result.matches:
        sys.exit(1)
