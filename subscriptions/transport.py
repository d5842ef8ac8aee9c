"""The two WebSocket subscription protocols, independent of any web framework or GraphQL library:
messages in (`receive`), frames out (a `SendQueue`), and hooks for authentication, persisted
documents and execution (`Hooks`, implemented by server/ws_aiohttp.py with strawberry's public
`Schema.stream`/`subscribe`/`execute`).

- graphql-transport-ws (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md):
  connection_init/ack, ping/pong, subscribe/next/error/complete. Closes: 4400 bad message,
  4401 subscribe before ack, 4403 refused credentials, 4408 no connection_init in time,
  4409 a running id reused, 4429 a second connection_init.
- graphql-ws, the legacy subscriptions-transport-ws protocol: connection_init/ack/error, `ka`
  keepalives, start/data/error/complete/stop, connection_terminate. Queries and mutations run
  once (one `data`, then `complete`). The same 4408 init deadline as graphql-transport-ws.

Each operation runs in a task of its own with `shared.current_operation` set, so subscription
resolvers may take the shared path (subscriptions/shared.py); on graphql-transport-ws an idle
subscriber may leave its task (detach) while its operation stays registered.
At most `max_operations` run at once per connection (the next is answered with an error whose
extensions.code is TOO_MANY_SUBSCRIPTIONS).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from livecart.subscriptions.sendqueue import SendQueue
from livecart.subscriptions.shared import Operation as SharedOperation
from livecart.subscriptions.shared import current_operation

log = logging.getLogger("livecart.ws")

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
BAD_USER_INPUT = "BAD_USER_INPUT"


class Rejected(Exception):
    """Raised by Hooks.connect: the connection's credentials are refused."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("message"))
        self.payload = payload


class Refused(Exception):
    """Raised by Hooks.resolve_document: the operation is refused before it runs (formatted errors)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0].get("message") if errors else "")
        self.errors = errors


@dataclass(slots=True)
class Result:
    """One result of an operation, formatted: `payload` is {"data", "errors"?, "extensions"?}.
    `before_execution`: nothing ran (parse, validation, ...): `payload["errors"]` say why, and
    `close_reason`, when set, makes graphql-transport-ws close the connection with 4400."""

    payload: dict[str, Any]
    before_execution: bool = False
    close_reason: str | None = None


class Hooks(Protocol):
    async def connect(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """connection_init's payload: the ack's payload (None: none), or raise Rejected."""

    async def resolve_document(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The operation's parameters with a persisted document filled in, or raise Refused."""

    def stream(self, query: str, variables: Any, operation_name: str | None) -> AsyncIterator[Result]:
        """Any operation's results: one for a query or mutation, each event's for a subscription."""

    def execute_once(self, query: str, variables: Any, operation_name: str | None) -> Any:
        """Awaitable Result of a query or mutation (the legacy protocol's one-off operations)."""

    def is_single(self, query: str, operation_name: str | None) -> bool:
        """Whether the operation is a query or mutation (not a subscription)."""

    def coalesced(self, query: str, operation_name: str | None) -> bool:
        """Whether the operation's results replace each other in the send queue."""

    def running(self, delta: int) -> None:
        """The number of operations running moved (the active subscriptions gauge)."""

    def result_too_large(self, size: int) -> dict[str, Any] | None:
        """The error replacing a result of `size` encoded bytes, or None when it may be sent."""


@dataclass(frozen=True, slots=True)
class Limits:
    init_timeout: float  # seconds for connection_init, else close 4408
    max_operations: int | None  # at once per connection
    keepalive: float  # legacy `ka` interval in seconds; 0: none


@dataclass(slots=True, eq=False)
class _Operation:
    id: str
    query: str
    variables: Any
    name: str | None
    task: asyncio.Task | None = None
    last_sent: bool = False  # its last message (complete or error) is sent, or it is detached
    release: Callable[[], None] | None = field(default=None)  # set while detached


def subscription_limit_error(limit: int) -> dict[str, object]:
    return {
        "message": f"At most {limit} subscriptions may run at once on one connection; complete one first.",
        "extensions": {"code": TOO_MANY_SUBSCRIPTIONS, "limit": limit},
    }


