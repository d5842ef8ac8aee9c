"""The one request context every resolver sees: settings, broker, caller and loaders (it implements
resolvers/context.py's RequestContext, the resolvers' and schema's view of it)."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from strawberry.dataloader import DataLoader

from livecart.models.errors import DomainError, ErrorCode
from livecart.models.user import User, token_record
from livecart.resolvers.loaders import BatchLoad, ShieldedLoader, event_loaders
from livecart.server.appkeys import BROKER, SETTINGS
from livecart.server.middleware import REQUEST_ID
from livecart.server.ops import count_graphql_errors
from livecart.server.ratelimit import RATE_LIMITER, client_address

_UNRESOLVED = object()


def _retrieve_exception(task: asyncio.Future) -> None:
    """Marks a failed lookup's error as seen: every caller may have been cancelled before it came."""
    if not task.cancelled():
        task.exception()

class Context:
    """Built once per HTTP request, or once per WebSocket connection."""

    def __init__(self, request: web.Request, response: web.StreamResponse | None = None) -> None:
        self.request = request
        self.response = response
        self.settings = request.app[SETTINGS]
        self.broker = request.app[BROKER]
        # Set by strawberry from the WebSocket connection_init payload.
        self.connection_params: dict[str, Any] | None = None
        self._user: Any = _UNRESOLVED
        self.token_expires_at: Any = None  # when the caller's token ends (set with the user)
        self._user_lookup: asyncio.Future | None = None
        self._loaders: dict[BatchLoad, DataLoader] = {}

    @property
    def token(self) -> str | None:
        """The bearer token: on a WebSocket, connection_init's payload's, else (either protocol, no
        authorization in the payload) the upgrade request's header, as over HTTP. A browser cannot
        set that header on a WebSocket, so a page of another site cannot borrow it."""
        header = None
        if isinstance(self.connection_params, dict):
            header = self.connection_params.get("authorization") or self.connection_params.get("Authorization")
        if header is None:
            header = self.request.headers.get("Authorization")
        if not isinstance(header, str):
            return None
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    async def user(self) -> User | None:
        if self._user is not _UNRESOLVED:
            return self._user
        # Fields of one answer resolve concurrently: they share one lookup, and all wake in the
        # same loop turn, so the DataLoaders they call next still batch together. The lookup is a
        # task of its own: graphql-core cancels a field's siblings when an error nulls their parent,
        # and the field that happened to start the lookup must not take it down for the others
        # (its CancelledError would escape the execution and drop the connection).
        if self._user_lookup is None:
            self._user_lookup = asyncio.ensure_future(self._look_up_user())
            self._user_lookup.add_done_callback(_retrieve_exception)
        return await asyncio.shield(self._user_lookup)

    async def _look_up_user(self) -> User | None:
        try:
            token = self.token
            record = await token_record(token) if token else None
            self._user = record.user if record else None
            self.token_expires_at = record.expires_at if record else None
            return self._user
        finally:
            self._user_lookup = None  # a failed lookup is tried again by the next caller

    def forget_user(self) -> None:
        self._user = _UNRESOLVED

    async def require_user(self, return_path: str | None = None) -> User:
        user = await self.user()
        if user is None:
            raise DomainError(
                ErrorCode.UNAUTHENTICATED,
                "Log in first.",
                loginUrl=self.settings.login_url_for(return_path),
            )
        return user

    def loader(self, batch_load: BatchLoad) -> DataLoader:
        """The request's (or the subscription event's) DataLoader for this batch function, made on first use."""
        loaders = event_loaders()
        if loaders is None:
            loaders = self._loaders
        loader = loaders.get(batch_load)
        if loader is None:
            loader = loaders[batch_load] = ShieldedLoader(DataLoader(load_fn=batch_load))
        return loader

    # ------------------------------------------------ what the schema and resolvers ask of the request

    @property
    def rate_limiter(self) -> Any:
        return self.request.app[RATE_LIMITER]

    @property
    def client_address(self) -> str:
        return client_address(self.request, self.settings)

    @property
    def request_id(self) -> str | None:
        return self.request.get(REQUEST_ID)

    def count_errors(self, codes: list[str]) -> None:
        count_graphql_errors(self.request.app, codes)
