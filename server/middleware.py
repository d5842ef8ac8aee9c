"""HTTP middleware: request ids, CORS from an allow-list, security headers, access logs and metrics.

Every response carries X-Request-ID (the client's, when it sent a sane one, else ours); the same
id is in the logs and in masked GraphQL errors, so a client can quote it.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid

from aiohttp import hdrs, web

from livecart.server.appkeys import SETTINGS
from livecart.server.ops import metrics_of
from livecart.server.settings import Settings

log = logging.getLogger("livecart.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
REQUEST_ID = web.RequestKey("request_id", str)
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Pages (GraphiQL, the web client) may load only what the site itself serves.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# GraphiQL (a development tool, off in production unless GRAPHIQL=on) is built from a CDN
# with inline scripts; it gets exactly that and nothing more.
GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://unpkg.com; "
    "style-src 'self' 'unsafe-inline' https://unpkg.com; img-src 'self' data:; font-src 'self' data: https://unpkg.com; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
# Answers that are data, not pages: nothing to load, never framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_ALLOW_METHODS = "GET, POST, OPTIONS"
CORS_MAX_AGE = "600"


def request_id_of(request: web.Request) -> str:
    supplied = request.headers.get(REQUEST_ID_HEADER, "")
    return supplied if _SANE_REQUEST_ID.match(supplied) else uuid.uuid4().hex


def _route_name(request: web.Request) -> str:
    """The route's pattern, never the raw path: unknown paths must not grow the metric's labels."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _allowed_origin(settings: Settings, origin: str | None) -> str | None:
    if not origin:
        return None
    allowed = settings.cors_origin_list
    if "*" in allowed or origin.rstrip("/") in allowed:
        return origin
    return None


def _apply_cors(response: web.StreamResponse, origin: str | None) -> None:
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = REQUEST_ID_HEADER
    response.headers.add(hdrs.VARY, "Origin")


def _content_security_policy(request: web.Request, response: web.StreamResponse) -> str:
    if not (response.content_type or "").startswith("text/html"):
        return API_CSP
    return GRAPHIQL_CSP if request.path == "/graphql" else PAGE_CSP


def _apply_security_headers(settings: Settings, request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", _content_security_policy(request, response))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if settings.public_url.startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def _preflight(settings: Settings, request: web.Request) -> web.Response:
    origin = _allowed_origin(settings, request.headers.get(hdrs.ORIGIN))
    if origin is None:
        return web.Response(status=403, text="Origin not allowed")
    response = web.Response(status=204)
    _apply_cors(response, origin)
    response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


def _internal_error(request_id: str) -> web.Response:
    body = {"errors": [{"message": "Internal server error.", "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}]}
    return web.json_response(body, status=500)


@web.middleware
async def hardening_middleware(request: web.Request, handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        if request.method == hdrs.METH_OPTIONS and request.headers.get("Access-Control-Request-Method"):
            response = _preflight(settings, request)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
            except Exception:
                # aiohttp would answer a bare 500; ours is JSON with the id, the traceback stays in the log.
                log.exception("unhandled error (request %s)", request_id)
                response = _internal_error(request_id)
        status = response.status
        if not response.prepared:
            # A WebSocket (or a streamed answer) has sent its headers already.
            response.headers[REQUEST_ID_HEADER] = request_id
            _apply_cors(response, _allowed_origin(settings, request.headers.get(hdrs.ORIGIN)))
            _apply_security_headers(settings, request, response)
        if isinstance(response, web.HTTPException):
            raise response
        return response
    finally:
        _observe(request, status, time.perf_counter() - started)
        request_id_var.reset(token)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers for answers sent before the middleware sees them (WebSocket handshakes, streams)."""
    if REQUEST_ID_HEADER in response.headers or REQUEST_ID not in request:
        return
    response.headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
    _apply_security_headers(request.app[SETTINGS], request, response)


def _observe(request: web.Request, status: int, seconds: float) -> None:
    route = _route_name(request)
    metrics = metrics_of(request.app)
    if metrics is not None and not _is_websocket(request):
        metrics.requests.labels(method=request.method, route=route, status=str(status)).inc()
        metrics.request_seconds.labels(route=route).observe(seconds)
    log.info(
        "%s %s %s %.1fms",
        request.method,
        request.path,
        status,
        seconds * 1000,
        extra={"request_id": request[REQUEST_ID], "status": status, "duration_ms": round(seconds * 1000, 1)},
    )


# ---------------------------------------------------------------- logging

class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when the record comes from a request."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # Tortoise logs "Tortoise-ORM shutdown" at INFO whenever a connection set closes (the start-up
    # migration does): it reads as if the server stopped. Its warnings and errors still show.
    logging.getLogger("tortoise").setLevel(logging.WARNING)


def install(app: web.Application) -> None:
    app.middlewares.append(hardening_middleware)
    app.on_response_prepare.append(on_response_prepare)