class Session:
    """One connection's protocol state; `receive` each text message, `receive_binary` for a binary
    one, `shutdown` once the connection has closed."""

    result_type = "next"

    def __init__(self, out: SendQueue, hooks: Hooks, limits: Limits) -> None:
        self.out = out
        self.hooks = hooks
        self.limits = limits
        self.acknowledged = False
        self.init_received = False
        self.timed_out = False
        self.by_id: dict[str, _Operation] = {}
        self._init_timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            limits.init_timeout, self._init_timed_out
        )
        self._tasks: set[asyncio.Task] = set()  # close and keepalive tasks started here

    # ------------------------------------------------------------ frames out

    def send(self, message: dict[str, Any]) -> None:
        if self.out.closed:
            return  # the reading side notices the closed socket and ends the operations
        data = orjson.dumps(message)
        if message.get("type") == self.result_type:
            error = self.hooks.result_too_large(len(data))
            if error is not None:
                log.info("replacing a %d-byte WebSocket result with an error", len(data))
                data = orjson.dumps({**message, "payload": {"data": None, "errors": [error]}})
        self.out.send_encoded(message, data)

    async def close(self, code: int, reason: str) -> None:
        await self.out.close(code, reason)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ connection_init

    def _init_timed_out(self) -> None:
        self._init_timer = None
        if self.init_received:
            return
        self.timed_out = True
        self._spawn(self.close(4408, "Connection initialisation timeout"))

    def _init_arrived(self) -> None:
        if self._init_timer is not None:
            self._init_timer.cancel()
            self._init_timer = None

    # ------------------------------------------------------------ messages in

    async def receive(self, text: str | bytes) -> None:
        raise NotImplementedError

    async def receive_binary(self) -> None:
        raise NotImplementedError

    def enter(self, operation: _Operation, detachable: bool) -> None:
        """In the operation's own task: let its subscription resolvers take the shared path."""
        if isinstance(operation.query, str):
            current_operation.set(SharedOperation(
                self.out.send_encoded, operation.id, self.result_type, operation.query, operation.name,
                operation.variables, self.detach if detachable else None, self.finish if detachable else None,
            ))

    def detach(self, operation_id: str, release: Callable[[], None]) -> bool:
        return False

    def finish(self, operation_id: str) -> None:
        return None

    def over_limit(self, operation_id: str) -> bool:
        limit = self.limits.max_operations
        return limit is not None and operation_id not in self.by_id and len(self.by_id) >= limit

    async def shutdown(self) -> None:
        self._init_arrived()
        for task in list(self._tasks):
            task.cancel()
        operations = list(self.by_id.values())
        for operation in operations:
            self._end(operation)
        for operation in operations:
            if operation.task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await operation.task
        self.out.stop()

    def _end(self, operation: _Operation) -> None:
        # finish() before the pop: a detached operation's finish looks itself up by id.
        if operation.release is not None:
            self.finish(operation.id)
        self.by_id.pop(operation.id, None)
        if operation.task is not None:
            operation.task.cancel()


def _decode(text: str | bytes) -> Any:
    return orjson.loads(text)


