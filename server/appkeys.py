"""Typed keys for what the aiohttp app holds."""
from __future__ import annotations

from aiohttp import web

from server.settings import Settings
from subscriptions.broker import Broker

SETTINGS = web.AppKey("settings", Settings)
BROKER = web.AppKey("broker", Broker)
