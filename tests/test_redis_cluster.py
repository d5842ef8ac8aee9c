"""The event broker on a Redis Cluster (REDIS_CLUSTER): sharded pub/sub between processes.

The module starts a three-node cluster of its own (no replicas) on spare ports, in a temporary
folder, and stops it at the end. Brokers pointed at different nodes hear each other's events;
a stream's channel is subscribed only on the shard owning its slot; a killed and restarted node
is reconnected to; and a Redis without cluster mode is refused at start, in one line.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
import redis as redis_sync
from aiohttp import web
from redis.exceptions import RedisClusterException, RedisError

from livecart.models.events import comment_added, stream_channel
from livecart.resolvers.ratelimit import COMMENT
from livecart.server.app import request_redis_ctx
from livecart.server.appkeys import REQUEST_REDIS, SETTINGS
from livecart.server.query_cache import QUERY_CACHE, query_cache_ctx
from livecart.server.ratelimit import RATE_LIMITER, ratelimit_ctx
from livecart.server.settings import Settings, SettingsError
from livecart.subscriptions.redis_broker import RedisBroker
from livecart.subscriptions.redis_channels import ping, redis_client
from tests.processes import LIVECART, ROOT, Ports, own_redis, wait_until  # noqa: F401 - own_redis is a fixture

# With TEST_PORT_OFFSET=5000 (the shared machine's setting for this module) the nodes listen on
# 17100-17105, their cluster bus on 27100-27105: both below the ephemeral range. Killed nodes leave
# connections in TIME_WAIT, which redis-server's own bind does not mind: nor does this module's.
PORTS = Ports(12100, 12105, reuse_address=True)
pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

PREFIX = "livecart:0:"  # a cluster has database 0 only (RedisBroker's channel prefix)
ONLY_COMMENTS = frozenset({"comment_added"})


class RedisClusterNodes:
    """Three redis-server nodes in cluster mode, each owning a third of the slots, that a test may
    kill and start again (its node id and slots are kept in its nodes-PORT.conf)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="livecart-cluster-"))
        self.processes: dict[int, subprocess.Popen] = {}

    def url(self, port: int) -> str:
        return f"redis://127.0.0.1:{port}/0"

    def start_node(self, port: int) -> None:
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.node(port).ping(), f"redis cluster node on {port}")

    def create(self) -> None:
        for port in self.ports:
            self.start_node(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        self.wait_ok()

    def wait_ok(self) -> None:
        for port in self.ports:
            wait_until(lambda: self.node(port).cluster("info")["cluster_state"] == "ok", f"cluster_state:ok on {port}")

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.kill()
        process.wait(5)

    def node(self, port: int) -> redis_sync.Redis:
        return redis_sync.Redis(port=port, socket_timeout=2)

    def owner_of(self, channel: str) -> int:
        """The port of the node owning the channel's slot."""
        slot = self.node(self.ports[0]).cluster("keyslot", channel)
        for start, end, primary, *_ in self.node(self.ports[0]).execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
        raise AssertionError(f"slot {slot} is not covered")

    def shard_subscribers(self, port: int, channel: str) -> int:
        return int(self.node(port).execute_command("PUBSUB", "SHARDNUMSUB", channel)[1])

    def classic_subscribers(self, port: int, channel: str) -> int:
        return int(self.node(port).execute_command("PUBSUB", "NUMSUB", channel)[1])

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterNodes]:
    nodes = RedisClusterNodes([PORTS.take() for _ in range(3)])
    try:
        nodes.create()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
async def brokers() -> AsyncIterator[list[RedisBroker]]:
    """Brokers the test starts with started(); all closed at its end."""
    started: list[RedisBroker] = []
    yield started
    for broker in started:
        await broker.close()


async def started(brokers: list[RedisBroker], url: str) -> RedisBroker:
    """A cluster broker whose startup node is `url`, once its pub/sub reader is connected."""
    broker = RedisBroker(url, cluster=True)
    brokers.append(broker)
    await broker.start()
    for _ in range(100):
        if broker.connected:
            return broker
        await asyncio.sleep(0.05)
    raise AssertionError("the broker did not connect to the cluster")


def stream_owned_by(cluster: RedisClusterNodes, port: int, start: int = 1) -> int:
    """A stream id whose channel lives on the node at `port`."""
    return next(s for s in range(start, start + 1000) if cluster.owner_of(PREFIX + stream_channel(s)) == port)


async def comment_ids(subscriber, count: int) -> list[int]:
    return [(await asyncio.wait_for(subscriber.get(), 5))["comment_id"] for _ in range(count)]


