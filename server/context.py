"""The one request context every resolver sees: settings, broker, caller and loaders."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any

from aiohttp import web
from strawberry.dataloader import DataLoader

from models.errors import DomainError, ErrorCode
from models.user import User, token_record
from server.appkeys import BROKER, SETTINGS

_UNRESOLVED = object()

BatchLoad = Callable[[Sequence[Any]], Awaitable[Sequence[Any]]]

# A WebSocket's Context lives as long as the connection, so its loaders would serve
# stale rows to later events. Each subscription event opens a fresh loader scope
# (new_loader_scope); it is task-local, so one operation's scope never leaks into another's.
_event_loaders: ContextVar[dict | None] = ContextVar("livecart_event_loaders", default=None)


def new_loader_scope() -> None:
    """Give the rest of this operation's current event fresh DataLoaders."""
    _event_loaders.set({})


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
        # Fields of one answer resolve concurrently: they share the first one's lookup, and all
        # wake in the same loop turn, so the DataLoaders they call next still batch together.
        if self._user_lookup is not None:
            return await asyncio.shield(self._user_lookup)
        lookup = self._user_lookup = asyncio.get_running_loop().create_future()
        try:
            token = self.token
            record = await token_record(token) if token else None
            self._user = record.user if record else None
            self.token_expires_at = record.expires_at if record else None
            lookup.set_result(self._user)
        except asyncio.CancelledError:
            lookup.cancel()
            raise
        except Exception as error:
            lookup.set_exception(error)
            lookup.exception()  # the first caller raises it; waiters, if any, get it too
            raise
        finally:
            self._user_lookup = None
        return self._user

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
        loaders = _event_loaders.get()
        if loaders is None:
            loaders = self._loaders
        loader = loaders.get(batch_load)
        if loader is None:
            loader = loaders[batch_load] = DataLoader(load_fn=batch_load)
        return loader
