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

from schema.document_cache import parsed, selects_caller_fields
from server.context import new_loader_scope

@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    """A subscription as our WebSocket handlers run it (set in the operation's own task)."""

    send_encoded: Callable[[dict, bytes], None]
    operation_id: str
    message_type: str  # "next" (graphql-transport-ws) or "data" (legacy graphql-ws)
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None


current_operation: contextvars.ContextVar[Operation | None] = contextvars.ContextVar(
    "livecart_ws_operation", default=None
)


class SharedDelivery:
    """One subscriber's way onto the shared path (see the module docstring)."""

    __slots__ = ("group_key", "_operation", "_schema", "_context", "_value_of", "_message", "_prefix", "task_context")

    def __init__(
        self,
        operation: Operation,
        schema: GraphQLSchema,
        context: Any,
        caller: Any,
        value_of: Callable[[Any], Awaitable[Any]],
    ) -> None:
        variables = orjson.dumps(operation.variables or {}, option=orjson.OPT_SORT_KEYS)
        role = ("caller", caller) if selects_caller_fields(operation.query) else "anyone"
        self.group_key = ("shared-result", operation.query, operation.operation_name, variables, role)
        self._operation = operation
        self._schema = schema
        self._context = context
        self._value_of = value_of
        self._message = {"id": operation.operation_id, "type": operation.message_type}
        self._prefix = b'{"id":' + orjson.dumps(operation.operation_id) + b',"type":"' + operation.message_type.encode() + b'","payload":'
        # The subscriber's task context (Tortoise's connections live in a ContextVar).
        self.task_context = contextvars.copy_context()

    async def payload(self, event: Any) -> bytes | None:
        """The encoded result for `event`, computed once for the whole group; None to use the
        per-subscriber path (nothing to send, or errors that each caller formats itself)."""
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
            return None
        return orjson.dumps({"data": result.data})

    def send(self, payload: bytes) -> None:
        self._operation.send_encoded(self._message, self._prefix + payload + b"}")


def shared_delivery(info: Any, value_of: Callable[[Any], Awaitable[Any]], caller: Any) -> SharedDelivery | None:
    """The shared path for the subscription `info` belongs to, when it runs over our WebSocket."""
    operation = current_operation.get()
    if operation is None or not info.context.broker.hub.share_events:
        return None
    try:
        return SharedDelivery(operation, info.schema._schema, info.context, caller, value_of)
    except GraphQLError:
        return None