class TransportWSSession(Session):
    """graphql-transport-ws."""

    result_type = "next"

    async def receive(self, text: str | bytes) -> None:
        try:
            message = _decode(text)
        except orjson.JSONDecodeError:
            await self.close(4400, "WebSocket message must be valid JSON")
            return
        if not isinstance(message, dict) or "type" not in message:
            await self.close(4400, "Failed to parse message")
            return
        kind = message["type"]
        try:
            if kind == "connection_init":
                await self._connection_init(message)
            elif kind == "ping":
                self.send({"type": "pong"})
            elif kind == "pong":
                pass
            elif kind == "subscribe":
                await self._subscribe(message)
            elif kind == "complete":
                self._complete(message["id"])
            else:
                await self.close(4400, f"Unknown message type: {kind}")
        except (KeyError, TypeError, AttributeError):
            await self.close(4400, "Failed to parse message")

    async def receive_binary(self) -> None:
        await self.close(4400, "WebSocket message type must be text")

    async def _connection_init(self, message: dict) -> None:
        if self.timed_out:
            return
        self._init_arrived()
        payload = message.get("payload", {})
        if not isinstance(payload, dict):
            await self.close(4400, "Invalid connection init payload")
            return
        if self.init_received:
            await self.close(4429, "Too many initialisation requests")
            return
        self.init_received = True
        try:
            ack = await self.hooks.connect(payload)
        except Rejected:
            await self.close(4403, "Forbidden")
            return
        self.send({"type": "connection_ack"} if ack is None else {"type": "connection_ack", "payload": ack})
        self.acknowledged = True

    async def _subscribe(self, message: dict) -> None:
        if not self.acknowledged:
            await self.close(4401, "Unauthorized")
            return
        operation_id = message["id"]
        if not isinstance(operation_id, str):
            raise TypeError("id")
        if operation_id in self.by_id:
            await self.close(4409, f"Subscriber for {operation_id} already exists")
            return
        if self.over_limit(operation_id):
            self.send({"id": operation_id, "type": "error", "payload": [subscription_limit_error(self.limits.max_operations)]})
            return
        payload = message["payload"]
        if not isinstance(payload, dict):
            raise TypeError("payload")
        try:
            payload = await self.hooks.resolve_document(payload)
        except Refused as refusal:
            self.send({"id": operation_id, "type": "error", "payload": refusal.errors})
            return
        if operation_id in self.by_id:  # a reuse that arrived while the document was resolved
            await self.close(4409, f"Subscriber for {operation_id} already exists")
            return
        operation = _Operation(operation_id, payload["query"], payload.get("variables"), payload.get("operationName"))
        if isinstance(operation.query, str):
            self.out.coalesce(operation_id, self.hooks.coalesced(operation.query, operation.name))
        self.by_id[operation_id] = operation
        operation.task = asyncio.get_running_loop().create_task(self._run(operation))

    async def _run(self, operation: _Operation) -> None:
        self.enter(operation, detachable=True)
        self.hooks.running(1)
        try:
            first = True
            async for result in self.hooks.stream(operation.query, operation.variables, operation.name):
                if first and result.before_execution:
                    if result.close_reason is not None:
                        self.by_id.pop(operation.id, None)
                        await self.close(4400, result.close_reason)
                        return
                    self._last(operation, {"id": operation.id, "type": "error", "payload": result.payload["errors"]})
                    return
                first = False
                if not operation.last_sent:
                    self.send({"id": operation.id, "type": "next", "payload": result.payload})
            self._last(operation, {"id": operation.id, "type": "complete"})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a WebSocket operation failed")
            self._last(operation, {"id": operation.id, "type": "complete"})
        finally:
            self.hooks.running(-1)

    def _last(self, operation: _Operation, message: dict) -> None:
        """The operation's last message: its id is free again before the client reads it."""
        if operation.last_sent:
            return
        operation.last_sent = True
        if self.by_id.get(operation.id) is operation:
            del self.by_id[operation.id]
        self.send(message)

    def _complete(self, operation_id: str) -> None:
        operation = self.by_id.get(operation_id)
        if operation is not None:
            self._end(operation)

    # ------------------------------------------------------------ detached subscribers (shared.py)

    def detach(self, operation_id: str, release: Callable[[], None]) -> bool:
        """The operation's task may end: the operation stays registered (limits, ids, `complete`
        from the client) and its group sends what the task would have; `release` takes it out of
        the hub when it is over."""
        operation = self.by_id.get(operation_id)
        if operation is None or operation.last_sent:
            return False
        operation.last_sent = True  # the ending task's own `complete` stays unsent
        operation.release = release
        self.hooks.running(1)
        return True

    def finish(self, operation_id: str) -> None:
        """A detached operation is over: completed by its group, by the client, or the connection closed."""
        operation = self.by_id.get(operation_id)
        release = operation.release if operation is not None else None
        if release is None:
            return
        operation.release = None
        self.by_id.pop(operation_id, None)
        release()
        self.hooks.running(-1)



