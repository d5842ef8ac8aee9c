"""A small GraphQL-over-HTTP client for the bench's own requests (posting comments, checks)."""
from __future__ import annotations

import aiohttp
import orjson


class GraphQLError(RuntimeError):
    def __init__(self, errors: list[dict]) -> None:
        super().__init__(errors[0].get("message", "GraphQL error"))
        self.errors = errors
        self.code = (errors[0].get("extensions") or {}).get("code")


class HttpGraphQL:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def execute(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = orjson.dumps({"query": query, "variables": variables or {}})
        async with self.session.post(self.url, data=body, headers=headers) as response:
            return orjson.loads(await response.read())

    async def data(self, query: str, variables: dict | None = None, token: str | None = None) -> dict:
        answer = await self.execute(query, variables, token)
        if answer.get("errors"):
            raise GraphQLError(answer["errors"])
        return answer["data"]


async def statement_counts(session: aiohttp.ClientSession, server_url: str) -> dict[str, int]:
    """The SQL statements the server sent so far (bench.served counts them)."""
    async with session.get(f"{server_url}/bench/statements") as response:
        return await response.json()
