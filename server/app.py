"""The aiohttp application factory: resources are opened and closed in cleanup_ctx."""
from __future__ import annotations

import functools
import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from livecart.schema import build_schema
from livecart.server import db, middleware, ops, tracing
from livecart.server.appkeys import BROKER, REQUEST_REDIS, SETTINGS
from livecart.server.graphql_view import LivecartGraphQLView
from livecart.server.ingest import add_ingest_routes
from livecart.server.pages import add_page_routes
from livecart.server.query_cache import WritesMoveTheDataVersion, query_cache_ctx
from livecart.server.ratelimit import ratelimit_ctx
from livecart.server.settings import Settings
from livecart.server.sweeper import clock_sweeper_ctx, event_pruner_ctx, viewer_sweeper_ctx
from livecart.server.whip import add_whip_routes
from livecart.subscriptions.broker import create_broker
from livecart.subscriptions.redis_channels import redis_client
from livecart.subscriptions.relay import Relay

log = logging.getLogger("livecart")


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.is_sqlite:
        # The embedded default needs no separate step: it migrates itself.
        await db.migrate(settings)
    await db.open_database(settings)
    yield
    await db.close_database()


async def broker_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    broker = create_broker(
        settings.redis_url, cluster=settings.redis_cluster, share_events=settings.subscription_sharing,
        exit_before_publish=settings.fault_exit_before_publish,
    )  # Redis when REDIS_URL is set
    app[BROKER] = broker
    if hasattr(broker, "lag_observer"):  # Redis: each event's trip through Redis feeds the lag histogram
        broker.lag_observer = functools.partial(ops.observe_broker_lag, app)
    await broker.start()
    relay = Relay(broker.hub)  # logged events once each, in order; what was never published, from the log
    relay.start()
    yield
    await relay.close()
    await broker.close()


async def request_redis_ctx(app: web.Application) -> AsyncIterator[None]:
    client = None
    settings = app[SETTINGS]
    if settings.redis_url:
        # Short timeouts: nothing on a request's way may hold it long while Redis is away. On a
        # cluster each command goes to the node owning its key (the rate limiter's script has one).
        client = redis_client(
            settings.redis_url, cluster=settings.redis_cluster, socket_connect_timeout=0.5, socket_timeout=0.5
        )
    app[REQUEST_REDIS] = client
    yield
    if client is not None:
        await client.aclose()


# The collector's thresholds: Python's young generations (700, 10), and a full collection after 1,000
# of the middle generation's instead of 10. A large document keeps tens of thousands of objects alive
# while it runs, all freed when it ends; the young collections move them to the oldest generation,
# and as the frozen start-up heap does not count there, Python's rule (a full collection once the
# oldest grew by a quarter) called one or two a second under a stream of such documents,
# each a block of 25 to 90 ms walking every object in flight (bench/cost.py, issue 13). Young
# collections stay small (a few ms at most); larger young generations were tried and made them
# longer, as each then freed more garbage in cycles (graphql-core's validation visitors).
GC_THRESHOLDS = (700, 10, 1000)


async def freeze_startup_heap(app: web.Application) -> None:
    """What start-up built (the schema, graphql-core's types, the models, the pages) lives as
    long as the process: moved out of the garbage collector's view, a full collection no longer
    walks it, which on a busy server stalled the event loop (and every request) for tens of ms.
    For a process that serves one app (`livecart serve`): frozen objects are never collected, so
    a process that makes app after app (the tests) must not. The same goes for the collector's
    thresholds (GC_THRESHOLDS above)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([database_ctx, broker_ctx, viewer_sweeper_ctx, clock_sweeper_ctx])  # the sweepers need both
    app.cleanup_ctx.append(ops.close_revoked_sockets_ctx)  # needs the broker
    app.cleanup_ctx.append(event_pruner_ctx)  # the event log's retention (issue 15)
    app.cleanup_ctx.extend([request_redis_ctx, ratelimit_ctx, query_cache_ctx])  # the last two use the first
    middleware.install(app)
    tracing.install(app, settings)  # TRACING=on only
    view = LivecartGraphQLView(
        schema=build_schema(settings, extensions=[WritesMoveTheDataVersion]),
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        allowed_origins=settings.cors_origin_list,  # cross-site WebSocket handshakes
        settings=settings,  # the WebSocket limits
        multipart_uploads_enabled=True,  # product images (setProductImage), bounded by IMAGE_MAX_BYTES
    )
    app.router.add_route("*", "/graphql", view)
    ops.add_ops_routes(app)  # /healthz, /readyz, /metrics, graceful shutdown
    add_page_routes(app)  # the web pages of client/
    add_ingest_routes(app)  # nginx-rtmp's hooks, and HLS and recordings from MEDIA_DIR
    add_whip_routes(app)  # going live from a browser (needs the database and broker above)
    return app
