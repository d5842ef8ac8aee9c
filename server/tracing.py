"""OpenTelemetry tracing (issue 16), off unless TRACING=on.

On, a trace follows an HTTP request (its span continues an incoming W3C `traceparent`) through
the GraphQL operation and its resolvers where they do I/O (schema/tracing.py) down to each SQL
statement, and to the publish of the events it caused; each shared delivery of an event to
subscribers is a span of its own, linked to that publish (subscriptions/tracing.py), on this
process or on another one reached through Redis. WebSocket connections get no request span
(they last for hours): each operation on them starts its own trace.

Spans go to the tracer provider already installed in the process (a test's, or one set up by
an embedding program), else to a new one that exports over OTLP/HTTP when the standard
OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT names a collector
(`pip install livecart[tracing]`).
"""
from __future__ import annotations

import contextvars
import functools
import logging
import os
from typing import Any

from aiohttp import web

from livecart.server.settings import Settings
from livecart.subscriptions import tracing

log = logging.getLogger("livecart.tracing")

_in_statement: contextvars.ContextVar[bool] = contextvars.ContextVar("livecart_in_sql_span", default=False)
_STATEMENT_METHODS = ("execute_insert", "execute_query", "execute_many", "execute_script", "execute_query_dict")


def install(app: web.Application, settings: Settings) -> None:
    if not settings.tracing:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "livecart")}))
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    tracing.enable(provider.get_tracer("livecart"))
    _trace_statements()
    app.middlewares.insert(0, trace_requests)  # outermost: the request span holds everything else

    async def stop_tracing(app: web.Application) -> None:
        tracing.enable(None)  # the SQL and broker hooks are process-wide: quiet once this app is gone

    app.on_cleanup.append(stop_tracing)


@web.middleware
async def trace_requests(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await handler(request)
    from opentelemetry import context, propagate

    route = request.match_info.route.resource.canonical if request.match_info.route.resource else request.path
    token = context.attach(propagate.extract(request.headers))
    try:
        with tracing.span(
            f"{request.method} {route}", kind="SERVER",
            http__request__method=request.method, url__path=request.path, http__route=route,
        ) as span:
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            return response
    finally:
        context.detach(token)


def _trace_statements() -> None:
    """Each SQL statement Tortoise sends, as a client span (the innermost method only: the
    transaction clients call their parents' methods)."""
    from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
    from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionWrapper

    for cls, system in ((AsyncpgDBClient, "postgresql"), (TransactionWrapper, "postgresql"),
                        (SqliteClient, "sqlite"), (SqliteTransactionWrapper, "sqlite")):
        for name in _STATEMENT_METHODS:
            method = cls.__dict__.get(name)
            if method is None or getattr(method, "_livecart_traced", False):
                continue
            setattr(cls, name, _traced_statement(method, system))


def _traced_statement(method: Any, system: str) -> Any:
    @functools.wraps(method)
    async def traced(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if _in_statement.get() or not tracing.enabled():
            return await method(self, query, *args, **kwargs)
        operation = query.lstrip().split(None, 1)[0].upper() if query.strip() else "SQL"
        token = _in_statement.set(True)
        try:
            with tracing.span(
                operation, kind="CLIENT", db__system__name=system, db__operation__name=operation, db__query__text=query,
            ):
                return await method(self, query, *args, **kwargs)
        finally:
            _in_statement.reset(token)

    traced._livecart_traced = True  # type: ignore[attr-defined]
    return traced
