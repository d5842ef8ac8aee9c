"""One result per event for every subscriber that would compute the same one, sent as bytes.

Strawberry runs each subscription as its own chain (source generator, graphql-core
execution, formatting, JSON encoding) for every event: with thousands of subscribers
of one stream that is thousands of identical executions per comment. Here, once a
subscription over our WebSocket handlers has sent its first result, its later events
skip that chain: the hub groups the subscribers that share a document, variables and
caller role (`SharedDelivery.group_key`), one of them executes the selection set for
the event and encodes it, and every member gets the same payload bytes framed with
its own operation id (`SharedDelivery.send`).

What differs per caller keeps the per-subscriber path: a result with errors (masking
and request ids are per connection) is handed back to each subscriber's own chain.

This module knows no web framework and no strawberry: the schema layer hands it what it needs
(`shared_delivery`): the graphql-core schema and parsed document, whether the caller matters,
how to format errors for this caller, and what to do before each event's execution.
"""
from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLError, GraphQLSchema
from graphql.execution import Executor, execute_subscription_event


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    """A subscription as our WebSocket handlers run it (set in the operation's own task)."""

    send_encoded: Callable[[dict, bytes], None]
    operation_id: str
    message_type: str  # "next" (graphql-transport-ws) or "data" (legacy graphql-ws)
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    # Set by handlers that let an idle subscriber leave its chain (graphql-transport-ws):
    # detach(operation_id, release) -> bool, finish(operation_id). See SharedDelivery.detach.
    detach: Callable[[str, Callable[[], None]], bool] | None = None
    finish: Callable[[str], None] | None = None
    # What goes around a result's encoded payload ({"data": ...}): None for the WebSocket
    # protocols' {"id", "type", "payload"} message; a subscription over HTTP (server/http_stream.py)
    # gives its own (an SSE event, a multipart part).
    frame: tuple[bytes, bytes] | None = None


current_operation: contextvars.ContextVar[Operation | None] = contextvars.ContextVar(
    "livecart_ws_operation", default=None
)


