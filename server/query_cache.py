"""Shared query results: one execution answers every caller that asks the same thing meanwhile.

A live page's queries (`liveStreams`, `stream(id)` with its comments) are asked by every
viewer with the same document and variables, and their answer depends on no one's identity.
Such a result is computed once and its bytes served to all who ask until the data changes:

- Only queries that select no caller-dependent field (schema/document_cache.py) and that
  were answered without errors are kept; everything else takes strawberry's path as before.
- Every write of ours moves a data version on (after commit, before the mutation's answer
  is sent): a result is served only under the version it was computed under, so a client
  always reads its own writes. With Redis the version is shared by all processes; without
  it the one embedded process holds it.
- Concurrent askers of a result being computed wait for that one execution.
- A result also serves at most QUERY_CACHE_SECONDS, which bounds how late writes made
  outside livecart (a script, psql) show. 0 turns all of this off.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from livecart.schema.document_cache import operation_type, selects_caller_fields, selects_clock_fields
from livecart.server.appkeys import REQUEST_REDIS, SETTINGS
from livecart.server.settings import Settings
from livecart.subscriptions.redis_channels import database_number

log = logging.getLogger("livecart.query_cache")

MAX_RESULTS = 1024
CACHE_HEADER = "X-Livecart-Cache"


@dataclass(slots=True)
class _Result:
    version: int
    at: float
    body: bytes


class DataVersion:
    """A number every write of ours moves on; in Redis when configured, else in this process."""

    def __init__(self, redis_client: Any | None) -> None:
        self._local = 0
        self._redis = redis_client
        if redis_client is not None:
            self._key = f"livecart:{database_number(redis_client)}:data-version"

    async def current(self) -> int | None:
        """None when it cannot be known (Redis unreachable): then nothing is served from the cache."""
        if self._redis is None:
            return self._local
        try:
            value = await self._redis.get(self._key)
            if value is None:
                # A Redis that lost its data must not count from 0 again: versions before the loss
                # would come back and name other data. Starting from the clock, they never do.
                await self._redis.set(self._key, time.time_ns(), nx=True)
                value = await self._redis.get(self._key)
            return int(value)
        except Exception as exc:  # noqa: BLE001 - any Redis trouble only turns the cache off meanwhile
            log.debug("data version unavailable: %r", exc)
            return None

    async def bump(self) -> None:
        self._local += 1
        if self._redis is not None:
            try:
                await self._redis.incr(self._key)
            except Exception as exc:  # noqa: BLE001
                # The others cannot learn of this write: they stop serving anything until the
                # version can be read again, and their results age out within QUERY_CACHE_SECONDS.
                log.warning("could not move the shared data version on: %r", exc)


class QueryCache:
    def __init__(self, version: DataVersion, max_age: float, max_results: int = MAX_RESULTS) -> None:
        self.version = version
        self.max_age = max_age
        self.max_results = max_results
        self._results: OrderedDict[tuple, _Result] = OrderedDict()
        self._computing: dict[tuple, asyncio.Future] = {}

    @staticmethod
    async def key_of(request: web.Request) -> tuple | None:
        """(query, operation name, variables) of a shareable query request, else None."""
        if request.method == "GET":
            query, name, variables = request.query.get("query"), request.query.get("operationName"), request.query.get("variables")
        elif request.method == "POST" and request.content_type == "application/json":
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                return None
            if not isinstance(body, dict):
                return None
            query, name, variables = body.get("query"), body.get("operationName"), body.get("variables")
            variables = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS) if variables is not None else None
        else:
            return None
        return QueryCache.key_for(query, name, variables)

    @staticmethod
    def key_for(query: Any, name: Any, variables: Any) -> tuple | None:
        """The key of a shareable query (see key_of), from parameters already read."""
        if variables is not None and not isinstance(variables, (bytes, str)):
            try:
                variables = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
            except TypeError:  # not encodable (a lone surrogate): not shared; the resolvers refuse it
                return None
        if not isinstance(query, str) or not (name is None or isinstance(name, str)):
            return None
        if operation_type(query, name) != "query" or selects_caller_fields(query) or selects_clock_fields(query):
            return None
        return (query, name, variables)

    async def answer(self, key: tuple, execute: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        version = await self.version.current()
        if version is None:
            return await execute()
        result = self._results.get(key)
        if result is not None and result.version == version and time.monotonic() - result.at < self.max_age:
            self._results.move_to_end(key)
            return _cached(result.body, "hit")
        flight = (key, version)
        computing = self._computing.get(flight)
        if computing is not None:
            body = await asyncio.shield(computing)
            return _cached(body, "shared") if body is not None else await execute()
        future = self._computing[flight] = asyncio.get_running_loop().create_future()
        body = None
        try:
            response = await execute()
            body = _shareable_body(response)
            if body is not None:
                self._keep(key, _Result(version, time.monotonic(), body))
                response.headers[CACHE_HEADER] = "miss"
            return response
        finally:
            del self._computing[flight]
            future.set_result(body)  # None: the waiters execute on their own

    def _keep(self, key: tuple, result: _Result) -> None:
        self._results[key] = result
        self._results.move_to_end(key)
        while len(self._results) > self.max_results:
            self._results.popitem(last=False)


def _shareable_body(response: web.StreamResponse) -> bytes | None:
    if not isinstance(response, web.Response) or response.status != 200 or response.content_type != "application/json":
        return None
    body = response.body
    if not isinstance(body, bytes):
        return None
    try:
        answer: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(answer, dict) or answer.get("errors") or "data" not in answer:
        return None
    return body


def _cached(body: bytes, how: str) -> web.Response:
    return web.Response(body=body, content_type="application/json", charset="utf-8", headers={CACHE_HEADER: how})


QUERY_CACHE = web.AppKey("query_cache", QueryCache)


class WritesMoveTheDataVersion(SchemaExtension):
    """After every mutation (over HTTP or a WebSocket), before its answer goes out."""

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        if self.execution_context.operation_type is OperationType.MUTATION:
            request = getattr(self.execution_context.context, "request", None)
            await data_changed(request.app if request is not None else None)


async def data_changed(app: web.Application | None) -> None:
    cache = app.get(QUERY_CACHE) if app is not None else None
    if cache is not None:
        await cache.version.bump()


async def query_cache_ctx(app: web.Application) -> AsyncIterator[None]:
    settings: Settings = app[SETTINGS]
    if settings.query_cache_seconds <= 0:
        yield
        return
    app[QUERY_CACHE] = QueryCache(DataVersion(app[REQUEST_REDIS]), settings.query_cache_seconds)
    yield
