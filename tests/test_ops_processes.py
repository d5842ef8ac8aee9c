"""Operations on real `livecart serve` processes: SIGTERM closes WebSockets with 1001, lets a request
in flight finish and exits 0; `--workers N` answers from N processes on one port and stops them all
on SIGTERM. The process helpers are tests/processes.py's."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import urllib.request

import aiohttp
import pytest

from livecart.client.livecart_client import LivecartClient
from tests.conftest import SERVICES_MISSING, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.realtime_support import VIEWERS, WAIT, next_of
from tests.processes import (  # noqa: F401 - fixtures
    LIVECART, ROOT, Ports, database, seller_with_live_stream, servers,
)

PORTS = Ports(18200, 18299)  # this suite's range; each server takes the next free one
needs_services = pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL), reason=SERVICES_MISSING)


def pid_of(url: str) -> int:
    """The pid of the process that answers one new connection."""
    with urllib.request.urlopen(urllib.request.Request(f"{url}/healthz", headers={"Connection": "close"}), timeout=5) as r:
        return json.loads(r.read())["pid"]


def exited(process: subprocess.Popen, timeout: float = 20) -> int:
    """The process's exit status; bounded so that a hang fails instead of blocking."""
    return process.wait(timeout)


async def test_sigterm_closes_websockets_with_1001_and_exits_0(servers, tmp_path):
    url = servers.start(f"sqlite://{tmp_path / 'livecart.sqlite3'}", LOG_FORMAT="json")
    process = servers.process_of(url)
    async with LivecartClient(url) as seller, aiohttp.ClientSession() as session:
        stream, _ = await seller_with_live_stream(seller)
        ws = await session.ws_connect(f"{url}/graphql", protocols=["graphql-transport-ws"], heartbeat=None)
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=WAIT))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": VIEWERS, "variables": {"s": stream}}})
        assert (await ws.receive_json(timeout=WAIT))["type"] == "next"

        process.send_signal(signal.SIGTERM)
        message = await ws.receive(timeout=WAIT)
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1001, message
        assert await asyncio.to_thread(exited, process) == 0
    # It stopped accepting: nothing answers on its port any more.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/healthz", timeout=2)

    # LOG_FORMAT=json: after the banner, one JSON object per line; each request logged once, with its id.
    banner, *lines = servers.log_of(url).splitlines()
    assert banner.startswith("livecart: serving GraphQL")
    entries = [json.loads(line) for line in lines]
    posts = [e for e in entries if e["logger"] == "livecart.access" and e["message"].startswith("POST /graphql")]
    assert posts and all(len(e["request_id"]) == 32 for e in posts)
    assert not [e for e in entries if e["logger"] == "aiohttp.access"]
    assert any("closing 1 WebSocket(s) with 1001" in e["message"] for e in entries)


async def test_sigterm_lets_a_request_in_flight_finish(servers, tmp_path):
    """A mutation still running when SIGTERM comes (here: waiting for a database lock the test holds)
    is answered in full; meanwhile new connections are refused; then the process exits 0."""
    path = tmp_path / "livecart.sqlite3"
    url = servers.start(f"sqlite://{path}")
    process = servers.process_of(url)
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the server's write waits for it (SQLite's busy timeout is 5 s)
    async with aiohttp.ClientSession() as session:
        register = asyncio.ensure_future(session.post(f"{url}/graphql", json={
            "query": 'mutation { register(username: "late", password: "correct horse") { user { username } } }'
        }))
        await asyncio.sleep(1.0)  # the request is in the server, its handler waiting on the lock
        assert not register.done()
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert process.poll() is None, "the process exited with a request in flight"
        with pytest.raises(OSError):  # it stopped accepting
            urllib.request.urlopen(f"{url}/healthz", timeout=2)
        lock.execute("COMMIT")
        response = await asyncio.wait_for(register, WAIT)
        assert response.status == 200
        assert await response.json() == {"data": {"register": {"user": {"username": "late"}}}}
    lock.close()
    assert await asyncio.to_thread(exited, process) == 0


@pytest.mark.parametrize(
    "env, needs",
    [
        ({"DATABASE_URL": "sqlite://./var/never.sqlite3", "REDIS_URL": "redis://127.0.0.1:6379/5"}, "PostgreSQL"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/never", "REDIS_URL": ""}, "REDIS_URL"),
    ],
    ids=["sqlite", "no-redis"],
)
def test_several_workers_are_refused_without_postgres_and_redis(env, needs):
    done = subprocess.run(
        [LIVECART, "serve", "--workers", "2", "--port", str(PORTS.take())],
        env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livecart: ") and needs in lines[0], done.stderr


@needs_services
async def test_workers_share_one_port_and_stop_together_on_sigterm(servers, database):
    url = servers.start(database, TEST_REDIS_URL, args=("--workers", "2"))
    supervisor = servers.process_of(url)
    pids: set[int] = set()
    # The kernel spreads new connections over the workers listening; the first to answer
    # /healthz may be alone for a while, until the other has opened its database and bound.
    deadline = asyncio.get_running_loop().time() + 30
    while len(pids) < 2 and asyncio.get_running_loop().time() < deadline:
        pids.add(await asyncio.to_thread(pid_of, url))
        await asyncio.sleep(0.02)
    assert len(pids) == 2, f"only {pids} answered"
    assert supervisor.pid not in pids

    # Requests and a subscription are served through the shared port.
    async with LivecartClient(url) as seller:
        stream, _ = await seller_with_live_stream(seller)
        async with LivecartClient(url) as viewer:
            connection = await viewer.connect()
            assert (await next_of(await connection.start(VIEWERS, {"s": stream})))["viewerCount"]["count"] == 0
            await connection.close()

    supervisor.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(exited, supervisor) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # every worker is gone (and reaped) too
