"""The subscriber fleet: thousands of WebSocket subscribers held by worker processes.

Each worker is a process of its own (spawned, so it carries none of the parent's state)
running one event loop with raw aiohttp WebSocket clients speaking graphql-transport-ws.
A connection may carry several subscriptions (the live page's three) and its own token and
server. A worker only records (connection, subscription id, key, receive time) per message,
the key being the payload's eventCursor when it selects one, else its id: parsing dates or
computing latencies per message would make the load generator, not the server, the
bottleneck. The parent joins those with each comment's createdAt or each event's log time.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe

import orjson

PROTOCOL = "graphql-transport-ws"


@dataclass
class Tally:
    connected: int = 0
    failed: int = 0
    closed_by_server: int = 0
    errors: int = 0
    first_error: str = ""
    received: list[tuple[int, str, str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Subscription:
    id: str  # the graphql-transport-ws operation id: tells a connection's subscriptions apart
    query: str
    variables: dict
    field_name: str


@dataclass(frozen=True)
class Connection:
    """One WebSocket: where it connects, as whom, and what it subscribes to."""

    url: str
    token: str | None
    subscriptions: tuple[Subscription, ...]


async def _subscribe(session, connection: Connection):
    import aiohttp

    url, token = connection.url, connection.token

    ws = await session.ws_connect(url, protocols=(PROTOCOL,), autoping=True, heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5))
    payload = {"authorization": f"Bearer {token}"} if token else {}
    await ws.send_str(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
    ack = await asyncio.wait_for(ws.receive(), 30)
    if ack.type != aiohttp.WSMsgType.TEXT or orjson.loads(ack.data).get("type") != "connection_ack":
        await ws.close()
        raise RuntimeError(f"no connection_ack: {ack.data!r}")
    for sub in connection.subscriptions:
        await ws.send_str(orjson.dumps({"id": sub.id, "type": "subscribe",
                                        "payload": {"query": sub.query, "variables": sub.variables}}).decode())
    return ws


async def _read(ws, index: int, connection: Connection, tally: Tally) -> None:
    import aiohttp

    fields = {sub.id: sub.field_name for sub in connection.subscriptions}

    async for message in ws:
        now = time.time()
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        body = orjson.loads(message.data)
        kind = body.get("type")
        if kind == "next":
            data = (body.get("payload") or {}).get("data") or {}
            item = data.get(fields.get(body.get("id"), ""))
            if item is not None:
                tally.received.append((index, body["id"], item.get("eventCursor") or item.get("id") or "", now))
            else:
                tally.errors += 1
                tally.first_error = tally.first_error or str(body)[:300]
        elif kind == "ping":
            await ws.send_str('{"type":"pong"}')
        elif kind in ("error", "complete"):
            tally.errors += 1
            tally.first_error = tally.first_error or str(body)[:300]
    tally.closed_by_server += 1


async def _worker(conn: Pipe, connections: list[tuple[int, Connection]], connect_concurrency: int) -> None:
    import aiohttp

    tally = Tally()
    gate = asyncio.Semaphore(connect_concurrency)
    sockets, readers = [], []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def open_one(index: int, connection: Connection) -> None:
            async with gate:
                try:
                    ws = await _subscribe(session, connection)
                except Exception as exc:  # noqa: BLE001 - a failed connection is a figure, not a crash
                    tally.failed += 1
                    tally.first_error = tally.first_error or f"connect: {exc!r}"[:300]
                    return
                tally.connected += 1
                sockets.append(ws)
                readers.append(asyncio.create_task(_read(ws, index, connection, tally)))

        await asyncio.gather(*(open_one(index, connection) for index, connection in connections))
        loop = asyncio.get_running_loop()
        conn.send(("ready", tally.connected, tally.failed, tally.first_error))
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "count":
                conn.send((len(tally.received), tally.errors, tally.closed_by_server, tally.first_error))
            elif command == "collect":
                conn.send((tally.received, tally.errors, tally.closed_by_server, tally.first_error))
                tally.received = []
                tally.errors = 0
            elif command == "close":
                break
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        for reader in readers:
            reader.cancel()
    conn.send(("closed",))


def worker_entry(conn: Pipe, *args) -> None:
    from bench.procs import raise_open_files_limit

    raise_open_files_limit()
    asyncio.run(_worker(conn, *args))


class SubscriberFleet:
    """`total` subscribers to one subscription, spread over `processes` worker processes; or, with
    `connections`, those connections (each its own server, token and subscriptions)."""

    def __init__(self, ws_url: str, total: int, processes: int, query: str = "", variables: dict | None = None,
                 field_name: str = "", token: str | None = None, connect_concurrency: int = 32,
                 connections: list[Connection] | None = None) -> None:
        if connections is None:
            same = Connection(ws_url, token, (Subscription("1", query, variables or {}, field_name),))
            connections = [same] * total
        self.connections = connections
        self.total = len(connections)
        self.processes = max(1, min(processes, self.total))
        self.connect_concurrency = connect_concurrency
        self.pipes: list[Pipe] = []
        self.workers: list[multiprocessing.Process] = []
        self.connected = 0
        self.failed = 0
        self.first_error = ""

    def start(self, timeout: float = 600.0) -> "SubscriberFleet":
        context = multiprocessing.get_context("spawn")
        numbered = list(enumerate(self.connections))
        for i in range(self.processes):
            parent, child = context.Pipe()
            share = numbered[i::self.processes]  # round robin: each worker gets every kind of connection
            worker = context.Process(target=worker_entry, args=(child, share, self.connect_concurrency), daemon=True)
            worker.start()
            self.pipes.append(parent)
            self.workers.append(worker)
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError("a subscriber worker did not connect in time")
            _, connected, failed, error = pipe.recv()
            self.connected += connected
            self.failed += failed
            self.first_error = self.first_error or error
        return self

    def _ask(self, command: str) -> list[tuple]:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def received_count(self) -> int:
        return sum(answer[0] for answer in self._ask("count"))

    def wait_for(self, expected: int, timeout: float, stall: float = 20.0) -> int:
        """Poll until `expected` messages arrived in all, or none came for `stall` seconds, or the
        timeout; the count seen. A slow server still gets measured, a stuck one does not hang the run."""
        deadline = time.monotonic() + timeout
        seen = self.received_count()
        last_progress = time.monotonic()
        while seen < expected and time.monotonic() < deadline and time.monotonic() - last_progress < stall:
            time.sleep(0.1)
            now_seen = self.received_count()
            if now_seen > seen:
                last_progress = time.monotonic()
            seen = now_seen
        return seen

    def collect(self) -> tuple[list[tuple[int, str, str, float]], dict]:
        """Every (connection, subscription id, key, receive time) since the last collect, and the error tallies."""
        received, errors, closed, first_error = [], 0, 0, ""
        for batch, batch_errors, batch_closed, batch_first in self._ask("collect"):
            received.extend(batch)
            errors += batch_errors
            closed += batch_closed
            first_error = first_error or batch_first
        return received, {"errors": errors, "closed_by_server": closed, "first_error": first_error}

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send("close")
            except (BrokenPipeError, OSError):
                pass
        for worker, pipe in zip(self.workers, self.pipes):
            if pipe.poll(30):
                try:
                    pipe.recv()
                except EOFError:
                    pass
            worker.join(10)
            if worker.is_alive():
                worker.terminate()
                worker.join(5)

    def __enter__(self) -> "SubscriberFleet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


async def until_every_connection_hears(fleet: SubscriberFleet, post, timeout: float = 120.0, stall: float = 20.0) -> int:
    """graphql-transport-ws has no acknowledgement for a subscribe, and the server starts a
    subscription only once it has read its stream's log head: an event committed before that is
    part of the subscription's start, not news, and never reaches it. So `post()` (an awaitable
    that makes an event every connection hears), wait until it has reached everyone or deliveries
    stall (a slow server is never flooded: one event at a time), and again while some connection
    has heard nothing; this also warms the path up. Returns how many connections heard. Leaves
    nothing to collect."""
    heard: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(heard) < fleet.connected and time.monotonic() < deadline:
        await post()
        await asyncio.to_thread(fleet.wait_for, fleet.connected, max(0.0, deadline - time.monotonic()), stall)
        received, _ = await asyncio.to_thread(fleet.collect)
        heard.update(connection for connection, *_ in received)
    return len(heard)
