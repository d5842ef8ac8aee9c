"""The WebSocket transport's aiohttp side: the handshake, the reading loop, the socket under the
send queue, and the hooks through which the protocol core (subscriptions/transport.py) reaches
authentication, persisted documents and strawberry's public execution API.

aiohttp's WebSocketResponse has no synchronous send: `direct_frame_writer` is the one place that
reaches into its private frame writer (guarded, and checked by tests/test_engine_internals.py),
so that a fan-out writes each subscriber's frame without a task switch per subscriber.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import WSMsgType, web
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.websocket_origin import is_same_origin
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from livecart.schema.cost import MAX_RESPONSE_BYTES, response_too_large
from livecart.schema.document_cache import operation_of, operation_type
from livecart.schema.facts import facts_of
from livecart.schema.internals import graphql_schema
from livecart.server import ops
from livecart.server.persisted import PersistedRefusal
from livecart.subscriptions.sendqueue import SendQueue
from livecart.subscriptions.transport import SESSIONS, Limits, Refused, Rejected, Result, Session

log = logging.getLogger("livecart.ws")

PROTOCOLS = tuple(SESSIONS)


# ---------------------------------------------------------------- aiohttp's private frame writer

def direct_frame_writer(ws: web.WebSocketResponse) -> Callable[[bytes], bool] | None:
    """A synchronous `write(data) -> bool` onto the socket (False: it takes no more now, queue it),
    or None when this aiohttp has no such writer. The only use of aiohttp's private WebSocket
    writer, its protocol's paused flag and its frame-writing method (tests/test_engine_internals.py
    fails on the aiohttp that removes one): frames are never compressed here (see
    LivecartGraphQLView.create_websocket_response), so the write is synchronous."""
    writer = getattr(ws, "_writer", None)
    write_frame = getattr(writer, "_write_websocket_frame", None)
    if writer is None or write_frame is None or not hasattr(writer, "protocol") or not hasattr(writer, "transport"):
        return None

    def write(data: bytes) -> bool:
        if writer.compress or writer.protocol._paused or writer.transport.is_closing():
            return False
        write_frame(data, WSMsgType.TEXT, 0)
        return True

    return write


class AiohttpSocket:
    """`subscriptions.sendqueue.Socket` over an aiohttp WebSocketResponse."""

    __slots__ = ("ws", "request", "write_now")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        """`ws` is prepared (its frame writer exists from then on)."""
        self.request = request
        self.ws = ws
        self.write_now: Callable[[bytes], bool] = direct_frame_writer(ws) or _never_now

    async def write(self, data: bytes) -> None:
        await self.ws.send_frame(data, WSMsgType.TEXT)

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())


def _never_now(data: bytes) -> bool:
    return False  # every frame through the queue's writer task


class Connection(SendQueue):
    """One WebSocket's send queue (what LivecartGraphQLView.connections holds)."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        super().__init__(AiohttpSocket(request, ws))
        self.request = request
        self.ws = ws


# ---------------------------------------------------------------- the hooks, with strawberry's public API

