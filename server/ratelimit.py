"""Rate limits' aiohttp wiring: the app's limiter (shared through Redis when REDIS_URL is set) and
the caller's address. The rules, windows and the resolvers' hooks are in resolvers/ratelimit.py."""
from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

from aiohttp import web

from livecart.resolvers.ratelimit import RateLimiter
from livecart.server.appkeys import REQUEST_REDIS, SETTINGS
from livecart.server.settings import Settings

RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)


async def ratelimit_ctx(app: web.Application) -> AsyncIterator[None]:
    app[RATE_LIMITER] = RateLimiter(app[REQUEST_REDIS], enabled=app[SETTINGS].rate_limits)
    yield


# ---------------------------------------------------------------- callers' addresses

def client_address(request: web.Request, settings: Settings) -> str:
    """The peer, or, behind a trusted proxy, the nearest address the proxies saw."""
    peer = request.remote or "unknown"
    trusted = settings.trusted_proxy_list
    if not trusted or peer not in trusted:
        return peer
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    for address in reversed(forwarded):
        if address not in trusted and _is_ip(address):
            return address
    return peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
