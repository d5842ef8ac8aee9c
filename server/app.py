"""The aiohttp application factory: resources are opened and closed in cleanup_ctx."""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from schema import build_schema
from server import db
from server.appkeys import BROKER, SETTINGS
from server.graphql_view import LivecartGraphQLView
from server.pages import add_page_routes
from server.settings import Settings
from subscriptions.broker import create_broker

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
    broker = create_broker(app[SETTINGS])  # Redis when REDIS_URL is set
    app[BROKER] = broker
    await broker.start()
    yield
    await broker.close()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([database_ctx, broker_ctx])
    view = LivecartGraphQLView(schema=build_schema(), graphql_ide="graphiql")
    app.router.add_route("*", "/graphql", view)
    app.router.add_get("/healthz", healthz)
    add_page_routes(app)  # the web pages of client/
    return app
