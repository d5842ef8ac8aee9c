"""Typed keys for what the aiohttp app holds."""
from __future__ import annotations

from aiohttp import web

from livecart.server.settings import Settings
from livecart.subscriptions.broker import Broker

SETTINGS = web.AppKey("settings", Settings)
BROKER = web.AppKey("broker", Broker)
# The Redis client of the request path (rate limits, the shared data version), with short
# timeouts: None without REDIS_URL. The broker keeps its own connections.
REQUEST_REDIS = web.AppKey("request_redis", object)
