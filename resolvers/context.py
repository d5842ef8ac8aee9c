"""What resolvers (and the schema's extensions) may ask of `info.context`: the request's caller,
loaders, broker, settings values, rate limiter and request id. server/context.py's Context
implements it for HTTP requests and WebSocket connections; nothing here knows aiohttp."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from livecart.models.user import User


class RequestContext(Protocol):
    settings: Any  # the served Settings: resolvers read values (token_ttl_seconds, media_dir, ...)
    broker: Any  # subscriptions.broker.Broker: mutations publish after commit

    async def user(self) -> User | None: ...

    async def require_user(self, return_path: str | None = None) -> User: ...

    def forget_user(self) -> None: ...

    def loader(self, batch_load: Callable[[Sequence[Any]], Awaitable[Sequence[Any]]]) -> Any: ...

    @property
    def rate_limiter(self) -> Any: ...  # resolvers.ratelimit.RateLimiter

    @property
    def client_address(self) -> str: ...

    @property
    def request_id(self) -> str | None: ...

    def count_errors(self, codes: list[str]) -> None: ...