async def nothing_more(subscriber) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(subscriber.get(), 0.5)


# ---------------------------------------------------------------- delivery through the shards

async def test_brokers_on_different_nodes_hear_each_others_events_once_in_order(cluster, brokers):
    first, second = cluster.ports[0], cluster.ports[1]
    one, other = await started(brokers, cluster.url(first)), await started(brokers, cluster.url(second))
    stream = stream_owned_by(cluster, cluster.ports[2])  # on neither broker's startup node
    channel = stream_channel(stream)
    hears_one = await other.hub.add(channel, ONLY_COMMENTS)
    hears_other = await one.hub.add(channel, ONLY_COMMENTS)

    for n in range(50):
        await one.publish(channel, comment_added(stream, n))
        await other.publish(channel, comment_added(stream, 1000 + n))

    heard_by_other = await comment_ids(hears_one, 100)
    heard_by_one = await comment_ids(hears_other, 100)
    for heard in (heard_by_other, heard_by_one):
        assert [n for n in heard if n < 1000] == list(range(50))  # each once, in the order published
        assert [n for n in heard if n >= 1000] == list(range(1000, 1050))
    await nothing_more(hears_one)  # no echo of a broker's own events, no second copy
    await nothing_more(hears_other)


async def test_a_streams_channel_is_subscribed_on_the_shard_owning_its_slot(cluster, brokers):
    broker = await started(brokers, cluster.url(cluster.ports[0]))
    streams = [stream_owned_by(cluster, port, start=100) for port in cluster.ports]
    subscribers = [await broker.hub.add(stream_channel(stream), ONLY_COMMENTS) for stream in streams]

    for stream, owner in zip(streams, cluster.ports):
        channel = PREFIX + stream_channel(stream)
        assert {port: cluster.shard_subscribers(port, channel) for port in cluster.ports} == {
            port: int(port == owner) for port in cluster.ports
        }
        # Not classic pub/sub, which a cluster would copy to every node.
        assert [cluster.classic_subscribers(port, channel) for port in cluster.ports] == [0, 0, 0]

    broker.hub.remove(subscribers[0])  # the last local subscriber leaving releases the channel on its shard
    channel, owner = PREFIX + stream_channel(streams[0]), cluster.ports[0]
    await asyncio.to_thread(wait_until, lambda: cluster.shard_subscribers(owner, channel) == 0, "the release", 5)


async def test_a_subscriber_hears_later_events_after_the_owning_node_restarts(cluster, brokers):
    owner, first, second = cluster.ports[2], cluster.ports[0], cluster.ports[1]
    publisher, listener = await started(brokers, cluster.url(first)), await started(brokers, cluster.url(second))
    stream = stream_owned_by(cluster, owner, start=200)
    channel = stream_channel(stream)
    subscriber = await listener.hub.add(channel, ONLY_COMMENTS)
    await publisher.publish(channel, comment_added(stream, 1))
    assert await comment_ids(subscriber, 1) == [1]

    cluster.kill(owner)
    await asyncio.to_thread(wait_until, lambda: not listener.connected, "the listener noticing", 10)
    await asyncio.to_thread(
        wait_until, lambda: cluster.node(first).cluster("info")["cluster_state"] == "fail", "the cluster failing", 10
    )
    readiness = redis_client(cluster.url(first), cluster=True)
    with pytest.raises((RedisError, RedisClusterException)):
        await ping(readiness)  # /readyz: a node still answers PING, but the cluster serves nothing
    await publisher.publish(channel, comment_added(stream, 2))  # waits in the outbox meanwhile
    await asyncio.to_thread(cluster.start_node, owner)
    await asyncio.to_thread(cluster.wait_ok)
    await asyncio.to_thread(
        wait_until, lambda: cluster.shard_subscribers(owner, PREFIX + channel) == 1, "the listener resubscribed", 20
    )

    for n in range(3, 13):
        await publisher.publish(channel, comment_added(stream, n))
    await ping(readiness)
    await readiness.aclose()
    heard = await comment_ids(subscriber, 10)
    if heard[0] == 2:  # the outage's event, sent once the shard was back (it may have been before the resubscription)
        heard = heard[1:] + await comment_ids(subscriber, 1)
    assert heard == list(range(3, 13))
    await nothing_more(subscriber)


