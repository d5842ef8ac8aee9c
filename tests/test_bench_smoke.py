"""The bench harness end to end at a tiny size: a real `livecart serve`, subscribers in worker
processes, comments through the API, the report written. It asserts what was delivered, never
how fast (speed lives in bench/REPORT.md)."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest

from bench import fanout
from bench.__main__ import LOAD_TEST_ENV
from bench.procs import livecart_server
from bench.report import SHARED, Results, write
from bench.seed import seed

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")

needs_postgres = pytest.mark.skipif(not TEST_DATABASE_URL, reason="the bench runs on PostgreSQL: set TEST_DATABASE_URL")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@needs_postgres
def test_fanout_delivers_every_comment_to_every_subscriber_and_reports_it(tmp_path):
    # A database of its own next to the suite's, which the bench resets and fills.
    database_url = f"{TEST_DATABASE_URL}_bench"
    seeded = asyncio.run(seed(database_url, vendors=2, commenters=2, buyers=2, comments=5))
    server = livecart_server("smoke", free_port(), database_url, None, tmp_path, LOAD_TEST_ENV)
    with server:
        run = asyncio.run(fanout.fanout(server, seeded, SHARED, 20, comments=3, interval=0.2, processes=2,
                                        burst_comments=2, drain_timeout=30))

    assert run.connected == 20 and run.connect_failed == 0
    assert run.steady.expected == 60
    assert run.steady.delivered == 60, run.steady.errors
    assert len(run.steady.latencies_ms) == 60
    assert run.burst.delivered == 40
    assert run.steady.statements.get("insert", 0) >= 3  # the server's statement counter saw the comments

    report = tmp_path / "REPORT.md"
    write(Results(command="pytest", fanout=[run]), report)
    text = report.read_text()
    assert "| livecart | 20 | 20 | 60/60 |" in text
    assert "## 6. Memory per idle subscriber" in text


def test_the_live_page_bench_sends_the_pages_own_documents():
    from bench import pagedocs

    stream = pagedocs.live("STREAM")
    assert "myReaction" in stream and "featuredProducts(first: 100) { id name" in stream  # splices filled in
    assert pagedocs.live("SUB_COMMENTS").startswith("subscription(") and "eventCursor" in pagedocs.live("SUB_COMMENTS")
    assert "eventCursor" in pagedocs.dashboard("SUB_STATS") and "eventCursor" in pagedocs.dashboard("SUB_ORDERS")


def test_a_coalesced_message_covers_every_event_of_its_kind_since_the_last_and_the_rest_are_missed():
    import base64

    from bench.livepage import EventLog, Step, latencies
    from bench.loadgen import Connection, Subscription

    def cursor(stream: int, seq: int) -> str:
        return base64.urlsafe_b64encode(f"ev1:{stream}:{seq}:abcd".encode()).decode().rstrip("=")

    # Stream 7's events 1-5: reactions at t=10.0, 10.1, 10.2 and 10.4, a comment at 10.3.
    log = EventLog({7: [1, 2, 3, 4, 5]}, {7: ["reactions", "reactions", "reactions", "comment", "reactions"]},
                   {7: [10.0, 10.1, 10.2, 10.3, 10.4]})
    viewer = Connection("ws://x", "t", (Subscription("reactionsChanged", "q", {"s": "7"}, "reactionsChanged"),))
    # One message standing at event 3 (it covers 1-3), received at t=10.5; nothing for event 5.
    received = [(0, "reactionsChanged", cursor(7, 3), 10.5)]
    step = Step(processes=1, comments_per_second=0)
    families: dict[str, set[str]] = {}
    latencies(step, received, log, [viewer], families)

    assert families == {"reactionsChanged": {"reactions"}}  # learned from the cursor the message names
    assert [round(ms) for ms in step.latencies_ms["reactionsChanged"]] == [500, 400, 300]
    assert step.missed["reactionsChanged"] == 1  # event 5 (the comment is another subscription's)
    assert step.p99("reactionsChanged") == float("inf")
