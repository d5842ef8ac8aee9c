"""Polling against push: the SQL statements per second each design costs at 10,000 viewers.

Polling, as the seed designed it: every viewer asks for the viewer count and the comments
every 10 s; the seller asks for the stats (with viewers, comments and orders) every 5 s.
The statements one such poll costs are measured on livecart's own server (its queries
batch with DataLoaders, so this is the cheapest polling could be) and multiplied by the
rate. Push is measured, not multiplied: the statements the server sent while 10,000
subscribers received one comment a second, less those the postComment mutations sent
(which polling pays too: a comment is written in both designs).
"""
from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bench.gql import HttpGraphQL, statement_counts

VIEWER_POLL = (
    "query Poll($id: ID!) { stream(id: $id) { id viewerCount"
    " comments(limit: 50) { id text createdAt author { id username } } } }"
)
SELLER_POLL = (
    "query Stats($id: ID!) { stream(id: $id) { id"
    " stats { viewerCount uniqueViewers peakViewers likes dislikes comments orders itemsSold revenue durationSeconds }"
    " activeViewers { id joinedAt user { id username } }"
    " comments(limit: 50) { id text createdAt author { id username } }"
    " orders { id quantity amount createdAt product { id name } buyer { id username } } } }"
)
VIEWERS = 10_000
VIEWER_INTERVAL = 10.0
SELLER_INTERVAL = 5.0
# The seed's PHP endpoints, statement by statement (seed architecture, "Polling Strategy"):
# viewers.php?action=count is one SELECT COUNT(*); interact.php get_comments one SELECT with the
# users joined; stats.php checks ownership (1), reads the stats with joins (1), the active
# viewers (1), the comments (1) and the orders (1).
SEED_VIEWER_STATEMENTS = 2
SEED_SELLER_STATEMENTS = 5


@dataclass
class PollCost:
    viewer_poll_statements: float = 0.0
    seller_poll_statements: float = 0.0
    post_comment_statements: float = 0.0
    error: str = ""

    @property
    def livecart_polling_per_second(self) -> float:
        return VIEWERS / VIEWER_INTERVAL * self.viewer_poll_statements + self.seller_poll_statements / SELLER_INTERVAL

    @staticmethod
    def seed_polling_per_second() -> float:
        return VIEWERS / VIEWER_INTERVAL * SEED_VIEWER_STATEMENTS + SEED_SELLER_STATEMENTS / SELLER_INTERVAL


async def statements_per_call(session, server_url: str, call, times: int) -> float:
    before = (await statement_counts(session, server_url)).get("total", 0)
    for _ in range(times):
        await call()
    after = (await statement_counts(session, server_url)).get("total", 0)
    return (after - before) / times


async def measure_poll_cost(server_url: str, stream_id: int, seller_token: str, commenter_token: str,
                            times: int = 50) -> PollCost:
    """Statements per viewer poll, per seller poll and per postComment, on an idle server."""
    cost = PollCost()
    async with aiohttp.ClientSession() as session:
        api = HttpGraphQL(session, f"{server_url}/graphql")
        variables = {"id": str(stream_id)}
        from bench.fanout import POST_COMMENT

        measurements = (
            ("viewer_poll_statements", lambda: api.data(VIEWER_POLL, variables), times),
            ("seller_poll_statements", lambda: api.data(SELLER_POLL, variables, token=seller_token), times),
            ("post_comment_statements", lambda: api.data(
                POST_COMMENT, {"s": str(stream_id), "t": "poll-cost probe"}, token=commenter_token), 10),
        )
        errors = []
        for name, call, count in measurements:
            try:
                setattr(cost, name, await statements_per_call(session, server_url, call, count))
            except Exception as exc:  # noqa: BLE001 - an API that has not landed is reported, not fatal
                errors.append(f"{name.replace('_', ' ')}: {type(exc).__name__}: {exc}"[:200])
        cost.error = "; ".join(errors)
    return cost
