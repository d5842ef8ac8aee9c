"""Rate limits: a sliding window per (limit, key), shared through Redis when REDIS_URL is set
so every worker and process counts together; in-process otherwise.

Resolvers call one line, e.g. `await ratelimit.hit(info, ratelimit.COMMENT, user.id, stream_id)`;
over the limit it raises RATE_LIMITED with extensions.retryAfter (whole seconds).
If Redis cannot be reached the check falls back to this process's own window: a Redis
outage must not stop comments or logins, and it still bounds one process's abuse.
"""
from __future__ import annotations

import collections
import ipaddress
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from models.errors import DomainError, ErrorCode
from server.appkeys import REQUEST_REDIS, SETTINGS
from server.settings import Settings

log = logging.getLogger("livecart.ratelimit")


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_seconds: int
    message: str


COMMENT = Limit("comment", 5, 10, "Too many comments on this stream; wait a moment.")
LOGIN_USERNAME = Limit("login-username", 10, 300, "Too many login attempts for this account; try again later.")
LOGIN_ADDRESS = Limit("login-address", 30, 300, "Too many login attempts from your address; try again later.")
REGISTER_ADDRESS = Limit("register-address", 20, 3600, "Too many accounts created from your address; try again later.")
# Issue 13: anyone may become a vendor and add products, and each product lengthens lists
# everyone can read: counted per address like registering.
VENDOR_ADDRESS = Limit("vendor-address", 20, 3600, "Too many seller profiles created from your address; try again later.")
PRODUCT_ADDRESS = Limit("product-address", 100, 3600, "Too many products created from your address; try again later.")
# Generous: a shop's audience may share one address (carrier NAT, offices).
JOIN_ADDRESS = Limit("join-address", 120, 60, "Too many stream joins from your address; wait a moment.")


class InProcessWindows:
    """Timestamps of recent hits per key; the oldest tells how long until a slot frees."""

    SWEEP_EVERY = 1000

    def __init__(self) -> None:
        self._hits: dict[str, collections.deque[float]] = {}
        self._calls = 0

    def hit(self, key: str, limit: Limit) -> float:
        """Records a hit and returns 0, or returns the seconds to wait (nothing recorded)."""
        now = time.monotonic()
        window = self._hits.setdefault(key, collections.deque())
        while window and window[0] <= now - limit.window_seconds:
            window.popleft()
        self._maybe_sweep(now)
        if len(window) < limit.count:
            window.append(now)
            return 0.0
        return window[0] + limit.window_seconds - now

    def _maybe_sweep(self, now: float) -> None:
        # Keys of callers who went away would otherwise stay forever.
        self._calls += 1
        if self._calls % self.SWEEP_EVERY:
            return
        longest = 3600
        for key in [k for k, w in self._hits.items() if not w or w[-1] <= now - longest]:
            del self._hits[key]


# Sliding log in a sorted set, atomically; TIME is Redis's clock, so every process agrees.
_REDIS_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""


class RateLimiter:
    def __init__(self, settings: Settings, redis_client: Any | None = None) -> None:
        self.enabled = settings.rate_limits
        self._local = InProcessWindows()
        self._redis = redis_client
        self._script = redis_client.register_script(_REDIS_HIT) if redis_client is not None else None

    async def wait_seconds(self, limit: Limit, key: str) -> float:
        """0 when the hit is allowed (and counted), else the seconds until it would be."""
        if not self.enabled:
            return 0.0
        full_key = f"livecart:ratelimit:{limit.name}:{key}"
        if self._script is not None:
            try:
                waited_ms = await self._script(keys=[full_key], args=[limit.count, limit.window_seconds * 1000, uuid.uuid4().hex])
                return max(0.0, float(waited_ms) / 1000)
            except Exception as exc:  # Redis down or slow: fall back, never fail the caller's request
                log.warning("rate limit via Redis failed, counting in-process: %r", exc)
        return self._local.hit(full_key, limit)

    async def check(self, limit: Limit, *key_parts: Any) -> None:
        wait = await self.wait_seconds(limit, ":".join(str(part) for part in key_parts))
        if wait > 0:
            raise DomainError(ErrorCode.RATE_LIMITED, limit.message, retryAfter=max(1, math.ceil(wait)))


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)


async def ratelimit_ctx(app: web.Application) -> AsyncIterator[None]:
    app[RATE_LIMITER] = RateLimiter(app[SETTINGS], app[REQUEST_REDIS])
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


# ---------------------------------------------------------------- the one-line hooks

async def hit(info, limit: Limit, *key_parts: Any) -> None:
    """Counts a hit for the caller's key (e.g. user and stream); RATE_LIMITED when over."""
    await info.context.request.app[RATE_LIMITER].check(limit, *key_parts)


async def hit_address(info, limit: Limit) -> None:
    """Counts a hit for the caller's address."""
    request = info.context.request
    await request.app[RATE_LIMITER].check(limit, client_address(request, request.app[SETTINGS]))
