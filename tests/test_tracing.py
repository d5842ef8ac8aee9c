"""OpenTelemetry (issue 16), read back with the SDK's in-memory exporter: one mutation's trace
from the HTTP request through the operation and its resolver to SQL and the publish of its
event, and the delivery of that event to subscribers as a span of its own linked to it."""
from __future__ import annotations

import asyncio

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from client.livecart_client import LivecartClient
from server.app import create_app
from tests.realtime_support import COMMENTS, base_url, listening, live_stream, next_of, until
from tests.support import GraphQLClient, make_vendor, register

SAY = "mutation Say($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"


@pytest.fixture(scope="module")
def exporter():
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_a_mutation_is_traced_from_request_to_sql_and_its_delivery_is_linked(aiohttp_client, settings, exporter):
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(tracing=True))))
    seller = await make_vendor(client)
    ann = await register(client, "ann")
    stream = await live_stream(seller)
    async with LivecartClient(base_url(client)) as viewer:
        comments = viewer.subscribe(COMMENTS, {"s": str(stream.id)})
        first = asyncio.ensure_future(next_of(comments))
        await listening(client, stream.id)
        await client.data(SAY, {"s": str(stream.id), "t": "first"}, token=ann.token)
        assert (await first)["commentAdded"]["text"] == "first"  # the subscriber is now on the shared path
        exporter.clear()
        await client.data(SAY, {"s": str(stream.id), "t": "traced"}, token=ann.token)
        assert (await next_of(comments))["commentAdded"]["text"] == "traced"
        spans = await until(lambda: (s := exporter.get_finished_spans()) and any(x.name == "deliver comment_added" for x in s) and s)
        await comments.aclose()

    by_id = {span.context.span_id: span for span in spans}

    def parent(span):
        return by_id.get(span.parent.span_id) if span.parent else None

    def ancestors(span):
        while (span := parent(span)) is not None:
            yield span

    [request] = [s for s in spans if s.name == "POST /graphql" and s.kind == SpanKind.SERVER]
    [operation] = [s for s in spans if s.name == "mutation Say"]
    assert operation.attributes["graphql.operation.type"] == "mutation"
    assert operation.attributes["graphql.operation.name"] == "Say"
    assert parent(operation) is request
    [resolver] = [s for s in spans if s.name == "resolve Mutation.postComment"]
    assert operation in ancestors(resolver)
    statements = [s for s in spans if s.kind == SpanKind.CLIENT and "db.query.text" in s.attributes and request in ancestors(s)]
    assert any(s.name == "INSERT" for s in statements), [s.name for s in statements]
    assert all(s.attributes["db.system.name"] in ("sqlite", "postgresql") for s in statements)
    [publish] = [s for s in spans if s.name == f"publish stream:{stream.id}" and request in ancestors(s)]
    assert publish.kind == SpanKind.PRODUCER and resolver in ancestors(publish)

    [delivery] = [s for s in spans if s.name == "deliver comment_added"]
    assert delivery.kind == SpanKind.CONSUMER
    assert delivery.context.trace_id != request.context.trace_id  # a trace of its own...
    assert [link.context.span_id for link in delivery.links] == [publish.context.span_id]  # ...linked to the publish
    # Its own reads (the comment, for the subscribers' one execution) are its children.
    assert any(delivery in ancestors(s) for s in spans if s.kind == SpanKind.CLIENT)


async def test_tracing_is_off_by_default(client, exporter):
    exporter.clear()
    await client.data("{ liveStreams { id } }")
    assert exporter.get_finished_spans() == ()