class StrawberryHooks:
    """transport.Hooks for one connection: its context, the view's schema and persisted documents."""

    def __init__(self, view: Any, request: web.Request, context: Any) -> None:
        self.view = view
        self.request = request
        self.context = context
        self.schema = view.schema

    async def connect(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        self.context.connection_params = params
        try:
            ack = await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as rejection:
            raise Rejected(rejection.payload) from rejection
        return None if isinstance(ack, UnsetType) else ack

    async def resolve_document(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.view.persisted(self.request).resolve(payload)
        except PersistedRefusal as refusal:
            raise Refused(refusal.body()["errors"]) from refusal

    async def stream(self, query: str, variables: Any, operation_name: str | None) -> AsyncIterator[Result]:
        results = await self.schema.stream(
            query, variable_values=variables, context_value=self.context, operation_name=operation_name,
        )
        try:
            async for result in results:
                if isinstance(result, PreExecutionError):
                    yield Result(formatted(result), before_execution=True, close_reason=close_reason(result.errors))
                    return
                if not isinstance(result, ExecutionResult):  # @defer/@stream: not on this transport
                    error = GraphQLError("Incremental delivery is not supported over graphql-transport-ws")
                    yield Result({"data": None, "errors": [error.formatted]}, before_execution=True)
                    return
                yield Result(formatted(result))
        finally:
            await results.aclose()

    async def execute_once(self, query: str, variables: Any, operation_name: str | None) -> Result:
        result = await self.schema.execute(
            query, variable_values=variables, context_value=self.context, operation_name=operation_name,
            allowed_operation_types={OperationType.QUERY, OperationType.MUTATION},
        )
        return Result(formatted(result))

    def is_single(self, query: str, operation_name: str | None) -> bool:
        return operation_type(query, operation_name) in ("query", "mutation")

    def coalesced(self, query: str, operation_name: str | None) -> bool:
        return bool(root_fields(query, operation_name) & facts_of(graphql_schema(self.schema)).coalesced_subscriptions)

    def running(self, delta: int) -> None:
        metrics = ops.metrics_of(self.request.app)
        if metrics is not None:
            metrics.subscriptions.inc(delta)

    def result_too_large(self, size: int) -> dict[str, Any] | None:
        return response_too_large(size) if size > MAX_RESPONSE_BYTES else None


def formatted(result: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


def close_reason(errors: list[GraphQLError]) -> str | None:
    """A document that cannot be read, or names no operation, closes a graphql-transport-ws connection."""
    error = errors[0] if errors else None
    if isinstance(error, GraphQLSyntaxError):
        return error.message
    if error is not None and isinstance(error.original_error, CannotGetOperationTypeError):
        return error.original_error.as_http_error_reason()
    return None


def root_fields(query: str, operation_name: str | None) -> frozenset[str]:
    operation = operation_of(query, operation_name)
    if operation is None:
        return frozenset()
    return frozenset(selection.name.value for selection in operation.selection_set.selections if hasattr(selection, "name"))


# ---------------------------------------------------------------- the handshake and the reading loop

def origin_allowed(view: Any, request: web.Request) -> bool:
    """Browsers always send Origin on a handshake; a page on another origin may open a WebSocket only
    when allowed (view.allowed_origins, through strawberry's public is_websocket_origin_allowed)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if request.headers.get("Sec-Fetch-Site") == "same-origin" or is_same_origin(origin, request.headers.get("Host")):
        return True
    if view.is_websocket_origin_allowed(request, origin):
        return True
    log.warning("Rejected WebSocket connection from origin %r to host %r", origin, request.headers.get("Host"))
    return False


async def serve(view: Any, request: web.Request, limits: Limits) -> web.StreamResponse:
    """One WebSocket from handshake to close."""
    if not origin_allowed(view, request):
        return web.Response(status=403, text="Forbidden")
    protocol = web.WebSocketResponse(protocols=PROTOCOLS).can_prepare(request).protocol
    ws = await view.create_websocket_response(request, protocol)
    connection = Connection(request, ws)
    view.connections.add(connection)
    try:
        session_class = SESSIONS.get(protocol or "")
        if session_class is None:
            await ws.close(code=4406, message=b"Subprotocol not acceptable")
            return ws
        context = await view.get_context(request, ws)
        session = session_class(connection, StrawberryHooks(view, request, context), limits)
        await read(ws, session)
        return ws
    finally:
        connection.stop()


async def read(ws: web.WebSocketResponse, session: Session) -> None:
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await session.receive(message.data)
            elif message.type == WSMsgType.BINARY:
                await session.receive_binary()
    finally:
        await session.shutdown()


__all__ = ["serve", "direct_frame_writer", "Connection", "StrawberryHooks"]
