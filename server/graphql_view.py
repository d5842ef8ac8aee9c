"""Strawberry's aiohttp view with our context, WebSocket auth and bounded send queues.

Both subscription protocols are served: graphql-transport-ws and the legacy
graphql-ws. The connection_init payload `{"authorization": "Bearer <token>"}`
authenticates the whole connection; a token that names nobody is refused (4403
on graphql-transport-ws; connection_error then close on the legacy protocol).

Every message to a WebSocket goes through a bounded per-connection queue drained
by one writer task. A client that stops reading stalls the writer (TCP pushes
back), the queue fills, and the connection is dropped: the server's memory per
connection stays bounded. Coalesced figures (viewerCount, reactionsChanged,
streamStats) replace their own queued value instead of taking another slot.

Limits (issue 9; settings in server/settings.py, README "Production settings"): at most
WEBSOCKET_SUBSCRIPTIONS_PER_CONNECTION operations at once per connection (the next is
answered with an error whose extensions.code is TOO_MANY_SUBSCRIPTIONS, on both protocols);
connection_init within WEBSOCKET_INIT_TIMEOUT_SECONDS or close 4408 (both protocols);
incoming messages up to WEBSOCKET_MAX_MESSAGE_BYTES or close 1009 (aiohttp's max_msg_size);
at most WEBSOCKET_CONNECTIONS_PER_ADDRESS open sockets per client address and process,
the next handshake refused with HTTP 429 before any upgrade (TOO_MANY_CONNECTIONS).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from strawberry.aiohttp.views import AiohttpWebSocketAdapter, GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from cross_web import HTTPException
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.unset import UNSET, UnsetType

from livecart.models.errors import ErrorCode
from livecart.server import graphql_http, http_stream, ops
from livecart.server.appkeys import REQUEST_REDIS, SETTINGS
from livecart.server.pages import graphiql_page
from livecart.server.persisted import PersistedDocuments, PersistedRefusal, load_manifest
from livecart.schema.cost import MAX_RESPONSE_BYTES, response_too_large
from livecart.schema.document_cache import operation_of, operation_type
from livecart.server.context import Context
from livecart.server.query_cache import CACHE_HEADER, QUERY_CACHE
from livecart.server.ratelimit import client_address
from livecart.server.settings import Settings
from livecart.subscriptions.shared import Operation as SharedOperation
from livecart.subscriptions.shared import current_operation

log = logging.getLogger("livecart.ws")

# The request's negotiated media type, its parameters (read once, persisted documents resolved)
# and whether it failed before running: set per request task by LivecartGraphQLView.run_http.
_MEDIA: contextvars.ContextVar[str | None] = contextvars.ContextVar("livecart_media", default=None)
_PARAMS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("livecart_params", default=None)
_REQUEST_ERROR: contextvars.ContextVar[bool] = contextvars.ContextVar("livecart_request_error", default=False)

# Subscription fields whose newest value makes any older queued one useless.
COALESCED_FIELDS = frozenset({"viewerCount", "reactionsChanged", "streamStats"})
SEND_QUEUE_MESSAGES = 256
SEND_QUEUE_BYTES = 1 << 20
_ADAPTER = web.RequestKey("livecart.ws_adapter", object)
_WS_ADDRESS = web.RequestKey("livecart.ws_address", str)  # counted against its address while open
_WS_RESPONSE = web.RequestKey("livecart.ws_response", web.WebSocketResponse)  # counted as open


@functools.lru_cache(maxsize=512)
def root_fields(query: str, operation_name: str | None) -> frozenset[str]:
    """The top-level field names of the operation a subscribe message runs (parsed once per document)."""
    operation = operation_of(query, operation_name)
    if operation is None:
        return frozenset()
    return frozenset(selection.name.value for selection in operation.selection_set.selections if hasattr(selection, "name"))


class BoundedWebSocketAdapter(AiohttpWebSocketAdapter):
    """Sends through a bounded queue; drops the connection of a client that stops reading."""

    max_messages = SEND_QUEUE_MESSAGES
    max_bytes = SEND_QUEUE_BYTES

    def __init__(self, view: Any, request: web.Request, ws: web.WebSocketResponse) -> None:
        super().__init__(view, request, ws)
        # [operation id or None, encoded bytes]; the deque, the wake-up event and the writer task are
        # made when a first frame has to wait (most idle sockets never queue one: ~1.5 KB each).
        self._queue: deque[list] | tuple = ()
        self._queued_bytes = 0
        self._coalesced_ops: set[str] = set()
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task | None = None
        self.overflowed = False
        self.closed = False
        request[_ADAPTER] = self
        view.connections.add(self)

    def track_operation(self, operation_id: str, query: str, operation_name: str | None) -> None:
        if root_fields(query, operation_name) & COALESCED_FIELDS:
            self._coalesced_ops.add(operation_id)
        else:
            self._coalesced_ops.discard(operation_id)

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self.closed:
            return  # the reading side notices the closed socket and ends the operations
        data = orjson.dumps(message)
        if len(data) > MAX_RESPONSE_BYTES and message.get("type") in ("next", "data"):
            log.info("replacing a %d-byte WebSocket result with an error (limit %d)", len(data), MAX_RESPONSE_BYTES)
            message = {**message, "payload": {"data": None, "errors": [response_too_large(len(data))]}}
            data = orjson.dumps(message)
        self.send_encoded(message, data)

    def send_encoded(self, message: Mapping[str, object], data: bytes) -> None:
        """Queue already-encoded bytes: the hook for sending one serialization to many."""
        if self.closed:
            return
        key = message.get("id") if message.get("type") in ("next", "data") else None
        if key is not None and key in self._coalesced_ops and self._replace_queued(key, data):
            return
        if not self._queue and self._write_now(data):
            return
        if len(self._queue) >= self.max_messages or self._queued_bytes + len(data) > self.max_bytes:
            self._overflow()
            return
        if self._writer is None:
            self._queue = deque()
            self._wakeup = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())
        self._queue.append([key, data])
        self._queued_bytes += len(data)
        self._wakeup.set()

    def _write_now(self, data: bytes) -> bool:
        """Hand the frame to the transport at once when nothing waits before it and the socket
        takes more: no writer task to wake, which is most of a fan-out's cost per subscriber.
        Uses aiohttp's frame writer directly (its send_frame would need an await); frames are
        never compressed here (see create_websocket_response), so the write is synchronous."""
        writer = getattr(self.ws, "_writer", None)
        if writer is None or writer.compress or writer.protocol._paused or writer.transport.is_closing():
            return False
        writer._write_websocket_frame(data, WSMsgType.TEXT, 0)
        return True

    def _replace_queued(self, key: str, data: bytes) -> bool:
        for entry in self._queue:
            if entry[0] == key:
                self._queued_bytes += len(data) - len(entry[1])
                entry[1] = data
                return True
        return False

    async def _write_forever(self) -> None:
        try:
            while True:
                while self._queue:
                    _, data = self._queue.popleft()
                    self._queued_bytes -= len(data)
                    await self.ws.send_frame(data, WSMsgType.TEXT)
                self._wakeup.clear()
                await self._wakeup.wait()
        except (ConnectionError, RuntimeError):
            self.closed = True  # the peer went away; the reader side ends the handler

    def _overflow(self) -> None:
        """The client stopped reading: drop it rather than buffer without bound."""
        if self.closed:
            return
        self.closed = self.overflowed = True
        log.warning("closing a WebSocket whose client stopped reading (%d messages queued)", len(self._queue))
        self._queue = ()
        self._queued_bytes = 0
        if self._writer is not None:
            self._writer.cancel()
        # A polite close would wait for the very client that is not reading: abort the TCP connection.
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close(self, code: int, reason: str) -> None:
        await self._drain(timeout=1.0)  # an error message queued before the close goes out first
        self.closed = True
        await super().close(code, reason)

    async def _drain(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while self._queue and not self.closed and self._writer is not None:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pass

    def stop(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.cancel()


def _enter_operation(
    websocket: Any, operation_id: str, message_type: str, query: str, name: str | None, variables: Any,
    detach: Any = None, finish: Any = None,
) -> None:
    """Let the subscription resolvers of this operation's task take the shared path."""
    if isinstance(websocket, BoundedWebSocketAdapter) and isinstance(query, str):
        current_operation.set(
            SharedOperation(websocket.send_encoded, operation_id, message_type, query, name, variables, detach, finish)
        )


