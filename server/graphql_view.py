"""Strawberry's aiohttp view for GraphQL over HTTP, with our context; WebSockets are ours.

Both subscription protocols are served, graphql-transport-ws and the legacy graphql-ws, by the
real-time engine's protocol core (subscriptions/transport.py) through its aiohttp adapter
(server/ws_aiohttp.py); strawberry executes the operations. The connection_init payload
`{"authorization": "Bearer <token>"}` authenticates the whole connection; a token that names
nobody is refused (4403 on graphql-transport-ws; connection_error then close on the legacy protocol).

Every message to a WebSocket goes through a bounded per-connection queue
(subscriptions/sendqueue.py): a client that stops reading is dropped, and coalesced figures
(subscription fields fed only by coalesced events: schema/facts.py) replace their own queued value.

Limits (issue 9; settings in server/settings.py, README "Production settings"): at most
WEBSOCKET_SUBSCRIPTIONS_PER_CONNECTION operations at once per connection (the next is
answered with an error whose extensions.code is TOO_MANY_SUBSCRIPTIONS, on both protocols);
connection_init within WEBSOCKET_INIT_TIMEOUT_SECONDS or close 4408 (both protocols);
incoming messages up to WEBSOCKET_MAX_MESSAGE_BYTES or close 1009 (aiohttp's max_msg_size);
at most WEBSOCKET_CONNECTIONS_PER_ADDRESS open sockets per client address and process,
the next handshake refused with HTTP 429 before any upgrade (TOO_MANY_CONNECTIONS).
"""
from __future__ import annotations

import collections
import contextvars
import functools
import logging
import weakref
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from cross_web import HTTPException
from strawberry.types.unset import UNSET, UnsetType

from livecart.models.errors import ErrorCode
from livecart.server import graphql_http, http_stream, ops, ws_aiohttp
from livecart.server.appkeys import REQUEST_REDIS, SETTINGS
from livecart.server.pages import graphiql_page
from livecart.server.persisted import PersistedDocuments, PersistedRefusal, load_manifest
from livecart.schema.cost import MAX_RESPONSE_BYTES, response_too_large
from livecart.schema.document_cache import operation_type
from livecart.server.context import Context
from livecart.server.query_cache import CACHE_HEADER, QUERY_CACHE
from livecart.server.ratelimit import client_address
from livecart.server.settings import Settings
from livecart.subscriptions.transport import Limits

log = logging.getLogger("livecart.ws")

# The request's negotiated media type, its parameters (read once, persisted documents resolved)
# and whether it failed before running: set per request task by LivecartGraphQLView.run_http.
_MEDIA: contextvars.ContextVar[str | None] = contextvars.ContextVar("livecart_media", default=None)
_PARAMS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("livecart_params", default=None)
_REQUEST_ERROR: contextvars.ContextVar[bool] = contextvars.ContextVar("livecart_request_error", default=False)

_WS_ADDRESS = web.RequestKey("livecart.ws_address", str)  # counted against its address while open
_WS_RESPONSE = web.RequestKey("livecart.ws_response", web.WebSocketResponse)  # counted as open


class LivecartGraphQLView(GraphQLView):
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
        self.connections: weakref.WeakSet[ws_aiohttp.Connection] = weakref.WeakSet()  # open WebSockets
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
            return await ws_aiohttp.serve(self, request, self.websocket_limits())
        finally:
            self.release_websocket(request)

    def websocket_limits(self) -> Limits:
        keepalive = self.keep_alive_interval if self.keep_alive and self.keep_alive_interval else 0.0
        return Limits(
            init_timeout=self.connection_init_wait_timeout.total_seconds(),
            max_operations=self.max_subscriptions_per_connection,
            keepalive=float(keepalive),
        )

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
