"""Strawberry's aiohttp view with our context."""
from __future__ import annotations

from aiohttp import web
from strawberry.aiohttp.views import GraphQLView

from server.context import Context


class LivecartGraphQLView(GraphQLView):
    async def get_context(self, request: web.Request, response: web.StreamResponse | web.WebSocketResponse) -> Context:
        return Context(request, response)