async def _resolve_documents(handler: Any, message: Any, *, many: bool) -> Any:
    """A subscribe/start message with its persisted document filled in (APQ, TRUSTED_DOCUMENTS),
    as over HTTP; None when refused (an `error` message with the code has been sent)."""
    payload = message.get("payload")
    if not handler.connection_acknowledged or not isinstance(payload, dict) or not isinstance(handler.view, LivecartGraphQLView):
        return message  # strawberry answers these as before (4401, 4400)
    try:
        resolved = await handler.view.persisted(handler.context.request).resolve(payload)
    except PersistedRefusal as refusal:
        errors = refusal.body()["errors"]
        await handler.send_message({"id": message.get("id"), "type": "error", "payload": errors if many else errors[0]})
        return None
    return message if resolved is payload else {**message, "payload": resolved}


# ---------------------------------------------------------------- WebSocket limits: the handlers' side

def subscription_limit_error(limit: int) -> dict[str, object]:
    return {
        "message": f"At most {limit} subscriptions may run at once on one connection; complete one first.",
        "extensions": {"code": ErrorCode.TOO_MANY_SUBSCRIPTIONS.value, "limit": limit},
    }


def _count_running(context: Any, delta: int) -> None:
    request = getattr(context, "request", None)
    metrics = ops.metrics_of(request.app) if request is not None else None
    if metrics is not None:
        metrics.subscriptions.inc(delta)


