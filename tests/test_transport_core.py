"""The protocol core (subscriptions/transport.py) knows no web framework: messages in, frames out.
Driven here through an in-memory socket and hooks of our own; the same protocols over a real
WebSocket are covered by test_realtime.py, test_clients.py, test_limits.py and test_security.py."""
from __future__ import annotations

import asyncio
import collections
from typing import Any

import orjson

from livecart.models.errors import ErrorCode
from livecart.subscriptions import transport
from livecart.subscriptions.sendqueue import SendQueue
from livecart.subscriptions.transport import Limits, Rejected, Result


class MemorySocket:
    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.closed: tuple[int, str] | None = None

    def write_now(self, data: bytes) -> bool:
        self.frames.append(orjson.loads(data))
        return True

    async def write(self, data: bytes) -> None:
        self.frames.append(orjson.loads(data))

    def abort(self) -> None:
        self.closed = (1006, "aborted")

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


class Hooks:
    """Events come from a queue per operation (its variables name it); the token "good" is accepted."""

    def __init__(self) -> None:
        self.events: collections.defaultdict[str, asyncio.Queue] = collections.defaultdict(asyncio.Queue)
        self.running_now = 0

    async def connect(self, params: Any) -> None:
        if (params or {}).get("authorization") not in (None, "good"):
            raise Rejected({"message": "Invalid or expired token.", "code": "UNAUTHENTICATED"})
        return None

    async def resolve_document(self, payload: dict) -> dict:
        return payload

    async def stream(self, query: str, variables: Any, name: Any):
        if query == "bad":
            yield Result({"data": None, "errors": [{"message": "Syntax Error"}]}, before_execution=True, close_reason="Syntax Error")
            return
        while True:
            event = await self.events[(variables or {}).get("q", "")].get()
            if event is None:
                return
            yield Result({"data": {"n": event}})

    async def execute_once(self, query: str, variables: Any, name: Any) -> Result:
        return Result({"data": {"once": True}})

    def is_single(self, query: str, name: Any) -> bool:
        return query.startswith("query")

    def coalesced(self, query: str, name: Any) -> bool:
        return False

    def running(self, delta: int) -> None:
        self.running_now += delta

    def result_too_large(self, size: int) -> None:
        return None


async def session(kind: str, limits: Limits = Limits(5.0, 2, 0.0)) -> tuple[Any, MemorySocket, Hooks]:
    socket, hooks = MemorySocket(), Hooks()
    return transport.SESSIONS[kind](SendQueue(socket), hooks, limits), socket, hooks


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_graphql_transport_ws_runs_an_operation_and_keeps_its_limits():
    core, socket, hooks = await session(transport.TRANSPORT_WS)
    await core.receive(b'{"type":"connection_init","payload":{"authorization":"good"}}')
    await core.receive(b'{"type":"ping"}')
    for name in "abc":
        await core.receive(orjson.dumps({"id": name, "type": "subscribe", "payload": {"query": "subscription { n }", "variables": {"q": name}}}))
    await settle()
    hooks.events["a"].put_nowait(1)
    hooks.events["b"].put_nowait(None)  # b ends
    await settle()
    assert socket.frames[:2] == [{"type": "connection_ack"}, {"type": "pong"}]
    [refused] = [f for f in socket.frames if f.get("id") == "c"]
    assert refused["type"] == "error" and refused["payload"][0]["extensions"]["code"] == ErrorCode.TOO_MANY_SUBSCRIPTIONS.value
    assert {"id": "a", "type": "next", "payload": {"data": {"n": 1}}} in socket.frames
    assert sum(f.get("type") == "complete" for f in socket.frames) == 1
    assert hooks.running_now == 1
    await core.receive(orjson.dumps({"id": "a", "type": "subscribe", "payload": {"query": "subscription { n }"}}))
    await core.receive(orjson.dumps({"id": "b", "type": "subscribe", "payload": {"query": "subscription { n }"}}))
    await settle()
    assert socket.closed == (4409, "Subscriber for a already exists")  # b had completed: its id is free
    await core.shutdown()
    assert hooks.running_now == 0


async def test_graphql_transport_ws_closes_on_what_the_protocol_refuses():
    for messages, closed in [
        ([b"not json"], (4400, "WebSocket message must be valid JSON")),
        ([b"[1]"], (4400, "Failed to parse message")),
        ([b'{"type":"subscribe","id":"1","payload":{"query":"x"}}'], (4401, "Unauthorized")),
        ([b'{"type":"connection_init","payload":{"authorization":"bad"}}'], (4403, "Forbidden")),
        ([b'{"type":"connection_init"}', b'{"type":"connection_init"}'], (4429, "Too many initialisation requests")),
        ([b'{"type":"connection_init"}', b'{"type":"subscribe","id":"1","payload":{"query":"bad"}}'], (4400, "Syntax Error")),
        ([b'{"type":"what"}'], (4400, "Unknown message type: what")),
    ]:
        core, socket, _ = await session(transport.TRANSPORT_WS)
        for message in messages:
            await core.receive(message)
        await settle()
        assert socket.closed == closed, (messages, socket.closed)
        await core.shutdown()


async def test_connection_init_must_come_in_time_on_both_protocols():
    for kind in (transport.TRANSPORT_WS, transport.LEGACY_WS):
        core, socket, _ = await session(kind, Limits(0.05, 2, 0.0))
        await asyncio.sleep(0.2)
        assert socket.closed == (4408, "Connection initialisation timeout"), kind
        await core.shutdown()


async def test_graphql_ws_runs_queries_once_keeps_alive_and_stops():
    core, socket, hooks = await session(transport.LEGACY_WS, Limits(5.0, 2, 0.05))
    await core.receive(b'{"type":"connection_init","payload":{}}')
    await core.receive(orjson.dumps({"id": "q", "type": "start", "payload": {"query": "query { once }"}}))
    await core.receive(orjson.dumps({"id": "s", "type": "start", "payload": {"query": "subscription { n }"}}))
    await settle()
    hooks.events[""].put_nowait(7)
    await asyncio.sleep(0.12)
    await core.receive(b'{"id":"s","type":"stop"}')
    await core.receive(b'{"id":5,"type":"stop"}')
    frames = socket.frames
    assert frames[0] == {"type": "connection_ack"} and {"type": "ka"} in frames
    assert frames.count({"type": "ka"}) >= 2
    assert {"type": "data", "id": "q", "payload": {"data": {"once": True}}} in frames
    assert frames.index({"type": "complete", "id": "q"}) > frames.index({"type": "data", "id": "q", "payload": {"data": {"once": True}}})
    assert {"type": "data", "id": "s", "payload": {"data": {"n": 7}}} in frames
    assert {"type": "complete", "id": "s"} in frames
    assert socket.closed == (4400, "Malformed message: id is not a string")
    await core.shutdown()
    assert hooks.running_now == 0