class LegacyWSSession(Session):
    """graphql-ws (subscriptions-transport-ws)."""

    result_type = "data"

    async def receive(self, text: str | bytes) -> None:
        try:
            message = _decode(text)
        except orjson.JSONDecodeError:
            return  # the legacy protocol ignores what it cannot read
        problem = _legacy_message_problem(message)
        if problem is not None:
            await self._malformed(message, problem)
            return
        kind = message["type"]
        if kind == "connection_init":
            await self._connection_init(message)
        elif kind == "connection_terminate":
            await self.close(1000, "")
        elif kind == "start":
            await self._start(message)
        elif kind == "stop":
            await self._stop(message["id"])

    async def receive_binary(self) -> None:
        await self.close(1002, "WebSocket message type must be text")

    async def _malformed(self, message: Any, problem: str) -> None:
        """One INFO line and the protocol's answer: an `error` for that operation, or close 4400
        when no operation can be named."""
        log.info("malformed graphql-ws message: %s", problem)
        operation_id = message.get("id") if isinstance(message, dict) else None
        if isinstance(operation_id, str) and message.get("type") == "start" and self.acknowledged:
            error = {"message": f"Malformed start message: {problem}.", "extensions": {"code": BAD_USER_INPUT}}
            self.send({"type": "error", "id": operation_id, "payload": error})
            return
        await self.close(4400, f"Malformed message: {problem}"[:120])

    async def _connection_init(self, message: dict) -> None:
        self.init_received = True
        self._init_arrived()
        payload = message.get("payload")
        if payload is not None and not isinstance(payload, dict):
            self.send({"type": "connection_error"})
            await self.close(1000, "")
            return
        try:
            ack = await self.hooks.connect(payload)
        except Rejected as rejection:
            self.send({"type": "connection_error", "payload": rejection.payload})
            await self.close(1011, "")
            return
        self.send({"type": "connection_ack"} if ack is None else {"type": "connection_ack", "payload": ack})
        self.acknowledged = True
        if self.limits.keepalive > 0:
            self._spawn(self._keep_alive())

    async def _keep_alive(self) -> None:
        while not self.out.closed:
            self.send({"type": "ka"})
            await asyncio.sleep(self.limits.keepalive)

    async def _start(self, message: dict) -> None:
        if not self.acknowledged:
            await self.close(4401, "Unauthorized")
            return
        operation_id = message["id"]
        if self.over_limit(operation_id):
            # A start with a running id replaces that operation (stopped first): not one more.
            self.send({"type": "error", "id": operation_id, "payload": subscription_limit_error(self.limits.max_operations)})
            return
        if operation_id in self.by_id:
            await self._stop(operation_id)
        try:
            payload = await self.hooks.resolve_document(message["payload"])
        except Refused as refusal:
            self.send({"id": operation_id, "type": "error", "payload": refusal.errors[0]})
            return
        operation = _Operation(operation_id, payload["query"], payload.get("variables"), payload.get("operationName"))
        if isinstance(operation.query, str):
            self.out.coalesce(operation_id, self.hooks.coalesced(operation.query, operation.name))
        self.by_id[operation_id] = operation
        operation.task = asyncio.get_running_loop().create_task(self._run(operation))

    async def _run(self, operation: _Operation) -> None:
        self.hooks.running(1)
        try:
            if isinstance(operation.query, str) and self.hooks.is_single(operation.query, operation.name):
                result = await self.hooks.execute_once(operation.query, operation.variables, operation.name)
                self.send({"type": "data", "id": operation.id, "payload": result.payload})
            else:
                self.enter(operation, detachable=False)
                first = True
                async for result in self.hooks.stream(operation.query, operation.variables, operation.name):
                    if first and result.before_execution:
                        self.send({"type": "error", "id": operation.id, "payload": result.payload["errors"][0]})
                        return
                    first = False
                    self.send({"type": "data", "id": operation.id, "payload": result.payload})
            self.send({"type": "complete", "id": operation.id})
        except asyncio.CancelledError:
            self.send({"type": "complete", "id": operation.id})
        except Exception:
            log.exception("a WebSocket operation failed")
            self.send({"type": "complete", "id": operation.id})
        finally:
            # Over, however it ended: it no longer counts towards the limit, and its id may be reused.
            if self.by_id.get(operation.id) is operation:
                del self.by_id[operation.id]
            self.hooks.running(-1)

    async def _stop(self, operation_id: str) -> None:
        operation = self.by_id.pop(operation_id, None)
        if operation is None or operation.task is None:
            return
        operation.task.cancel()
        with contextlib.suppress(BaseException):
            await operation.task


def _legacy_message_problem(message: Any) -> str | None:
    """What is wrong with a graphql-ws message, or None when it can be handled."""
    if not isinstance(message, dict):
        return "not a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "type is not a string"
    if kind == "connection_init":
        return None  # a payload that is no object is answered with connection_error
    if kind in ("start", "stop") and not isinstance(message.get("id"), str):
        return "id is not a string"
    if kind != "start":
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return "payload is not an object"
    if not isinstance(payload.get("query"), str):
        return "query is not a string"
    if payload.get("operationName") is not None and not isinstance(payload["operationName"], str):
        return "operationName is not a string"
    if payload.get("variables") is not None and not isinstance(payload["variables"], dict):
        return "variables is not an object"
    return None


SESSIONS: dict[str, type[Session]] = {TRANSPORT_WS: TransportWSSession, LEGACY_WS: LegacyWSSession}
