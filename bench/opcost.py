"""Issue 20: what one operation costs the server in CPU, and whether it grows with the connections.

An operation's cost: N calls at a steady rate (one every 1/rate s, each on its own task, each with
its own caller where the operation needs one), the server process's user+system CPU from
/proc/<pid>/stat from the first call to the last answer, less what the same process spends idle
over as long (measured just before, with nothing sent: its timers, sweepers and relay polls),
divided by N. The same for the page-load floor (bench/pagefloor.py), in its own process.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

from bench import pagedocs
from bench.gql import HttpGraphQL
from bench.loadgen import Connection, SubscriberFleet, Subscription
from bench.procs import Server, cpu_seconds, raise_open_files_limit
from bench.seed import Seeded

IDLE_SECONDS = 3.0


@dataclass
class OpCost:
    name: str
    calls: int = 0
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the window's, idle included
    idle_cpu_per_second: float = 0.0
    load: float = 0.0  # 1-min load average as the window ended
    connections: int = 0  # open on the server meanwhile (the growth rows)

    @property
    def cpu_ms(self) -> float | None:
        """CPU per call, less the idle process's over the window."""
        done = self.calls - self.errors
        if done <= 0:
            return None
        return max(0.0, self.cpu_seconds - self.idle_cpu_per_second * self.seconds) / done * 1000


async def idle_cpu_per_second(pid: int, seconds: float = IDLE_SECONDS) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


async def measure(name: str, pid: int, calls: list[Callable[[], Awaitable]], rate: float,
                  idle: float | None = None) -> OpCost:
    """`calls` at `rate` a second against the process `pid`; the idle rate is measured first unless given."""
    cost = OpCost(name=name, calls=len(calls))
    cost.idle_cpu_per_second = await idle_cpu_per_second(pid) if idle is None else idle
    before, started = cpu_seconds(pid), time.monotonic()

    async def one(i: int, call) -> None:
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        try:
            await call()
        except Exception as exc:  # noqa: BLE001 - a failed call is counted, not fatal
            cost.errors += 1
            cost.first_error = cost.first_error or f"{exc!r}"[:300]

    await asyncio.gather(*(one(i, call) for i, call in enumerate(calls)))
    cost.seconds = time.monotonic() - started
    cost.cpu_seconds = cpu_seconds(pid) - before
    cost.load = os.getloadavg()[0]
    return cost


# ---------------------------------------------------------------- the operations

class Operations:
    """Each operation as its page sends it (the documents of client/static/live.js), on one stream."""

    def __init__(self, session: aiohttp.ClientSession, url: str, seeded: Seeded, stream_index: int = 0) -> None:
        self.session = session
        self.url = url
        self.api = HttpGraphQL(session, f"{url}/graphql")
        self.seeded = seeded
        self.stream = seeded.live_stream_ids[stream_index]
        self.products = seeded.stream_product_ids[stream_index]
        self.commenters = itertools.cycle(seeded.commenter_tokens)
        self.viewers = itertools.cycle(seeded.viewer_tokens)
        self.buyers = itertools.cycle(seeded.buyer_tokens)
        self.sessions: list[tuple[str, str]] = []  # (session id, its viewer's token), for leaveStream

    def _call(self, document: str, variables: dict, token: str):
        return lambda: self.api.data(document, variables, token)

    def post_comment(self, n: int) -> list:
        return [self._call(pagedocs.live("POST_COMMENT"), {"s": str(self.stream), "t": f"cost {i}"},
                           next(self.commenters)) for i in range(n)]

    def react(self, n: int) -> list:
        """Each call changes the caller's reaction (like, then dislike, ...): a repeated one writes nothing."""
        calls = []
        for _ in range(n):
            token = next(self.viewers)
            kind = self.seeded.next_reaction(token, self.stream)
            calls.append(self._call(pagedocs.live("REACT"), {"s": str(self.stream), "k": kind}, token))
        return calls

    def join_stream(self, n: int) -> list:
        async def join(token: str) -> None:
            data = await self.api.data(pagedocs.live("JOIN"), {"s": str(self.stream), "b": None}, token)
            self.sessions.append((data["joinStream"]["id"], token))

        return [lambda token=next(self.viewers): join(token) for _ in range(n)]

    def leave_stream(self) -> list:
        """One leaveStream per session joinStream opened (call join_stream's first)."""
        sessions, self.sessions = self.sessions, []
        return [self._call(pagedocs.live("LEAVE"), {"id": sid}, token) for sid, token in sessions]

    def buy_now(self, n: int) -> list:
        return [self._call(pagedocs.live("BUY_NOW"), {"p": str(self.products[i % len(self.products)]), "q": 1,
                                                      "s": str(self.stream), "k": secrets.token_hex(8)},
                           next(self.buyers)) for i in range(n)]

    async def fill_carts(self, n: int) -> list[str]:
        """n buyers with one product in the cart from this stream (not measured): checkout's callers."""
        tokens = self.seeded.buyer_tokens[:n]
        for i, token in enumerate(tokens):
            await self.api.data(pagedocs.live("ADD_TO_CART"),
                                {"p": str(self.products[i % len(self.products)]), "s": str(self.stream)}, token)
        return tokens

    def checkout(self, tokens: list[str]) -> list:
        return [self._call(pagedocs.live("CHECKOUT"), {}, token) for token in tokens]

    def load_page(self, n: int, url: str | None = None) -> list:
        """live.js's STREAM document, authenticated, against `url` (livecart or the floor)."""
        body = orjson.dumps({"query": pagedocs.live("STREAM"), "variables": {"id": str(self.stream)}})

        async def load(token: str) -> None:
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            async with self.session.post(f"{url or self.url}/graphql", data=body, headers=headers) as response:
                answer = orjson.loads(await response.read())
                if answer.get("errors") or not answer.get("data", {}).get("stream"):
                    raise RuntimeError(str(answer)[:200])

        return [lambda token=next(self.viewers): load(token) for _ in range(n)]


