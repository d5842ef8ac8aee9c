"""Typed keys for what the aiohttp app holds."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from livecart.server.settings import Settings

if TYPE_CHECKING:
    # Only the type: importing the broker (and with it the hub and shared execution) here made
    # server/context -> appkeys -> broker -> hub -> shared -> server/context a runtime cycle.
    from livecart.subscriptions.broker import Broker

SETTINGS = web.AppKey("settings", Settings)
BROKER: web.AppKey[Broker] = web.AppKey("broker")
# The Redis client of the request path (rate limits, the shared data version), with short
# timeouts: None without REDIS_URL. The broker keeps its own connections.
REQUEST_REDIS = web.AppKey("request_redis", object)
