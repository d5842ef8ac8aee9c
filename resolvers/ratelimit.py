"""Rate limits: a sliding window per (limit, key), shared through Redis when REDIS_URL is set
so every worker and process counts together; in-process otherwise.

Resolvers call one line, e.g. `await ratelimit.hit(info, ratelimit.COMMENT, user.id, stream_id)`;
over the limit it raises RATE_LIMITED with extensions.retryAfter (whole seconds). The rules and the
counting live here, below server/; server/ratelimit.py only makes the limiter for the app and tells
the caller's address (the request context hands both over: `rate_limiter`, `client_address`).
If Redis cannot be reached the check falls back to this process's own window: a Redis
outage must not stop comments or logins, and it still bounds one process's abuse.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from livecart.models.errors import DomainError, ErrorCode

log = logging.getLogger("livecart.ratelimit")


@dataclass(frozen=True)
class Limit:
    name: str
    count: int
    window_seconds: int
    message: str


COMMENT = Limit("comment", 5, 10, "Too many comments on this stream; wait a moment.")
# Failed logins (issue 13), counted per (folded username, address) and per address: a stranger's
# wrong passwords fill only the stranger's windows, so the owner, from an address that has not
# failed, still logs in. A login that succeeds takes its own attempt back out of both windows.
LOGIN_USERNAME = Limit("login-failures", 10, 300, "Too many failed logins for this account from your address; try again later.")
LOGIN_ADDRESS = Limit("login-address-failures", 30, 300, "Too many failed logins from your address; try again later.")
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

    def forgive(self, key: str, stamp: float) -> None:
        window = self._hits.get(key)
        if window is not None and stamp in window:
            window.remove(stamp)

    def hit(self, key: str, limit: Limit) -> float:
        """Records a hit and returns 0, or returns the seconds to wait (nothing recorded)."""
        return self.hit_stamped(key, limit)[0]

    def hit_stamped(self, key: str, limit: Limit) -> tuple[float, float]:
        """hit(), and the recorded hit's stamp (for forgive)."""
        now = time.monotonic()
        window = self._hits.setdefault(key, collections.deque())
        while window and window[0] <= now - limit.window_seconds:
            window.popleft()
        self._maybe_sweep(now)
        if len(window) < limit.count:
            window.append(now)
            return 0.0, now
        return window[0] + limit.window_seconds - now, now

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
    def __init__(self, redis_client: Any | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled  # RATE_LIMITS=off only for load tests run from one address
        self._local = InProcessWindows()
        self._redis = redis_client
        self._script = redis_client.register_script(_REDIS_HIT) if redis_client is not None else None

    async def wait_seconds(self, limit: Limit, key: str) -> float:
        """0 when the hit is allowed (and counted), else the seconds until it would be."""
        return (await self._hit(limit, key))[0]

    async def _hit(self, limit: Limit, key: str) -> tuple[float, Any]:
        """(seconds to wait, or 0 when counted; what names the counted hit for forgive)."""
        if not self.enabled:
            return 0.0, None
        full_key = f"livecart:ratelimit:{limit.name}:{key}"
        if self._script is not None:
            member = uuid.uuid4().hex
            try:
                waited_ms = await self._script(keys=[full_key], args=[limit.count, limit.window_seconds * 1000, member])
                return max(0.0, float(waited_ms) / 1000), ("redis", full_key, member)
            except Exception as exc:  # Redis down or slow: fall back, never fail the caller's request
                log.warning("rate limit via Redis failed, counting in-process: %r", exc)
        wait, stamp = self._local.hit_stamped(full_key, limit)
        return wait, ("local", full_key, stamp)

    async def check(self, limit: Limit, *key_parts: Any) -> Any:
        """Counts a hit, or raises RATE_LIMITED; returns what forgive() needs to take it back."""
        wait, counted = await self._hit(limit, ":".join(str(part) for part in key_parts))
        if wait > 0:
            raise DomainError(ErrorCode.RATE_LIMITED, limit.message, retryAfter=max(1, math.ceil(wait)))
        return counted

    async def forgive(self, counted: Any) -> None:
        """Takes a counted hit back out of its window (a login that turned out right)."""
        if counted is None:
            return
        where, full_key, member = counted
        if where == "local":
            self._local.forgive(full_key, member)
            return
        try:
            await self._redis.zrem(full_key, member)
        except Exception as exc:  # the hit then simply stays counted until its window passes
            log.warning("rate limit via Redis failed, leaving a counted login: %r", exc)


# ---------------------------------------------------------------- the one-line hooks

async def hit(info, limit: Limit, *key_parts: Any) -> None:
    """Counts a hit for the caller's key (e.g. user and stream); RATE_LIMITED when over."""
    await info.context.rate_limiter.check(limit, *key_parts)


@contextlib.asynccontextmanager
async def login_attempt(info, folded_username: str) -> AsyncIterator[None]:
    """Counts a login as failed per (username, address) and per address before the password is
    checked (so concurrent guesses cannot all slip past the count), then takes it back when the
    login succeeds: only failures stay counted."""
    limiter = info.context.rate_limiter
    address = info.context.client_address
    by_address = await limiter.check(LOGIN_ADDRESS, address)
    try:
        by_account = await limiter.check(LOGIN_USERNAME, folded_username[:128], address)
    except DomainError:
        await limiter.forgive(by_address)  # refused before any password was tried
        raise
    try:
        yield
    except DomainError as refusal:
        if refusal.code is not ErrorCode.UNAUTHENTICATED:
            await limiter.forgive(by_address)
            await limiter.forgive(by_account)
        raise
    else:
        await limiter.forgive(by_address)
        await limiter.forgive(by_account)


async def hit_address(info, limit: Limit) -> None:
    """Counts a hit for the caller's address."""
    await info.context.rate_limiter.check(limit, info.context.client_address)
