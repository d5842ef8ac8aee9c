"""A small async client for livecart: queries and mutations over HTTP, subscriptions
over WebSocket (graphql-transport-ws).

    async with LivecartClient("http://127.0.0.1:8000") as client:
        await client.login("ann", "secret")             # keeps the token
        data = await client.execute("{ me { username } }")
        async for data in client.subscribe(COMMENTS, {"streamId": "1"}):
            print(data["commentAdded"]["text"])

`subscribe` opens a connection of its own; `connect()` gives one connection that
carries several subscriptions (they start in the order they are asked). `follow` is
`subscribe` that outlives dropped connections, as the pages do: it reconnects with
backoff, subscribes again and lets the caller catch up on what it missed.
"""
from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp

PROTOCOL = "graphql-transport-ws"
AUTH = "mutation($u: String!, $p: String!) { %s(username: $u, password: $p) { token user { id username } } }"


class LivecartError(Exception):
    """The server answered with GraphQL errors (or refused the connection)."""

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e.get("message")) for e in errors))

    @property
    def code(self) -> str | None:
        return (self.errors[0].get("extensions") or {}).get("code") if self.errors else None


CURSOR_EXPIRED = "CURSOR_EXPIRED"  # the server no longer keeps the events after a cursor (issue 15)
CONNECTION_LOST = "CLOSED"  # the code of LivecartError when a connection ends under a subscription