@contextlib.contextmanager
def _running(context: Any) -> Iterator[None]:
    """Counts an operation in the active subscriptions gauge while its task runs
    (a detached one stays counted until it ends: TransportWSHandler.detach_operation)."""
    _count_running(context, 1)
    try:
        yield
    finally:
        _count_running(context, -1)


class TransportWSHandler(BaseGraphQLTransportWSHandler):
    """graphql-transport-ws. An idle subscription on the shared path may let its chain end
    (SharedDelivery.detach): its operation stays registered (limits, ids, `complete` from the
    client) without a task, its group sends what the chain would have, and `release` takes it
    out of the hub when the client completes it or the connection closes."""

    _detached: dict[str, Any] | None = None  # operation id -> release, made on first use
    _init_timer: asyncio.TimerHandle | None = None

    def on_request_accepted(self) -> None:
        """The connection_init deadline as a timer, not a task sleeping for every new socket."""
        self._init_timer = asyncio.get_running_loop().call_later(
            self.connection_init_wait_timeout.total_seconds(), self._init_timed_out
        )

    def _init_timed_out(self) -> None:
        self._init_timer = None
        if self.connection_init_received:
            return
        self.connection_timed_out = True
        self.connection_init_timeout_task = asyncio.get_running_loop().create_task(
            self.websocket.close(code=4408, reason="Connection initialisation timeout")
        )

    async def handle_connection_init(self, message: Any) -> None:
        if self._init_timer is not None:
            self._init_timer.cancel()
            self._init_timer = None
        await super().handle_connection_init(message)

    async def shutdown(self) -> None:
        if self._init_timer is not None:
            self._init_timer.cancel()
            self._init_timer = None
        await super().shutdown()

    def detach_operation(self, operation_id: str, release: Any) -> bool:
        operation = self.operations.get(operation_id)
        if operation is None or operation.completed:
            return False
        operation.completed = True  # the ending chain's own `complete` stays unsent
        if self._detached is None:
            self._detached = {}
        self._detached[operation_id] = release
        _count_running(self.context, 1)
        return True

    def finish_operation(self, operation_id: str) -> None:
        """A detached operation is over: completed by its group, by the client, or the connection closed."""
        release = self._detached.pop(operation_id, None) if self._detached else None
        if release is None:
            return
        self.operations.pop(operation_id, None)
        release()
        _count_running(self.context, -1)

    async def cleanup_operation(self, operation_id: str) -> None:
        self.finish_operation(operation_id)
        await super().cleanup_operation(operation_id)

    async def handle_subscribe(self, message: Any) -> None:
        if await self.refuse_over_limit(message):
            return
        message = await _resolve_documents(self, message, many=True)
        if message is None:
            return
        payload = message.get("payload") or {}
        if isinstance(self.websocket, BoundedWebSocketAdapter) and isinstance(payload.get("query"), str):
            self.websocket.track_operation(message.get("id"), payload["query"], payload.get("operationName"))
        await super().handle_subscribe(message)

    async def refuse_over_limit(self, message: Any) -> bool:
        """Strawberry's own check answers without extensions.code: ours comes first (same limit).
        An unacknowledged connection or a reused id is left to strawberry (4401, 4409)."""
        limit = self.max_subscriptions_per_connection
        if limit is None or not self.connection_acknowledged or message.get("id") in self.operations:
            return False
        if len(self.operations) < limit:
            return False
        await self.send_message({"id": message.get("id"), "type": "error", "payload": [subscription_limit_error(limit)]})
        return True

    async def run_operation(self, operation: Any) -> None:
        _enter_operation(
            self.websocket, operation.id, "next", operation.query, operation.operation_name, operation.variables,
            self.detach_operation, self.finish_operation,
        )
        with _running(self.context):
            await super().run_operation(operation)


