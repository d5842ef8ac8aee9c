"""Real processes for the tests that need them: `livecart serve`, and a redis-server or a
PostgreSQL server of the test's own that it may stop and start again.

Only the tests that run with TEST_DATABASE_URL and TEST_REDIS_URL use these. Every process
started here is stopped by the fixture that started it. A test module names its own port
range (PORTS); a port that something else is already listening on is skipped.
"""
from __future__ import annotations

import glob
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

import asyncpg
import pytest
import redis as redis_sync

from livecart.client.livecart_client import LivecartClient
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, WORKER_INDEX, _flush_redis, _truncate_postgres, run_blocking
from tests.realtime_support import COMMENTS, VIEWERS, next_of

LIVECART = str(pathlib.Path(sys.executable).with_name("livecart"))
ROOT = pathlib.Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- waiting, stopping, ports

def wait_until(probe, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up in {timeout:.0f}s")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class Ports:
    """Hands out the ports of one range in turn, skipping any that are taken. Under pytest-xdist
    worker N's range is shifted by 1000 x N, so two workers never race for one port; TEST_PORT_OFFSET
    shifts it further, for two checkouts testing side by side on one machine.

    `reuse_address`: a port whose closed connections linger in TIME_WAIT counts as free, as it is
    for servers that bind with SO_REUSEADDR (redis-server, aiohttp): a module that kills its
    servers may then run again within the minute TIME_WAIT lasts."""

    def __init__(self, first: int, last: int, *, reuse_address: bool = False) -> None:
        shift = 1000 * WORKER_INDEX + int(os.environ.get("TEST_PORT_OFFSET", "0"))
        self._next, self._last = first + shift, last + shift
        self._reuse_address = reuse_address

    def take(self) -> int:
        while self._next <= self._last:
            port, self._next = self._next, self._next + 1
            with socket.socket() as probe:
                if self._reuse_address:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise RuntimeError("this test module's port range is used up")


def _ports(request) -> Ports:
    ports = getattr(request.module, "PORTS", None)
    assert isinstance(ports, Ports), f"{request.module.__name__} must define PORTS = Ports(first, last)"
    return ports


# ---------------------------------------------------------------- livecart

def migrate(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([LIVECART, "migrate"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)


class Servers:
    """start(database_url, redis_url, **env) -> the base URL of a new `livecart serve` process;
    `process_of(url)` is that process, `args` extra command-line arguments of `serve`."""

    def __init__(self, ports: Ports, logs: pathlib.Path) -> None:
        self.ports, self.logs = ports, logs
        self.processes: list[subprocess.Popen] = []
        self._by_url: dict[str, subprocess.Popen] = {}

    def start(self, database_url: str, redis_url: str | None = None, *, args: tuple[str, ...] = (), **settings: str) -> str:
        port = self.ports.take()
        env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(port), **settings}
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        log = open(self.logs / f"serve-{port}.log", "w")
        process = subprocess.Popen(
            [LIVECART, "serve", "--port", str(port), *args], env=env, cwd=ROOT, stdout=log, stderr=log
        )
        log.close()  # the child holds its own descriptor
        self.processes.append(process)
        url = f"http://127.0.0.1:{port}"
        self._by_url[url] = process
        wait_until(lambda: urllib.request.urlopen(f"{url}/healthz", timeout=1).status == 200, f"livecart on {port}")
        return url

    def process_of(self, url: str) -> subprocess.Popen:
        return self._by_url[url]

    def log_of(self, url: str) -> str:
        return (self.logs / f"serve-{url.rsplit(':', 1)[1]}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            stop(process)


@pytest.fixture
def database(request) -> str:
    """The suite's PostgreSQL database, migrated by `livecart migrate`, emptied."""
    request.getfixturevalue("postgres_migrated")
    migrate(TEST_DATABASE_URL)
    run_blocking(_truncate_postgres(TEST_DATABASE_URL))
    run_blocking(_flush_redis(TEST_REDIS_URL))  # rate-limit windows of earlier runs
    return TEST_DATABASE_URL


@pytest.fixture
def servers(request, tmp_path) -> Iterator[Servers]:
    started = Servers(_ports(request), tmp_path)
    yield started
    started.stop_all()


# ---------------------------------------------------------------- redis-server

class RedisServer:
    """A redis-server of the test's own, on a spare port, that the test may kill and restart."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: redis_sync.Redis(port=self.port, socket_timeout=1).ping(), f"redis on {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def own_redis(request) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(_ports(request).take())
    server.start()
    yield server
    server.kill()


# ---------------------------------------------------------------- PostgreSQL

def postgres_bin() -> pathlib.Path | None:
    """The directory of initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return pathlib.Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return pathlib.Path(versions[-1]).parent if versions else None


class PostgresServer:
    """A PostgreSQL cluster of the test's own (initdb into a temporary folder, trust auth),
    listening on 127.0.0.1:port, that the test may stop and start again.

    PostgreSQL refuses to run as root; as root (CI's containers) its commands run as the
    `postgres` system user, which owns the folder."""

    def __init__(self, bindir: pathlib.Path, port: int) -> None:
        self.bindir, self.port = bindir, port
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="livecart-pg-"))
        self.data = self.folder / "data"
        self.url = f"postgres://postgres@127.0.0.1:{port}/postgres"
        self._as = {}
        if os.geteuid() == 0:
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]], check=True, capture_output=True, timeout=timeout,
            cwd=self.folder, **self._as,
        )

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self, **settings: object) -> None:
        """Starts it, with `settings` (PostgreSQL's, as name=value) on top of the usual ones."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {name}={value}" for name, value in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: open sessions are ended, then the server exits."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30)
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def own_postgres(request) -> Iterator[PostgresServer]:
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    server = PostgresServer(bindir, _ports(request).take())
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        server.remove()


# ---------------------------------------------------------------- scenario helpers

async def seller_with_live_stream(client: LivecartClient, stock: int = 50) -> tuple[str, str]:
    """Registers a seller with a product and a LIVE stream: (stream id, product id)."""
    await client.register("seller", "correct horse")
    await client.execute('mutation { becomeVendor(name: "Shop") { id } }')
    product = (await client.execute(
        'mutation($s: Int!) { createProduct(name: "Mug", price: "12.50", stock: $s) { id } }', {"s": stock}
    ))["createProduct"]["id"]
    stream = (await client.execute(
        "mutation($p: [ID!]!) { createStream(title: \"Live\", productIds: $p) { id } }", {"p": [product]}
    ))["createStream"]["id"]
    await client.execute("mutation($s: ID!) { startStream(id: $s) { status } }", {"s": stream})
    return stream, product


async def watching(client: LivecartClient, stream: str):
    """A connection following the stream's comments, returned once the process listens to the
    stream's channel (the viewer count, asked second on the same connection, has arrived)."""
    connection = await client.connect()
    comments = await connection.start(COMMENTS, {"s": stream})
    await next_of(await connection.start(VIEWERS, {"s": stream}))
    return connection, comments


async def comments_in_database(stream: str, database_url: str = TEST_DATABASE_URL) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT comment_text FROM stream_interactions WHERE stream_id = $1 AND interaction_type = 'comment'"
            " ORDER BY id", int(stream))
    finally:
        await conn.close()
    return [row["comment_text"] for row in rows]