class SharedDelivery:
    """One subscriber's way onto the shared path (see the module docstring)."""

    __slots__ = (
        "group_key", "_operation", "_graphql", "_document", "_format_errors", "_on_event", "_context", "_value_of",
        "_message", "_prefix", "_suffix", "task_context", "detached", "_ended",
    )

    def __init__(self, operation: Operation, how: "SharedExecution", context: Any, caller: Any,
                 value_of: Callable[[Any], Awaitable[Any]]) -> None:
        # A str of its own size: orjson's bytes keep a 4 KB buffer, per subscriber.
        variables = orjson.dumps(operation.variables or {}, option=orjson.OPT_SORT_KEYS).decode()
        role = ("caller", caller) if how.caller_matters else "anyone"
        self.group_key = ("shared-result", operation.query, operation.operation_name, variables, role)
        self._operation = operation
        self._graphql = how.schema
        self._document = how.document
        self._format_errors = how.format_errors
        self._on_event = how.on_event
        self._context = context
        self._value_of = value_of
        self._message = {"id": operation.operation_id, "type": operation.message_type}
        if operation.frame is not None:
            self._prefix, self._suffix = operation.frame
        else:
            self._prefix = b'{"id":' + orjson.dumps(operation.operation_id) + b',"type":"' + operation.message_type.encode() + b'","payload":'
            self._suffix = b"}"
        # The subscriber's task context (Tortoise's connections live in a ContextVar).
        self.task_context = contextvars.copy_context()
        self.detached = False
        self._ended: Callable[[Any], Awaitable[bool]] | None = None

    async def payload(self, event: Any) -> "bytes | Failure | None":
        """The encoded result for `event`, computed once for the whole group; None: nothing to send;
        a Failure: errors that each caller formats itself (its own chain, or send_failure)."""
        return await event.once(self.group_key, lambda: self._execute(event))

    async def _execute(self, event: Any) -> bytes | None:
        self._on_event()
        value = await self._value_of(event)
        if value is None:
            return None
        built = Executor.build(
            self._graphql,
            self._document,
            context_value=self._context,
            raw_variable_values=self._operation.variables,
            operation_name=self._operation.operation_name,
        )
        if isinstance(built, list):  # cannot happen for a document that already started: be safe
            return None
        result = execute_subscription_event(built.build_per_event_executor(value))
        if built.is_awaitable(result):
            result = await result
        if result.errors:
            return Failure(result.data, result.errors, ends=False)
        return orjson.dumps({"data": result.data})

    def send(self, payload: bytes) -> None:
        self._operation.send_encoded(self._message, self._prefix + payload + self._suffix)

    # ------------------------------------------------------------ detached subscribers

    def detach(self, release: Callable[[], None], ended: Callable[[Any], Awaitable[bool]]) -> bool:
        """Let the subscriber's own chain (strawberry's stream, graphql-core's iterator, the resolver
        generators and the operation task: most of an idle subscriber's memory) end, once the
        subscriber is on the shared path and its field sends nothing when the stream ends. From then
        on its group does what the chain did: the shared results, the errors formatted for this
        caller, and `complete` when `ended(event)` says the stream is over. `release` takes the
        subscriber out of the hub (the client completes, or the connection closes).
        False: the handler keeps the chain (legacy graphql-ws)."""
        detach = self._operation.detach
        if detach is None or not detach(self._operation.operation_id, release):
            return False
        self.detached = True
        self._ended = ended
        return True

    async def ended(self, event: Any) -> bool:
        assert self._ended is not None
        return await self._ended(event)

    def send_failure(self, failure: "Failure") -> None:
        """What the subscriber's chain would have sent for a result with errors (masked and coded
        for this caller, as the schema's error extension does), or for an event that failed (an
        error, then complete)."""
        payload: dict[str, Any] = {"data": failure.data, "errors": self._format_errors(list(failure.errors), self._context)}
        self._operation.send_encoded(self._message, self._prefix + orjson.dumps(payload) + self._suffix)
        if failure.ends:
            self.complete()

    def complete(self) -> None:
        """The end of a detached subscription: `complete` to the client, out of the hub and the handler."""
        operation = self._operation
        operation.send_encoded(_COMPLETE, b'{"id":' + orjson.dumps(operation.operation_id) + b',"type":"complete"}')
        if operation.finish is not None:
            operation.finish(operation.operation_id)


_COMPLETE = {"type": "complete"}


@dataclasses.dataclass(slots=True)
class Failure:
    """A group's result with errors (each caller formats them), or an event that failed (`ends`)."""

    data: Any
    errors: list
    ends: bool

    @classmethod
    def of(cls, exc: BaseException) -> "Failure":
        error = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
        return cls(None, [error], ends=True)


@dataclasses.dataclass(frozen=True, slots=True)
class SharedExecution:
    """What executing a subscription's document once per event needs, from the schema layer."""

    schema: GraphQLSchema
    document: DocumentNode
    caller_matters: bool  # the document selects a caller-dependent field: group by caller
    format_errors: Callable[[list[GraphQLError], Any], list[dict]]  # errors as this caller sees them
    on_event: Callable[[], None]  # before each event's execution (a fresh DataLoader scope)


def shared_delivery(
    context: Any, hub: Any, caller: Any, value_of: Callable[[Any], Awaitable[Any]],
    how: Callable[[Operation], SharedExecution | None],
) -> SharedDelivery | None:
    """The shared path for the subscription running in this task, when its transport offers one
    (`current_operation` is set) and sharing is on; `how(operation)`: None when it cannot be shared."""
    operation = current_operation.get()
    if operation is None or not hub.share_events:
        return None
    execution = how(operation)
    if execution is None:
        return None
    return SharedDelivery(operation, execution, context, caller, value_of)
