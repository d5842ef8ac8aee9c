"""Clients nobody here wrote, end to end (issue 16): graphql-http's audit of GraphQL over HTTP,
the graphql-ws reference client, graphql-sse's client, Apollo Client (HTTP, WebSocket,
PersistedQueryLink, a multipart subscription), and Python's gql on both WebSocket protocols.

Every subscription here is viewerCount: its first result is the count now; the client then
joins the stream through its own transport and waits for the count to move, which reaches it
by the shared delivery path (subscriptions/shared.py)."""
from __future__ import annotations

import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.node_tools import json_lines, node, run_node  # noqa: F401 - the fixture
from tests.realtime_support import base_url, live_stream
from tests.support import make_vendor

STREAM = "query($id: ID!) { stream(id: $id) { id title } }"
VIEWERS = "subscription($s: ID!) { viewerCount(streamId: $s) { count } }"
JOIN = "mutation($s: ID!) { joinStream(streamId: $s) { id } }"


async def test_graphql_http_audit_passes_every_must_and_should(client, node):
    code, out, err = await run_node(node, "audit.mjs", base_url(client) + "/graphql")
    assert code == 0, out + err
    assert "0 MUST/SHOULD not met" in out
    assert "FAIL" not in out


@pytest.mark.parametrize("scenario", ["graphql-ws", "graphql-sse", "apollo", "apollo-multipart"])
async def test_a_third_party_client_queries_subscribes_and_hears_the_shared_result(client, node, scenario):
    seller = await make_vendor(client)
    stream = await live_stream(seller, title="Third parties")
    code, out, err = await run_node(node, "clients.mjs", base_url(client), scenario, str(stream.id))
    assert code == 0, out + err
    lines = json_lines(out)
    counts = [line["value"]["viewerCount"]["count"] for line in lines if line["what"] == "next"]
    assert counts == [0, 1], lines
    queries = [line["value"] for line in lines if line["what"] == "query"]
    for answer in queries:
        assert (answer.get("data") or answer)["stream"]["title"] == "Third parties"
    if scenario == "apollo-multipart":
        [requests] = [line["value"] for line in lines if line["what"] == "requests"]
        assert requests[0]["accept"].startswith("multipart/mixed") and requests[0]["status"] == 200


async def test_apollo_persisted_query_link_registers_then_gets_by_hash(client, node):
    seller = await make_vendor(client)
    stream = await live_stream(seller, title="Hashed")
    code, out, err = await run_node(node, "clients.mjs", base_url(client), "apollo-persisted", str(stream.id))
    assert code == 0, out + err
    lines = json_lines(out)
    assert [line["value"]["stream"]["title"] for line in lines if line["what"] == "query"] == ["Hashed", "Hashed"]
    [requests] = [line["value"] for line in lines if line["what"] == "requests"]
    # The hash alone (unknown: PERSISTED_QUERY_NOT_FOUND, 200), the query with its hash, then the hash alone again.
    assert [(r["method"], r["status"]) for r in requests] == [("GET", 200), ("POST", 200), ("GET", 200)]
    assert "query" not in requests[2]["url"].split("?", 1)[1].split("&")[0]
    assert '"query"' in requests[1]["body"]


@pytest.mark.parametrize("subprotocol", [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL])
async def test_python_gql_queries_mutates_and_subscribes_on_both_websocket_protocols(client, subprotocol):
    seller = await make_vendor(client)
    stream = await live_stream(seller, title="Over gql")
    url = base_url(client).replace("http", "ws", 1) + "/graphql"
    transport = WebsocketsTransport(url=url, subprotocols=[subprotocol])
    async with Client(transport=transport) as session:
        # A query (and then a mutation) over the socket: on the legacy protocol too.
        answer = await session.execute(GraphQLRequest(STREAM, variable_values={"id": str(stream.id)}))
        assert answer == {"stream": {"id": str(stream.id), "title": "Over gql"}}
        counts = []
        async for result in session.subscribe(GraphQLRequest(VIEWERS, variable_values={"s": str(stream.id)})):
            counts.append(result["viewerCount"]["count"])
            if len(counts) == 1:
                joined = await session.execute(GraphQLRequest(JOIN, variable_values={"s": str(stream.id)}))
                assert joined["joinStream"]["id"]
            else:
                break
    assert counts == [0, 1]