class LegacyWSHandler(BaseGraphQLWSHandler):
    """graphql-ws: strawberry has no connection_init timeout for it; the same one as
    graphql-transport-ws is added here (close 4408)."""

    init_received = False

    async def handle(self) -> None:
        watchdog = asyncio.get_running_loop().create_task(self._close_unless_initialised())
        try:
            await super().handle()
        finally:
            watchdog.cancel()

    async def _close_unless_initialised(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self.init_received:
            await self.websocket.close(code=4408, reason="Connection initialisation timeout")

    async def handle_connection_init(self, message: Any) -> None:
        self.init_received = True
        await super().handle_connection_init(message)

    async def handle_message(self, message: Any) -> None:
        """Strawberry reads the legacy messages' fields unchecked: a message that is no object, a
        non-string id, a `start` whose payload is no object or whose query, operationName or
        variables have the wrong type each raised a traceback. Ours: one INFO line and the
        protocol's answer (an `error` for that operation, or close 4400 when no operation can be named)."""
        problem = _legacy_message_problem(message)
        if problem is None:
            await super().handle_message(message)
            return
        log.info("malformed graphql-ws message: %s", problem)
        operation_id = message.get("id") if isinstance(message, dict) else None
        if isinstance(operation_id, str) and message.get("type") == "start" and self.connection_acknowledged:
            error = {"message": f"Malformed start message: {problem}.", "extensions": {"code": ErrorCode.BAD_USER_INPUT.value}}
            await self.send_message({"type": "error", "id": operation_id, "payload": error})
            return
        await self.websocket.close(code=4400, reason=f"Malformed message: {problem}"[:120])

    async def handle_start(self, message: Any) -> None:
        if await self.refuse_over_limit(message):
            return
        message = await _resolve_documents(self, message, many=False)
        if message is None:
            return
        payload = message.get("payload") or {}
        if isinstance(self.websocket, BoundedWebSocketAdapter) and isinstance(payload.get("query"), str):
            self.websocket.track_operation(message.get("id"), payload["query"], payload.get("operationName"))
        await super().handle_start(message)

    async def refuse_over_limit(self, message: Any) -> bool:
        limit = self.max_subscriptions_per_connection
        # A start with a running id replaces that operation (strawberry stops it first): not one more.
        if limit is None or not self.connection_acknowledged or message.get("id") in self.tasks:
            return False
        if len(self.tasks) < limit:
            return False
        await self.send_message({"type": "error", "id": message.get("id"), "payload": subscription_limit_error(limit)})
        return True

    async def handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: Any
    ) -> None:
        if isinstance(query, str) and operation_type(query, operation_name) in ("query", "mutation"):
            await self.execute_once(operation_id, query, operation_name, variables)
            return
        _enter_operation(self.websocket, operation_id, "data", query, operation_name, variables)
        with _running(self.context):
            await super().handle_async_results(operation_id, query, operation_name, variables)


    async def execute_once(self, operation_id: str, query: str, operation_name: str | None, variables: Any) -> None:
        """The legacy protocol carries queries and mutations too (subscriptions-transport-ws, gql's
        legacy transport): one `data`, then `complete`; strawberry's handler only subscribes."""
        try:
            with _running(self.context):
                result = await self.schema.execute(
                    query, variable_values=variables, context_value=self.context, operation_name=operation_name,
                    root_value=self.root_value,
                )
            await self.send_data_message(result, operation_id)
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)


def _legacy_message_problem(message: Any) -> str | None:
    """What is wrong with a graphql-ws message, or None when strawberry can handle it."""
    if not isinstance(message, dict):
        return "not a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "type is not a string"
    if kind == "connection_init":
        return None  # strawberry answers a payload that is no object with connection_error
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


