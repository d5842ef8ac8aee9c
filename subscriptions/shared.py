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
"""
from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from graphql import GraphQLError, GraphQLSchema
from graphql.execution import Executor, execute_subscription_event

from strawberry.extensions import MaskErrors

from livecart.schema.document_cache import parsed, selects_caller_fields
from livecart.server.context import new_loader_scope


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
        "group_key", "_operation", "_schema", "_extensions", "_context", "_value_of", "_message", "_prefix", "_suffix",
        "task_context",
        "detached", "_ended",
    )

    def __init__(
        self,
        operation: Operation,
        schema: GraphQLSchema,
        extensions: tuple,
        context: Any,
        caller: Any,
        value_of: Callable[[Any], Awaitable[Any]],
    ) -> None:
        # A str of its own size: orjson's bytes keep a 4 KB buffer, per subscriber.
        variables = orjson.dumps(operation.variables or {}, option=orjson.OPT_SORT_KEYS).decode()
        role = ("caller", caller) if selects_caller_fields(operation.query) else "anyone"
        self.group_key = ("shared-result", operation.query, operation.operation_name, variables, role)
        self._operation = operation
        self._schema = schema
        self._extensions = extensions
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
        new_loader_scope()
        value = await self._value_of(event)
        if value is None:
            return None
        built = Executor.build(
            self._schema,
            parsed(self._operation.query),
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
        errors = list(failure.errors)
        stub = _ExecutionStub(self._context)
        for extension_class in self._extensions:
            if isinstance(extension_class, type) and issubclass(extension_class, MaskErrors):
                extension = extension_class()
                extension.execution_context = stub
                errors = extension._process_errors(errors)
        payload: dict[str, Any] = {"data": failure.data, "errors": [error.formatted for error in errors]}
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
class _ExecutionStub:
    """What the error extension reads of an execution context: the caller's context."""

    context: Any


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


def shared_delivery(info: Any, value_of: Callable[[Any], Awaitable[Any]], caller: Any) -> SharedDelivery | None:
    """The shared path for the subscription `info` belongs to, when it runs over our WebSocket."""
    operation = current_operation.get()
    if operation is None or not info.context.broker.hub.share_events:
        return None
    try:
        return SharedDelivery(operation, info.schema._schema, info.schema.extensions, info.context, caller, value_of)
    except GraphQLError:
        return None