class LivecartClient:
    def __init__(self, base_url: str, token: str | None = None, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session = session
        self._owns_session = session is None

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> "LivecartClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ HTTP

    async def execute(self, query: str, variables: dict | None = None) -> dict:
        """The data of a query or mutation; LivecartError if the answer has errors."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.post(
            self.graphql_url, json={"query": query, "variables": variables or {}}, headers=headers
        ) as response:
            body = await response.json(content_type=None)
        if body.get("errors"):
            raise LivecartError(body["errors"])
        return body["data"]

    async def register(self, username: str, password: str) -> dict:
        return await self._authenticate("register", username, password)

    async def login(self, username: str, password: str) -> dict:
        return await self._authenticate("login", username, password)

    async def _authenticate(self, mutation: str, username: str, password: str) -> dict:
        payload = (await self.execute(AUTH % mutation, {"u": username, "p": password}))[mutation]
        self.token = payload["token"]
        return payload["user"]

    # ------------------------------------------------------------ WebSocket

    async def connect(self) -> "Connection":
        """One WebSocket, acknowledged, for any number of subscriptions."""
        ws = await self.session.ws_connect(self.graphql_url, protocols=[PROTOCOL], heartbeat=None)
        connection = Connection(ws)
        await connection.initialise({"authorization": f"Bearer {self.token}"} if self.token else {})
        return connection

    async def subscribe(self, query: str, variables: dict | None = None) -> AsyncIterator[dict]:
        """Each result's data on a connection of its own, until the server completes it."""
        connection = await self.connect()
        try:
            async for data in connection.subscribe(query, variables):
                yield data
        finally:
            await connection.close()

    async def follow(
        self,
        query: str,
        variables: dict | None = None,
        *,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        max_delay: float = 10.0,
    ) -> AsyncIterator[dict]:
        """`subscribe` that survives the connection: when it drops (or the server cannot be
        reached) it tries again after 0.5 s, 1 s, 2 s... up to `max_delay`, with jitter, and
        subscribes anew. A document that declares `$after` and selects `eventCursor` resumes:
        it is subscribed again with `after` set to the last cursor seen, and the server sends
        what passed meanwhile, nothing twice. Otherwise `on_reconnect` runs, once the new
        subscription answers, to re-read what passed; when the server no longer keeps what passed
        (CURSOR_EXPIRED) it runs at once, then the subscription starts from now. Ends when the server completes the subscription; other errors (FORBIDDEN,
        NOT_FOUND...) are raised as they come."""
        attempt = 0
        resumable = "$after" in query
        cursor: str | None = (variables or {}).get("after") if resumable else None
        while True:
            resumed = False
            asked = {**(variables or {}), "after": cursor} if resumable else variables
            try:
                async for data in self.subscribe(query, asked):
                    if attempt and not resumed:
                        resumed, attempt = True, 0
                        if on_reconnect is not None and cursor is None:
                            await on_reconnect()
                    cursor = _event_cursor(data) or cursor
                    yield data
                return
            except (LivecartError, aiohttp.ClientError, OSError) as exc:
                if isinstance(exc, LivecartError) and exc.code == CURSOR_EXPIRED and cursor is not None:
                    # Away longer than the log keeps: reload once, then follow from now.
                    cursor, attempt = None, 0
                    if on_reconnect is not None:
                        await on_reconnect()
                    continue
                lost = isinstance(exc, (aiohttp.ClientError, OSError)) or exc.code == CONNECTION_LOST
                if not lost:
                    raise
            delay = min(max_delay, 0.5 * 2 ** attempt)
            attempt += 1
            await asyncio.sleep(delay / 2 + random.random() * delay / 2)


def _event_cursor(data: dict) -> str | None:
    """The eventCursor of a subscription's payload (its one top-level field), if it selects it."""
    for value in data.values():
        if isinstance(value, dict):
            return value.get("eventCursor")
    return None


class Connection:
    """A graphql-transport-ws connection: a reader task routes messages to operations."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._inboxes: dict[str, asyncio.Queue] = {}
        self._reader: asyncio.Task | None = None
        self.close_code: int | None = None

    async def initialise(self, payload: dict) -> None:
        await self.ws.send_json({"type": "connection_init", "payload": payload})
        message = await self.ws.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            await self.ws.close()
            self.close_code = self.ws.close_code
            raise LivecartError([{"message": f"connection refused ({self.ws.close_code})",
                                  "extensions": {"code": "FORBIDDEN" if self.ws.close_code == 4403 else CONNECTION_LOST}}])
        if message.json().get("type") != "connection_ack":
            raise LivecartError([{"message": f"unexpected {message.data[:100]}"}])
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                body = message.json()
                if body.get("type") == "ping":
                    await self.ws.send_json({"type": "pong"})
                inbox = self._inboxes.get(body.get("id"))
                if inbox is not None:
                    inbox.put_nowait(body)
        finally:
            # However reading ends (closed, garbled, or a pong into a closing socket),
            # every operation hears of it rather than wait for ever.
            self.close_code = self.ws.close_code
            for inbox in self._inboxes.values():
                inbox.put_nowait({"type": "closed"})

    async def subscribe(self, query: str, variables: dict | None = None) -> AsyncIterator[dict]:
        """Each result's data; LivecartError for errors; ends when the server completes."""
        async for data in await self.start(query, variables):
            yield data

    async def start(self, query: str, variables: dict | None = None) -> AsyncIterator[dict]:
        """Send the subscription now; iterate the returned results later."""
        if self._reader is not None and self._reader.done():
            raise self._closed()
        operation = str(next(self._ids))
        self._inboxes[operation] = asyncio.Queue()
        await self.ws.send_json(
            {"id": operation, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
        )
        return self._results(operation)

    async def _results(self, operation: str) -> AsyncIterator[dict]:
        inbox = self._inboxes[operation]
        completed = False
        try:
            while True:
                message = await inbox.get()
                kind = message["type"]
                if kind == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        raise LivecartError(payload["errors"])
                    yield payload["data"]
                elif kind == "error":
                    completed = True
                    raise LivecartError(message["payload"])
                elif kind == "complete":
                    completed = True
                    return
                else:  # the connection closed
                    completed = True
                    raise self._closed()
        finally:
            self._inboxes.pop(operation, None)
            if not completed and not self.ws.closed:
                await self.ws.send_json({"id": operation, "type": "complete"})

    def _closed(self) -> "LivecartError":
        return LivecartError([{"message": f"connection closed ({self.close_code})", "extensions": {"code": CONNECTION_LOST}}])

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
