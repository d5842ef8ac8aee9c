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

from livecart.client.livecart_client import LivecartClient
from livecart.server.app import create_app
from tests.processes import Ports, servers  # noqa: F401 - the fixture
from tests.realtime_support import COMMENTS, base_url, listening, live_stream, next_of, until
from tests.support import GraphQLClient, make_vendor, register

PORTS = Ports(19400, 19449)  # the served process and the OTLP receiver

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


async def test_a_served_process_exports_its_spans_over_otlp(settings, servers):
    """`livecart serve` with TRACING=on and OTEL_EXPORTER_OTLP_ENDPOINT: the spans of one mutation
    reach an OTLP/HTTP receiver (a thread of this test) as one trace."""
    import http.server
    import threading

    import aiohttp
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[ExportTraceServiceRequest] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append(request)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", PORTS.take()), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        base = servers.start(
            settings.database_url, settings.redis_url, TRACING="on",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_address[1]}", OTEL_BSP_SCHEDULE_DELAY="100",
        )
        async with aiohttp.ClientSession(base_url=base) as http_session:
            client = GraphQLClient(http_session)
            await client.data(
                "mutation Join($u: String!, $p: String!) { register(username: $u, password: $p) { token } }",
                {"u": "traced", "p": "correct horse"},
            )

        def spans():
            return [
                (resource.resource, span)
                for request in received for resource in request.resource_spans
                for scope in resource.scope_spans for span in scope.spans
            ]

        # The request's span ends after the operation's: the batch exporter may send it in a later
        # batch, so wait for both (the assertions below are about one trace, not one batch).
        await until(lambda: {"mutation Join", "POST /graphql"} <= {span.name for _, span in spans()}, timeout=20)
        found = spans()
        [operation] = [span for _, span in found if span.name == "mutation Join"]
        trace = [span for _, span in found if span.trace_id == operation.trace_id]
        names = {span.name for span in trace}
        assert "POST /graphql" in names and "resolve Mutation.register" in names and "INSERT" in names, names
        service = {a.key: a.value.string_value for resource, _ in found for a in resource.attributes}
        assert service["service.name"] == "livecart"
    finally:
        receiver.shutdown()
