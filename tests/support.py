"""What tests share: a GraphQL client over aiohttp's test client, accounts, query counting."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


# ---------------------------------------------------------------- the app

@dataclass
class GraphQLClient:
    """Posts GraphQL through aiohttp's test client (strawberry's drops headers)."""

    http: Any
    token: str | None = None

    async def execute(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        headers = {}
        bearer = token if token is not None else self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        assert response.status in (200, 400), await response.text()
        return await response.json()

    async def data(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        """The data of an answer that must have no errors."""
        body = await self.execute(query, variables, token)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    async def error(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        """The single error of an answer that must fail."""
        body = await self.execute(query, variables, token)
        assert body.get("errors"), body
        assert len(body["errors"]) == 1, body["errors"]
        return body["errors"][0]

    def as_user(self, token: str) -> "GraphQLClient":
        return GraphQLClient(self.http, token)


# ---------------------------------------------------------------- helpers

REGISTER = "mutation($u: String!, $p: String!) { register(username: $u, password: $p) { token user { id } } }"


@dataclass
class Account:
    id: int
    username: str
    token: str
    vendor_id: int | None = None
    product_ids: list[int] = field(default_factory=list)


async def register(client: GraphQLClient, username: str, password: str = "correct horse") -> Account:
    data = await client.data(REGISTER, {"u": username, "p": password})
    return Account(int(data["register"]["user"]["id"]), username, data["register"]["token"])


async def make_vendor(client: GraphQLClient, username: str = "seller", products: int = 2, price: str = "10.00", stock: int = 10) -> Account:
    account = await register(client, username)
    data = await client.data("mutation { becomeVendor(name: \"Shop\") { id } }", token=account.token)
    account.vendor_id = int(data["becomeVendor"]["id"])
    for i in range(products):
        data = await client.data(
            "mutation($n: String!, $p: Decimal!, $s: Int!) { createProduct(name: $n, price: $p, stock: $s) { id } }",
            {"n": f"Product {i}", "p": price, "s": stock},
            token=account.token,
        )
        account.product_ids.append(int(data["createProduct"]["id"]))
    return account


# The app's own periodic tasks (server/sweeper.py, subscriptions/relay.py): what they read runs on
# their clock, not because of the block being counted, and once landed inside a count on a slow run.
BACKGROUND_TASKS = frozenset({
    "viewer-sweeper", "clock-timers", "clock-sweeper", "clock-timer-sweep", "event-pruner", "livecart-relay",
})


def _in_background_task() -> bool:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        return False
    return task is not None and task.get_name() in BACKGROUND_TASKS


@contextmanager
def count_queries() -> Iterator[list[str]]:
    """The SQL statements Tortoise sends while the block runs, but for the app's periodic tasks'."""
    statements: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if not _in_background_task():
                statements.append(record.getMessage())

    logger = logging.getLogger("tortoise.db_client")
    handler, level = Collect(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield statements
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
