"""Subscriptions over HTTP, beside the WebSocket transport: GraphQL over SSE (the graphql-sse
protocol, distinct connections mode) and multipart subscriptions (Apollo's
`multipart/mixed;subscriptionSpec="1.0"`), both on `/graphql`, chosen by the Accept header.

A stream is one operation on one response. It gets what a WebSocket operation gets: the
caller from the `Authorization` header (a token that names nobody is refused 401 before
anything starts), the same resolvers and owner checks, the per-address connection limit
(counted with the WebSockets: WEBSOCKET_CONNECTIONS_PER_ADDRESS), and the shared path
(subscriptions/shared.py): after its first result, events reach it as the group's one
encoding, framed for this stream. Heartbeats (HTTP_STREAM_HEARTBEAT_SECONDS) keep proxies
from closing a quiet stream, and a client that went away is noticed within a second or at
the next write: its operation ends and, with Redis, the channel is released with it.
A logout of its token (on any process), the token's expiry and shutdown end it: an error
with extensions.code (UNAUTHENTICATED, SERVICE_UNAVAILABLE), then the end of the stream. Queries and mutations may be sent the same
way (one result, then complete), as graphql-sse's clients do.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import orjson
from aiohttp import web
from graphql import GraphQLError, validate
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from livecart.models.errors import ErrorCode
from livecart.models.user import hash_token, token_expires_at, utcnow
from livecart.schema.document_cache import operation_type, parsed
from livecart.schema.internals import graphql_schema
from livecart.schema.extensions import UNAVAILABLE_MESSAGE, UNAVAILABLE_RETRY_AFTER, is_unavailable
from livecart.server import ops
from livecart.server.appkeys import SETTINGS
from livecart.server.graphql_http import EVENT_STREAM
from livecart.subscriptions.shared import Operation, current_operation

log = logging.getLogger("livecart.http_stream")

SEND_QUEUE_BYTES = 1 << 20
CHECK_SECONDS = 1.0  # how often a quiet stream looks whether its client is still there
BOUNDARY = "graphql"


class SSEFormat:
    media = EVENT_STREAM
    headers = {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",  # nginx: pass events on at once
    }
    opening = b""
    frame = (b"event: next\ndata: ", b"\n\n")

    def complete(self) -> bytes:
        return b"event: complete\ndata: \n\n"

    def heartbeat(self) -> bytes:
        return b": ping\n\n"

    def failure(self, errors: list[dict]) -> bytes:
        prefix, suffix = self.frame
        return prefix + orjson.dumps({"errors": errors}) + suffix


class MultipartFormat:
    """Apollo's multipart subscriptions: every part a JSON object; results under `payload`,
    a fatal transport error as `{"payload": null, "errors": [...]}`, heartbeats `{}`."""

    media = "multipart/mixed"
    headers = {
        "Content-Type": f'multipart/mixed; boundary="{BOUNDARY}"; subscriptionSpec="1.0"',
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",
    }
    opening = f"\r\n--{BOUNDARY}".encode()
    _part = b"\r\nContent-Type: application/json; charset=utf-8\r\n\r\n"
    frame = (_part + b'{"payload":', b"}\r\n--" + BOUNDARY.encode())

    def complete(self) -> bytes:
        return b"--\r\n"  # closes the last boundary: --graphql--

    def heartbeat(self) -> bytes:
        return self._part + b"{}\r\n--" + BOUNDARY.encode()

    def failure(self, errors: list[dict]) -> bytes:
        return self._part + orjson.dumps({"payload": None, "errors": errors}) + b"\r\n--" + BOUNDARY.encode()


class HTTPStream:
    """One response's outgoing frames: queued without blocking (the hub's groups send from their
    own tasks) and written in order by one writer; a client that stops reading is dropped."""

    def __init__(self, request: web.Request, response: web.StreamResponse, fmt: Any, token: str | None) -> None:
        self.request = request
        self.response = response
        self.format = fmt
        self.token_hash = hash_token(token) if token else None
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._wakeup = asyncio.Event()
        self.last_write = time.monotonic()
        self.ended: asyncio.Event = asyncio.Event()
        self.end_errors: list[dict] | None = None
        self.gone = False

    def send_encoded(self, message: Any, data: bytes) -> None:
        self.send(data)

    def send(self, data: bytes) -> None:
        if self.gone or self.ended.is_set():
            return
        if self._queued + len(data) > SEND_QUEUE_BYTES:
            log.warning("ending an HTTP stream whose client stopped reading (%d bytes queued)", self._queued)
            self.gone = True
            self.ended.set()
            if self.request.transport is not None:
                self.request.transport.abort()
            return
        self._queue.append(data)
        self._queued += len(data)
        self._wakeup.set()

    def end(self, code: ErrorCode, message: str) -> None:
        """From outside (logout, shutdown): an error with its code, then the end of the stream."""
        if not self.ended.is_set():
            self.end_errors = [{"message": message, "extensions": {"code": code.value}}]
            self.ended.set()

    def finish(self, data: bytes) -> None:
        """The last frames, queued even after the stream was ended (send refuses them then)."""
        self._queue.append(data)
        self._queued += len(data)
        self._wakeup.set()

    def client_gone(self) -> bool:
        transport = self.request.transport
        return self.gone or transport is None or transport.is_closing()

    async def write_forever(self) -> None:
        try:
            while True:
                while self._queue:
                    data = self._queue.popleft()
                    self._queued -= len(data)
                    await self.response.write(data)
                    self.last_write = time.monotonic()
                self._wakeup.clear()
                await self._wakeup.wait()
        except (ConnectionError, RuntimeError):
            self.gone = True
            self.ended.set()

    async def drain(self, timeout: float = 1.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while self._queue and not self.gone:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pass


async def serve(view: Any, request: web.Request, params: dict[str, Any], media: str, refuse: Any) -> web.StreamResponse:
    """Answer one operation as a stream. `refuse(status, message, code, **extensions)` makes the
    view's JSON error response (for what is refused before the stream starts)."""
    app = request.app
    settings = app[SETTINGS]
    fmt = SSEFormat() if media == EVENT_STREAM else MultipartFormat()
    query, name, variables = params.get("query"), params.get("operationName"), params.get("variables")
    if not isinstance(query, str) or not query:
        return refuse(400, "No GraphQL query found in the request", ErrorCode.BAD_USER_INPUT.value)
    kind = operation_type(query, name)
    if kind == "mutation" and request.method == "GET":
        return refuse(405, "Mutations are only sent with POST.", ErrorCode.BAD_USER_INPUT.value, headers={"Allow": "POST"})

    context = await view.get_context(request, None)
    expires_at = None
    if request.headers.get("Authorization"):
        try:
            user = await context.user()
            expires_at = await token_expires_at(context.token) if user is not None else None
        except Exception as exc:  # noqa: BLE001 - the database or Redis is away: say so, as queries do
            if not is_unavailable(exc):
                raise
            return refuse(503, UNAVAILABLE_MESSAGE, ErrorCode.SERVICE_UNAVAILABLE.value, retryAfter=UNAVAILABLE_RETRY_AFTER)
        if user is None or expires_at is None:
            return refuse(401, "Invalid or expired token.", ErrorCode.UNAUTHENTICATED.value)

    refusal = view.admit_websocket(request)  # the same per-address count as sockets
    if refusal is not None:
        return refusal
    try:
        return await _stream(view, request, context, fmt, query, name, variables, kind, settings, expires_at)
    finally:
        view.release_websocket(request)