async def test_a_channel_followed_while_its_shard_is_down_is_subscribed_once_the_shard_is_back(cluster, brokers):
    owner, first, second = cluster.ports[1], cluster.ports[0], cluster.ports[2]
    publisher, listener = await started(brokers, cluster.url(first)), await started(brokers, cluster.url(second))
    elsewhere = stream_channel(stream_owned_by(cluster, second, start=400))
    await listener.hub.add(elsewhere, ONLY_COMMENTS)  # the reader is busy on another shard meanwhile
    stream = stream_owned_by(cluster, owner, start=400)
    channel = stream_channel(stream)

    cluster.kill(owner)
    subscriber = await listener.hub.add(channel, ONLY_COMMENTS)  # SSUBSCRIBE cannot reach the shard
    await asyncio.to_thread(cluster.start_node, owner)
    await asyncio.to_thread(cluster.wait_ok)
    await asyncio.to_thread(
        wait_until, lambda: cluster.shard_subscribers(owner, PREFIX + channel) == 1, "the channel subscribed", 20
    )
    for n in range(5):
        await publisher.publish(channel, comment_added(stream, n))
    assert await comment_ids(subscriber, 5) == list(range(5))


# ---------------------------------------------------------------- the request client

@contextlib.asynccontextmanager
async def app_on(settings: Settings) -> AsyncIterator[web.Application]:
    """An app with the request Redis client and what is made from it, as create_app opens them."""
    app = web.Application()
    app[SETTINGS] = settings
    contexts = [make(app) for make in (request_redis_ctx, ratelimit_ctx, query_cache_ctx)]
    for context in contexts:
        await anext(context)
    try:
        yield app
    finally:
        for context in reversed(contexts):
            with contextlib.suppress(StopAsyncIteration):
                await anext(context)


async def test_the_request_client_counts_rate_limits_together_through_different_nodes(cluster):
    key = f"cluster-test-{os.getpid()}"
    settings = [Settings(redis_url=cluster.url(port), redis_cluster=True) for port in cluster.ports[:2]]
    async with app_on(settings[0]) as one, app_on(settings[1]) as other:
        limiters = [one[RATE_LIMITER], other[RATE_LIMITER]]
        waits = [await limiters[n % 2].wait_seconds(COMMENT, key) for n in range(COMMENT.count)]
        assert waits == [0.0] * COMMENT.count  # counted in Redis: not the in-process fallback's warning path
        assert await limiters[1].wait_seconds(COMMENT, key) > 0  # the sixth, whichever node it came through
        assert await one[QUERY_CACHE].version.current() is not None  # the data version reads through the cluster
        await ping(other[REQUEST_REDIS])  # what /readyz asks: the cluster answers, cluster_state:ok


# ---------------------------------------------------------------- configuration

def test_redis_cluster_is_validated_with_redis_url():
    assert Settings.from_env({}).redis_cluster is False
    assert Settings.from_env({"REDIS_CLUSTER": "on", "REDIS_URL": "redis://10.0.0.5:7000"}).redis_cluster is True
    for env, says in (
        ({"REDIS_CLUSTER": "on"}, "needs REDIS_URL"),
        ({"REDIS_CLUSTER": "on", "REDIS_URL": "redis://10.0.0.5:7000/2"}, "database 0 only"),
        ({"REDIS_CLUSTER": "on", "REDIS_URL": "unix:///run/redis.sock"}, "redis:// or rediss://"),
        ({"REDIS_CLUSTER": "sometimes", "REDIS_URL": "redis://10.0.0.5:7000"}, "is not on/off"),
    ):
        with pytest.raises(SettingsError, match="REDIS_CLUSTER") as refused:
            Settings.from_env(env)
        assert says in str(refused.value)


def test_a_redis_without_cluster_mode_is_refused_at_start_in_one_line(own_redis, tmp_path):
    env = {
        **os.environ, "DATABASE_URL": f"sqlite://{tmp_path}/db.sqlite3", "REDIS_URL": own_redis.url,
        "REDIS_CLUSTER": "on", "MEDIA_DIR": str(tmp_path / "media"), "IMAGE_DIR": str(tmp_path / "images"),
    }
    try:
        ended = subprocess.run(
            [LIVECART, "serve", "--port", str(PORTS.take())], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail("livecart serve kept running with REDIS_CLUSTER on and a Redis that is no cluster node")
    assert ended.returncode != 0
    assert "Traceback" not in ended.stderr
    assert ended.stderr.strip().splitlines()[-1] == (
        f"livecart: REDIS_CLUSTER is on, but the Redis at {own_redis.url} is not a cluster node (cluster_enabled:0); "
        "point REDIS_URL at a node of the cluster, or turn REDIS_CLUSTER off"
    )
