"""Query limits: each answered with its code before anything runs; production hides what
development shows (introspection, GraphiQL, field suggestions); crashes are masked with a
request id the client can quote."""
from __future__ import annotations

import logging

import strawberry
from aiohttp import web

from livecart.models.errors import DomainError, ErrorCode
from livecart.schema.extensions import INTERNAL_MESSAGE, ErrorCodes, LivecartSchema
from livecart.schema.limits import MAX_ALIASES, MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_LIST_ITEMS, MAX_TOKENS
from livecart.server import middleware, ops
from livecart.server.app import create_app
from livecart.server.appkeys import BROKER, SETTINGS
from livecart.server.graphql_view import LivecartGraphQLView
from livecart.subscriptions.broker import InProcessBroker
from tests.support import GraphQLClient, make_vendor


def nested_products(levels: int) -> str:
    """`products { vendor { products { ... { id } } } }` with `levels` fields that have selections
    (pages of one product: only the depth is over, not the cost, schema/cost.py)."""
    fields = ["products(first: 1)", "vendor"] * levels
    query = "id"
    for name in reversed(fields[:levels]):
        query = f"{name} {{ id {query} }}"
    return "{ " + query + " }"


def assert_limit(error: dict, limit: str) -> None:
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert error["extensions"]["limit"] == limit, error


async def test_depth_up_to_the_limit_runs_and_beyond_is_refused(client):
    await make_vendor(client, products=1)
    data = await client.data(nested_products(MAX_DEPTH))
    assert data["products"][0]["vendor"]["products"][0]["id"]
    body = await client.execute(nested_products(MAX_DEPTH + 1))
    assert body["errors"] and body.get("data") is None
    for error in body["errors"]:  # one per field past the limit
        assert_limit(error, "depth")


async def test_aliases_over_the_limit_are_refused(client):
    def aliased(count: int) -> str:
        return "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(count)) + " }"

    assert (await client.data(aliased(MAX_ALIASES)))["a0"] is None
    assert_limit(await client.error(aliased(MAX_ALIASES + 1)), "aliases")


async def test_tokens_over_the_limit_are_refused_while_parsing(client):
    # Few aliases, tiny depth: only the token count is over.
    query = "{ products { " + "id " * MAX_TOKENS + "} }"
    assert_limit(await client.error(query), "tokens")


async def test_a_document_over_16_kb_is_refused(client):
    # A comment is no token, so only the size is over.
    query = "{ me { id } }\n#" + "x" * MAX_DOCUMENT_BYTES
    assert_limit(await client.error(query), "documentBytes")


async def test_list_arguments_are_bounded_written_or_as_variables(client):
    seller = await make_vendor(client, products=1)
    too_many = [str(seller.product_ids[0])] * (MAX_LIST_ITEMS + 1)
    literal = "mutation { createStream(title: \"t\", productIds: [%s]) { id } }" % ", ".join(too_many)
    error = await client.error(literal, token=seller.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "productIds"}

    variables = "mutation($ids: [ID!]!) { createStream(title: \"t\", productIds: $ids) { id } }"
    error = await client.error(variables, {"ids": too_many}, token=seller.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "$ids"}
    # Within the bound the same call works.
    assert await client.data(variables, {"ids": too_many[:2]}, token=seller.token)
    # The document is now parsed and validated once and kept: its variables are still checked.
    error = await client.error(variables, {"ids": too_many}, token=seller.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "$ids"}


async def test_kept_documents_are_answered_as_before_and_invalid_ones_stay_refused(client):
    await make_vendor(client, products=1)
    for _ in range(3):
        assert (await client.data(nested_products(MAX_DEPTH)))["products"][0]["vendor"]["products"][0]["id"]
        body = await client.execute(nested_products(MAX_DEPTH + 1))
        assert body["errors"] and body.get("data") is None
        for error in body["errors"]:
            assert_limit(error, "depth")
        error = await client.error("{ products { id nope } }")
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "nope" in error["message"]


INTROSPECTION = "{ __schema { description } }"


async def test_development_offers_introspection_graphiql_and_suggestions(client):
    assert "description" in (await client.data(INTROSPECTION))["__schema"]
    # GraphiQL's own introspection query nests deeper than 10 and still runs.
    from graphql import get_introspection_query

    assert (await client.data(get_introspection_query()))["__schema"]
    page = await client.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status == 200 and "graphiql" in (await page.text()).lower()
    assert "Did you mean" in (await client.error("{ mee { id } }"))["message"]


async def test_production_hides_introspection_graphiql_and_suggestions(aiohttp_client, settings):
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(environment="production"))))
    error = await client.error(INTROSPECTION)
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in error["message"].lower()
    page = await client.http.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in (await page.text()).lower()
    error = await client.error("{ mee { id } }")
    assert "Did you mean" not in error["message"] and error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_settings_switch_introspection_off_in_development(aiohttp_client, settings):
    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(introspection=False, graphiql=False))))
    assert (await client.error(INTROSPECTION))["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@strawberry.type
class CrashingQuery:
    @strawberry.field
    def boom(self) -> str:
        raise RuntimeError("secret detail: /etc/livecart/key")


async def test_a_crash_is_masked_with_the_request_id_the_client_can_quote(aiohttp_client, settings):
    # A schema with one field that crashes, served through our view, middleware and error extension.
    app = web.Application()
    app[SETTINGS] = settings
    app[BROKER] = InProcessBroker()
    middleware.install(app)
    ops.add_ops_routes(app)
    app.router.add_route("*", "/graphql", LivecartGraphQLView(schema=strawberry.Schema(CrashingQuery, extensions=[ErrorCodes])))
    http = await aiohttp_client(app)

    response = await http.post("/graphql", json={"query": "{ boom }"})
    body = await response.json()
    (error,) = body["errors"]
    assert error["message"] == INTERNAL_MESSAGE and "secret" not in str(body)
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == response.headers["X-Request-ID"]

    # A sane id from the client (or its proxy) is kept, so both sides quote the same one.
    response = await http.post("/graphql", json={"query": "{ boom }"}, headers={"X-Request-ID": "edge-42"})
    assert (await response.json())["errors"][0]["extensions"]["requestId"] == "edge-42"
    response = await http.post("/graphql", json={"query": "{ boom }"}, headers={"X-Request-ID": "bad id; " * 20})
    assert " " not in response.headers["X-Request-ID"]


@strawberry.type
class RefusingQuery:
    @strawberry.field
    def refused(self) -> str:
        raise DomainError(ErrorCode.FORBIDDEN, "Not yours.")

    @strawberry.field
    def boom(self) -> str:
        raise RuntimeError("secret detail: /etc/livecart/key")


def test_only_crashes_are_logged_as_errors_with_a_traceback(caplog):
    schema = LivecartSchema(RefusingQuery, extensions=[ErrorCodes])
    with caplog.at_level(logging.INFO):
        for query in ("{ refused }", "{ nope }", "{ refused"):
            assert schema.execute_sync(query).errors
    assert caplog.records, "a refusal still leaves one line"
    assert all(r.levelno < logging.WARNING and not r.exc_info for r in caplog.records), caplog.text
    assert "FORBIDDEN" in caplog.text and "Traceback" not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.INFO):
        (error,) = schema.execute_sync("{ boom }").errors
    assert error.message == INTERNAL_MESSAGE  # what the client sees is unchanged
    crashes = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert crashes and all(r.exc_info for r in crashes)
    assert "secret detail" in caplog.text  # the operator still gets the whole story
