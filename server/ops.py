"""Operations endpoints: /healthz (alive), /readyz (can serve: database and Redis reachable),
/metrics (Prometheus text format), and the per-app metrics they read.

Metrics live in a registry per application (no globals at import time), so a test process
with many apps never mixes their figures. With several workers each process answers for
itself: scrape each worker, or sum them (README).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import contextlib
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Iterable

from aiohttp import WSCloseCode, web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from livecart.models.errors import ErrorCode
from livecart.models.user import hash_token
from livecart.server.appkeys import BROKER, SETTINGS
from livecart.models.events import AUTH_CHANNEL

log = logging.getLogger("livecart.ops")

READY_CHECK_TIMEOUT = 2.0


class _DatabasePoolCollector:
    """Reads the asyncpg pool at scrape time (SQLite has no pool: nothing is reported)."""

    def collect(self):
        pool = _database_pool()
        if pool is None:
            return
        size, idle = pool.get_size(), pool.get_idle_size()
        family = GaugeMetricFamily("livecart_db_pool_connections", "PostgreSQL pool connections", labels=["state"])
        family.add_metric(["busy"], size - idle)
        family.add_metric(["idle"], idle)
        yield family
        yield GaugeMetricFamily("livecart_db_pool_max", "PostgreSQL pool size limit", value=pool.get_max_size())


def _database_pool():
    try:
        from tortoise import connections

        for client in connections.all():
            pool = getattr(client, "_pool", None)
            if pool is not None and hasattr(pool, "get_idle_size"):
                return pool
    except Exception:  # no Tortoise context (app starting or stopping)
        return None
    return None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "livecart_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "livecart_http_request_duration_seconds", "Time to answer an HTTP request", ["route"], registry=r
        )
        self.graphql_errors = Counter("livecart_graphql_errors", "GraphQL errors answered, by code", ["code"], registry=r)
        self.websockets = Gauge("livecart_websockets_open", "Open WebSocket connections", registry=r)
        self.subscriptions = Gauge("livecart_subscriptions_active", "Running GraphQL subscriptions", registry=r)
        self.broker_lag = Histogram(
            "livecart_broker_lag_seconds",
            "From an event's publication to its local delivery",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        r.register(_DatabasePoolCollector())

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", Metrics)
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet)


def metrics_of(app: web.Application) -> Metrics | None:
    return app.get(METRICS)


def count_graphql_errors(app: web.Application, codes: Iterable[str]) -> None:
    metrics = metrics_of(app)
    if metrics is not None:
        for code in codes:
            metrics.graphql_errors.labels(code=code or "NONE").inc()


def observe_broker_lag(app: web.Application, published_at: float) -> None:
    """For the broker: `published_at` is the publisher's time.time() carried in the event."""
    metrics = metrics_of(app)
    if metrics is not None:
        metrics.broker_lag.observe(max(0.0, time.time() - published_at))


# ---------------------------------------------------------------- endpoints

