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

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="the bench runs on PostgreSQL: set TEST_DATABASE_URL")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