async def operation_costs(server: Server, seeded: Seeded, n: int, rate: float, *, connections: int = 0,
                          only: tuple[str, ...] | None = None) -> list[OpCost]:
    """Every write of issue 20's list on `server`, n calls each at `rate` a second."""
    out = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128)) as session:
        ops = Operations(session, server.url, seeded)
        idle = await idle_cpu_per_second(server.pid)
        batches = {
            "postComment": lambda: ops.post_comment(n),
            "react": lambda: ops.react(n),
            "joinStream": lambda: ops.join_stream(n),
            "leaveStream": ops.leave_stream,
            "buyNow": lambda: ops.buy_now(n),
        }
        for name, make in batches.items():
            if only is None or name in only:
                out.append(await measure(name, server.pid, make(), rate, idle))
        if only is None or "checkout" in only:
            buyers = await ops.fill_carts(min(n, len(seeded.buyer_tokens)))
            out.append(await measure("checkout", server.pid, ops.checkout(buyers), rate, idle))
    for cost in out:
        cost.connections = connections
    return out


# ---------------------------------------------------------------- page load against its floor

def floor_server(port: int, database_url: str, log_dir: Path, beside: Server) -> Server:
    """The floor, its settings those of the livecart server `beside` it (the playback URL names its address)."""
    return Server("page-floor", [sys.executable, "-m", "bench.pagefloor", "--port", str(port)], port,
                  {"DATABASE_URL": database_url, "PUBLIC_URL": beside.url}, log_dir)


async def same_page(livecart_url: str, floor_url: str, seeded: Seeded) -> str:
    """'' when livecart and the floor return the same JSON for the same caller, else what differs."""
    async with aiohttp.ClientSession() as session:
        ops = Operations(session, livecart_url, seeded)
        token = seeded.viewer_tokens[0]
        body = orjson.dumps({"query": pagedocs.live("STREAM"), "variables": {"id": str(ops.stream)}})
        answers = []
        for url in (livecart_url, floor_url):
            async with session.post(f"{url}/graphql", data=body, headers={
                    "Content-Type": "application/json", "Authorization": f"Bearer {token}"}) as response:
                answers.append(orjson.loads(await response.read()))
    ours, floor = (a.get("data", {}).get("stream") or {} for a in answers)
    differ = sorted(k for k in set(ours) | set(floor) if k != "durationSeconds" and ours.get(k) != floor.get(k))
    return "" if ours and not differ else f"fields differ: {', '.join(differ) or 'no answer'}"


async def page_load_costs(unshared: Server, floor: Server, seeded: Seeded, n: int, rate: float) -> tuple[OpCost, OpCost]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=128)) as session:
        ops = Operations(session, unshared.url, seeded)
        await measure("warm-up", unshared.pid, ops.load_page(min(n, 20)), rate, 0.0)
        await measure("warm-up", floor.pid, ops.load_page(min(n, 20), floor.url), rate, 0.0)
        ours = await measure("page load, livecart", unshared.pid, ops.load_page(n), rate)
        theirs = await measure("page load, floor", floor.pid, ops.load_page(n, floor.url), rate)
    return ours, theirs


# ---------------------------------------------------------------- growth with connections

DESCRIPTOR_HEADROOM = 1_000

async def growth(server: Server, seeded: Seeded, sizes: list[int], n: int, rate: float, processes: int,
                 ops: tuple[str, ...]) -> list[OpCost]:
    """Operations on stream 0 with `size` connections open on the other streams (commentAdded each, idle):
    the operation's own work stays the same, so any growth is cost that comes with the connections."""
    from bench.fanout import SUBSCRIPTION

    ws_url = server.url.replace("http://", "ws://") + "/graphql"
    others = seeded.live_stream_ids[1:]
    fleets: list[SubscriberFleet] = []
    out: list[OpCost] = []
    try:
        open_now = 0
        # The server needs descriptors beyond its connections (requests, database, Redis): where the
        # open-files limit is lower than the size asked for (20,000 on a machine whose hard limit is
        # 20,000), the largest size is what the limit allows, and the row says how many were open.
        most = raise_open_files_limit() - DESCRIPTOR_HEADROOM
        for size in sorted(min(size, most) for size in sizes):
            more = [Connection(ws_url, None, (Subscription("1", SUBSCRIPTION, {"s": str(others[i % len(others)])},
                                                           "commentAdded"),))
                    for i in range(open_now, size)]
            if more:
                fleet = SubscriberFleet("", 0, processes, connections=more)
                await asyncio.to_thread(fleet.start)
                fleets.append(fleet)
                open_now += fleet.connected
            await asyncio.sleep(1.0)
            print(f"bench: operation costs with {open_now:,} connections open", flush=True)
            out += await operation_costs(server, seeded, n, rate, connections=open_now, only=ops)
    finally:
        for fleet in fleets:
            await asyncio.to_thread(fleet.close)
    return out