async def _stream(view, request, context, fmt, query, name, variables, kind, settings, expires_at) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers=fmt.headers)
    stream = HTTPStream(request, response, fmt, context.token)
    context.response = response
    current_operation.set(Operation(stream.send_encoded, "", "next", query, name, variables, frame=fmt.frame))

    def frame(result: Any) -> bytes:
        body: dict[str, Any] = {}
        if result.data is not None or not result.errors:
            body["data"] = result.data
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        prefix, suffix = fmt.frame
        return prefix + orjson.dumps(body) + suffix

    # A document that does not parse or validate is refused before the stream starts (400), as
    # graphql-sse's reference server does; what fails later (variables, the resolver's checks)
    # comes as a result with errors, then complete.
    try:
        errors = validate(graphql_schema(view.schema), parsed(query))
    except GraphQLError as error:
        errors = [error]
    if errors:
        for error in errors:
            error.extensions = {**(error.extensions or {}), "code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value}
        return view.error_response([error.formatted for error in errors], 400)

    await response.prepare(request)
    ops.stream_opened(request.app, stream)
    metrics = ops.metrics_of(request.app)
    if metrics is not None:
        metrics.subscriptions.inc()
    writer = asyncio.get_running_loop().create_task(stream.write_forever())
    if fmt.opening:
        stream.send(fmt.opening)
    results: Any = None

    async def rest() -> None:
        nonlocal results
        if kind in ("query", "mutation"):
            result = await view.schema.execute(
                query, variable_values=variables, context_value=context, operation_name=name,
                allowed_operation_types={OperationType.QUERY, OperationType.MUTATION},
            )
            stream.send(frame(result))
            return
        results = await view.schema.subscribe(query, variable_values=variables, context_value=context, operation_name=name)
        async for result in results:
            stream.send(frame(result))
            if isinstance(result, PreExecutionError):
                return

    loop = asyncio.get_running_loop()
    expiry = None
    if expires_at is not None:  # the login lapses: the stream ends as a logout would end it
        expiry = loop.call_later(
            max(0.0, (expires_at - utcnow()).total_seconds()), stream.end, ErrorCode.UNAUTHENTICATED, "This login has expired."
        )
    consumer = loop.create_task(rest())
    ended = loop.create_task(stream.ended.wait())
    heartbeat = settings.http_stream_heartbeat_seconds
    try:
        while True:
            await asyncio.wait({consumer, ended}, timeout=min(CHECK_SECONDS, heartbeat), return_when=asyncio.FIRST_COMPLETED)
            if consumer.done() or ended.done() or stream.client_gone():
                break
            if time.monotonic() - stream.last_write >= heartbeat:
                stream.send(fmt.heartbeat())
        if consumer.done() and not consumer.cancelled() and consumer.exception() is not None:
            log.error("a subscription over HTTP failed", exc_info=consumer.exception())
            stream.end_errors = [{"message": "Internal server error.", "extensions": {"code": ErrorCode.INTERNAL_SERVER_ERROR.value}}]
    finally:
        ended.cancel()
        if expiry is not None:
            expiry.cancel()
        if not consumer.done():
            consumer.cancel()
            try:
                await consumer
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - ended from outside: nothing to report
                pass
        if results is not None:
            await results.aclose()
        ops.stream_closed(request.app, stream)
        if metrics is not None:
            metrics.subscriptions.dec()
        if not stream.client_gone():
            if stream.end_errors:
                stream.finish(fmt.failure(stream.end_errors))
            stream.finish(fmt.complete())
            await stream.drain()
        writer.cancel()
        try:
            if not stream.client_gone():
                await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
    return response


__all__ = ["serve", "HTTPStream"]