async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers. Says nothing about the database (that is /readyz).
    `pid` tells the workers of `livecart serve --workers N` apart."""
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def _database_ready() -> None:
    from tortoise import connections

    for client in connections.all():
        await client.execute_query("SELECT 1")


async def _redis_ready(url: str, cluster: bool) -> None:
    from livecart.subscriptions.redis_channels import ping, redis_client

    client = redis_client(url, cluster=cluster, socket_connect_timeout=READY_CHECK_TIMEOUT, socket_timeout=READY_CHECK_TIMEOUT)
    try:
        await ping(client)
    finally:
        await client.aclose()


async def _check(probe) -> str:
    try:
        await asyncio.wait_for(probe, READY_CHECK_TIMEOUT)
        return "ok"
    except Exception as exc:  # any failure means not ready; the reason goes to the log, not the client
        log.warning("readiness check failed: %r", exc)
        return "unavailable"


async def readyz(request: web.Request) -> web.Response:
    """Ready: database and (when configured) Redis answer; 503 otherwise, and while shutting down."""
    settings = request.app[SETTINGS]
    checks = {"database": await _check(_database_ready())}
    if settings.redis_url:
        checks["redis"] = await _check(_redis_ready(settings.redis_url, settings.redis_cluster))
    shutting_down = request.app[SHUTTING_DOWN].is_set()
    if shutting_down:
        checks["process"] = "shutting down"
    ready = not shutting_down and all(value == "ok" for value in checks.values())
    return web.json_response({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    response = web.Response(body=metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


# ---------------------------------------------------------------- graceful shutdown

def websocket_opened(app: web.Application, ws: web.WebSocketResponse) -> None:
    app[WEBSOCKETS].add(ws)
    app[METRICS].websockets.inc()


def websocket_closed(app: web.Application, ws: web.WebSocketResponse) -> None:
    expiry = ws.get(TOKEN_EXPIRY)
    if expiry is not None:
        expiry.cancel()
    app[WEBSOCKETS].discard(ws)
    app[METRICS].websockets.dec()


# Subscriptions over HTTP (server/http_stream.py): ended like sockets at shutdown and logout.
HTTP_STREAMS = web.AppKey("http_streams", weakref.WeakSet)


def stream_opened(app: web.Application, stream) -> None:
    app[HTTP_STREAMS].add(stream)


def stream_closed(app: web.Application, stream) -> None:
    app[HTTP_STREAMS].discard(stream)


async def close_websockets(app: web.Application) -> None:
    """on_shutdown: aiohttp has stopped accepting; tell every socket we are going away (1001).

    In-flight HTTP requests are then given shutdown_timeout to finish by aiohttp itself.
    """
    app[SHUTTING_DOWN].set()
    for stream in list(app[HTTP_STREAMS]):
        stream.end(ErrorCode.SERVICE_UNAVAILABLE, "The server is shutting down; subscribe again.")
    sockets = list(app[WEBSOCKETS])
    if sockets:
        log.info("shutting down: closing %d WebSocket(s) with 1001", len(sockets))
    await asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutting down") for ws in sockets),
        return_exceptions=True,
    )


# ---------------------------------------------------------------- revoked tokens

TOKEN_HASH = web.ResponseKey("token_hash", str)  # on a WebSocketResponse: the hash of the token it was opened with
TOKEN_EXPIRY = web.ResponseKey("token_expiry", asyncio.TimerHandle)  # closes it when that token expires
TOKEN_REVOKED = 4403  # the close code of a refused connection_init, now for a token revoked or expired later


def remember_socket_token(ws: web.StreamResponse | None, token: str, expires_at: dt.datetime | None = None) -> None:
    """Every authenticated socket, however it authenticated (connection_init payload or the
    upgrade request's header, either protocol): logout finds it by its token's hash, and it is
    closed with 4403 when the token expires (a timer per socket, cancelled when it closes), so
    owner-only subscriptions never outlive the login (issue 13)."""
    if not isinstance(ws, web.WebSocketResponse):
        return
    ws[TOKEN_HASH] = hash_token(token)
    if expires_at is not None:
        delay = max(0.0, (expires_at - dt.datetime.now(dt.timezone.utc)).total_seconds())
        loop = asyncio.get_running_loop()
        ws[TOKEN_EXPIRY] = loop.call_later(delay, lambda: loop.create_task(_close_expired(ws)))


async def _close_expired(ws: web.WebSocketResponse) -> None:
    if not ws.closed:
        log.info("closing a WebSocket whose token expired")
        with contextlib.suppress(Exception):
            await ws.close(code=TOKEN_REVOKED, message=b"Token expired")


async def close_revoked_sockets_ctx(app: web.Application) -> AsyncIterator[None]:
    """A connection is authenticated once, at connection_init; when its token is revoked
    (logout, on any process) it is closed, so its owner-only subscriptions end with it."""
    hub = app[BROKER].hub
    revocations = await hub.add(AUTH_CHANNEL, frozenset({"token_revoked"}))
    task = asyncio.create_task(_close_revoked_sockets(app, revocations), name="token-revocations")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    hub.remove(revocations)


async def _close_revoked_sockets(app: web.Application, revocations) -> None:
    while True:
        revoked = (await revocations.get())["token_hash"]
        for stream in list(app[HTTP_STREAMS]):
            if stream.token_hash == revoked:
                stream.end(ErrorCode.UNAUTHENTICATED, "This login has ended.")
        sockets = [ws for ws in app[WEBSOCKETS] if ws.get(TOKEN_HASH) == revoked]
        if sockets:
            log.info("closing %d WebSocket(s) whose token was revoked", len(sockets))
        await asyncio.gather(
            *(ws.close(code=TOKEN_REVOKED, message=b"Token revoked") for ws in sockets), return_exceptions=True
        )


def add_ops_routes(app: web.Application) -> None:
    app[METRICS] = Metrics()
    app[SHUTTING_DOWN] = asyncio.Event()
    app[WEBSOCKETS] = weakref.WeakSet()
    app[HTTP_STREAMS] = weakref.WeakSet()
    app.on_shutdown.append(close_websockets)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