class LivecartGraphQLView(GraphQLView):
    websocket_adapter_class = BoundedWebSocketAdapter
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        if settings is not None:
            kwargs.setdefault("connection_init_wait_timeout", timedelta(seconds=settings.websocket_init_timeout_seconds))
            kwargs.setdefault("max_subscriptions_per_connection", settings.websocket_subscriptions_per_connection)
            # The legacy protocol's `ka`: strawberry's default is one a second to every socket.
            kwargs.setdefault("keep_alive", settings.websocket_keepalive_seconds > 0)
            kwargs.setdefault("keep_alive_interval", settings.websocket_keepalive_seconds or None)
        super().__init__(*args, **kwargs)
        self.settings = settings or Settings()
        trusted = load_manifest(self.settings.trusted_documents) if self.settings.trusted_documents else None
        self._trusted = trusted
        self._persisted: PersistedDocuments | None = None
        self.connections: weakref.WeakSet[BoundedWebSocketAdapter] = weakref.WeakSet()  # open WebSockets
        self.sockets_per_address: collections.Counter[str] = collections.Counter()

    async def get_context(self, request: web.Request, response: web.StreamResponse | web.WebSocketResponse) -> Context:
        return Context(request, response)

    def encode_json(self, data: object) -> bytes:
        encoded = orjson.dumps(data)
        if len(encoded) > MAX_RESPONSE_BYTES and isinstance(data, dict) and "data" in data:
            log.info("replacing a %d-byte answer with an error (limit %d)", len(encoded), MAX_RESPONSE_BYTES)
            encoded = orjson.dumps({"data": None, "errors": [response_too_large(len(encoded))]})
        return encoded

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """A connection that offers credentials must offer valid ones; without any it is anonymous.
        Credentials are the connection_init payload's, or without a payload the upgrade request's
        Authorization header (Context.token): either way the socket is registered for logout and
        closed when its token expires (issue 13: header-authenticated sockets escaped both)."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        offered = params.get("authorization") or params.get("Authorization") or context.token
        if offered:
            context.forget_user()
            if context.token is None or await context.user() is None:
                raise ConnectionRejectionError({"message": "Invalid or expired token.", "code": "UNAUTHENTICATED"})
            ops.remember_socket_token(context.response, context.token, context.token_expires_at)
        return UNSET

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Strawberry answers a request it cannot read (empty query, broken JSON, variables that
        are no object, a wrong method) in plain text: ours says it in GraphQL's shape, with a code."""
        refusal = _bound_upload(request)
        if refusal is not None:
            return refusal
        try:
            return await self.run(request=request)
        except HTTPException as exc:
            return self.refuse(exc.status_code, exc.reason, ErrorCode.BAD_USER_INPUT.value)

    # ------------------------------------------------------------ GraphQL over HTTP (server/graphql_http.py)

    def refuse(self, status: int, message: str, code: str, headers: Mapping[str, str] | None = None, **extensions: object) -> web.Response:
        return self.error_response([{"message": message, "extensions": {"code": code, **extensions}}], status, headers)

    def error_response(self, errors: list, status: int, headers: Mapping[str, str] | None = None) -> web.Response:
        """A request refused before it ran, in GraphQL's shape and the negotiated media type."""
        media = _MEDIA.get()
        content_type = graphql_http.GRAPHQL_RESPONSE if media == graphql_http.GRAPHQL_RESPONSE else graphql_http.JSON
        return web.Response(
            body=orjson.dumps({"errors": errors}), status=status, content_type=content_type, charset="utf-8",
            headers=headers,
        )

    async def run(self, request: web.Request, context: Any = UNSET, root_value: Any = UNSET) -> web.StreamResponse:
        if self.is_websocket_request(request):
            refusal = self.admit_websocket(request)
            if refusal is not None:
                return refusal
        else:
            return await self.run_http(request, context, root_value)
        try:
            return await super().run(request, context, root_value)
        finally:
            adapter = request.get(_ADAPTER)
            if adapter is not None:
                adapter.stop()
            self.release_websocket(request)

    async def run_upload(self, request: web.Request, context: Any, root_value: Any, media: str) -> web.StreamResponse:
        """A file upload (GraphQL multipart request: operations, map, files) is read by strawberry,
        bounded by _bound_upload. Its document is inside the multipart body, out of reach of the
        trusted-documents check, so with TRUSTED_DOCUMENTS set uploads are refused (images then go
        by their https URL)."""
        if self.persisted(request).trusted is not None:
            return self.refuse(
                400, "Uploads are not accepted with trusted documents: give the image's https URL.",
                ErrorCode.PERSISTED_QUERY_NOT_ALLOWED.value,
            )
        return self._in_media_type(await super().run(request, context, root_value), media)

    async def run_http(self, request: web.Request, context: Any, root_value: Any) -> web.StreamResponse:
        """GET and POST: the media type first (406 when none offered fits), then the parameters
        (persisted documents resolved), then a stream (SSE, multipart), a shared query result,
        or strawberry's execution, answered in the negotiated type."""
        wants_ide = request.method == "GET" and not {"query", "extensions", "documentId"} & request.query.keys()
        media = graphql_http.negotiate(request.headers.get("Accept"), html=wants_ide and self.graphql_ide is not None)
        _PARAMS.set(None)
        _MEDIA.set(media)
        _REQUEST_ERROR.set(False)
        if media is None:
            return graphql_http.not_acceptable()
        if media == graphql_http.HTML:
            if self.graphql_ide is None:
                return self.refuse(404, "Not Found", ErrorCode.NOT_FOUND.value)
            return await self.render_graphql_ide(request)
        if request.method not in ("GET", "POST"):
            return self.refuse(405, "GraphQL only supports GET and POST requests.", ErrorCode.BAD_USER_INPUT.value, headers={"Allow": "GET, POST"})
        if request.method == "POST" and request.content_type.startswith("multipart/"):
            return await self.run_upload(request, context, root_value, media)
        params = await graphql_http.read_params(request)
        try:
            params = await self.persisted(request).resolve(params)
        except PersistedRefusal as refusal:
            return web.Response(
                body=orjson.dumps(refusal.body()), status=refusal.status if media == graphql_http.GRAPHQL_RESPONSE else 200,
                content_type=media if media == graphql_http.GRAPHQL_RESPONSE else graphql_http.JSON, charset="utf-8",
            )
        _PARAMS.set(params)
        query, name = params.get("query"), params.get("operationName")
        if media in graphql_http.STREAMING:
            return await http_stream.serve(self, request, params, media, self.refuse)
        kind = operation_type(query, name) if isinstance(query, str) else None
        if kind == "subscription":
            return self.refuse(
                400,
                "Subscriptions are served over a WebSocket (graphql-transport-ws, graphql-ws), or over HTTP with "
                'Accept: text/event-stream or multipart/mixed;subscriptionSpec="1.0".',
                ErrorCode.BAD_USER_INPUT.value,
            )
        if kind == "mutation" and request.method == "GET":
            return self.refuse(405, "Mutations are only sent with POST.", ErrorCode.BAD_USER_INPUT.value, headers={"Allow": "POST"})
        cache = request.app.get(QUERY_CACHE)
        key = cache.key_for(query, name, params.get("variables")) if cache is not None else None
        if key is not None:  # a query whose answer is everyone's: see server/query_cache.py
            response = await cache.answer(key, functools.partial(super().run, request, context, root_value))
            if request.method == "GET" and "Authorization" not in request.headers and CACHE_HEADER in response.headers:
                # A GET (by persisted hash, typically) of everyone's answer, without errors (the only
                # answers the query cache keeps and marks): shared caches may keep it too.
                age = max(1, int(self.settings.query_cache_seconds))
                response.headers["Cache-Control"] = f"public, max-age={age}"
                response.headers["Vary"] = "Accept, Authorization"
        else:
            response = await super().run(request, context, root_value)
        return self._in_media_type(response, media)

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        return graphiql_page()  # no CDN: see client/vendor.py

    def should_render_graphql_ide(self, request: Any) -> bool:
        return False  # decided by run_http's negotiation (text/html), before strawberry runs

    def persisted(self, request: web.Request) -> PersistedDocuments:
        if self._persisted is None:
            self._persisted = PersistedDocuments(
                request.app.get(REQUEST_REDIS),
                self._trusted,
                self.settings.introspection_enabled,
            )
        return self._persisted

    def _in_media_type(self, response: web.StreamResponse, media: str) -> web.StreamResponse:
        if not isinstance(response, web.Response) or response.content_type != graphql_http.JSON:
            return response
        response.charset = "utf-8"
        if media == graphql_http.GRAPHQL_RESPONSE:
            response.content_type = graphql_http.GRAPHQL_RESPONSE
            if _REQUEST_ERROR.get():
                response.set_status(400)
        return response

    async def parse_http_body(self, request_adapter: Any) -> Any:
        params = _PARAMS.get()
        if params is None:
            return await super().parse_http_body(request_adapter)
        from strawberry.http import GraphQLRequestData

        return GraphQLRequestData(
            query=params.get("query"),
            variables=params.get("variables"),
            operation_name=params.get("operationName"),
            extensions=params.get("extensions"),
            protocol="http",
        )

    async def process_result(self, request: web.Request, result: Any) -> Any:
        """A request error (nothing ran: parse, validation, variable coercion) has no `data` entry
        under the draft's media type, and makes its answer a 400 (see _in_media_type)."""
        body = await super().process_result(request, result)
        if result.errors and result.data is None and all(error.path is None for error in result.errors):
            _REQUEST_ERROR.set(True)
            if _MEDIA.get() == graphql_http.GRAPHQL_RESPONSE:
                body.pop("data", None)
        return body

    # ------------------------------------------------------------ WebSocket limits and accounting (ops)

    def admit_websocket(self, request: web.Request) -> web.Response | None:
        """For a WebSocket handshake: count it against its client address (the one behind
        TRUSTED_PROXIES, as rate limits see it), or refuse it with HTTP 429 before the upgrade.
        None lets the handshake go on."""
        app = request.app
        if ops.SHUTTING_DOWN in app and app[ops.SHUTTING_DOWN].is_set():
            return web.json_response(_http_error("The server is shutting down.", "SERVICE_UNAVAILABLE"), status=503)
        settings = app[SETTINGS]
        address = client_address(request, settings)
        limit = settings.websocket_connections_per_address
        if self.sockets_per_address[address] >= limit:
            log.warning("refusing a WebSocket from %s: %d already open", address, self.sockets_per_address[address])
            body = _http_error(
                f"At most {limit} WebSocket connections per address; close one first.",
                ErrorCode.TOO_MANY_CONNECTIONS.value,
                limit=limit,
            )
            return web.json_response(body, status=429)
        self.sockets_per_address[address] += 1
        request[_WS_ADDRESS] = address
        return None

    def release_websocket(self, request: web.Request) -> None:
        address = request.get(_WS_ADDRESS)
        if address is not None:
            self.sockets_per_address[address] -= 1
            if self.sockets_per_address[address] <= 0:
                del self.sockets_per_address[address]
        ws = request.get(_WS_RESPONSE)
        if ws is not None:
            ops.websocket_closed(request.app, ws)

    async def create_websocket_response(self, request: web.Request, subprotocol: str | None) -> web.WebSocketResponse:
        """Strawberry's, with the incoming message size bounded (aiohttp closes with 1009 above it),
        and the socket counted as open (gauge; closed with 1001 at shutdown). No permessage-deflate:
        our messages are small, one encoding goes to many sockets, and a compressor per connection
        costs memory and CPU per send."""
        ws = web.WebSocketResponse(
            protocols=[subprotocol] if subprotocol else [],
            max_msg_size=request.app[SETTINGS].websocket_max_message_bytes,
            compress=False,
        )
        await ws.prepare(request)
        request[_WS_RESPONSE] = ws
        ops.websocket_opened(request.app, ws)
        return ws


# Room for the multipart request's other parts (operations, map, part headers) beside the image.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


def _bound_upload(request: web.Request) -> web.Response | None:
    """A multipart request (an image upload) is read whole by strawberry, with no limit of its own:
    refuse it before reading when it says it is larger than an image may be, or does not say."""
    if request.method != "POST" or not request.content_type.startswith("multipart/"):
        return None
    limit = request.app[SETTINGS].image_max_bytes
    length = request.content_length
    if length is not None and length <= limit + UPLOAD_OVERHEAD_BYTES:
        return None
    log.info("refusing an upload of %s bytes (limit %d)", length, limit)
    message = f"image: at most {limit} bytes" + ("" if length is None else f"; this request has {length}")
    body = _http_error(message + ".", ErrorCode.BAD_USER_INPUT.value, argument="image", limit=limit)
    return web.json_response(body, status=413 if length is not None else 411)


def _http_error(message: str, code: str, **extensions: object) -> dict[str, object]:
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
