"""How events travel through Redis: classic pub/sub on one server, or sharded pub/sub on a Redis
Cluster (REDIS_CLUSTER). RedisBroker (subscriptions/redis_broker.py) holds one of these strategies
and does everything else (the outbox, reconnecting with backoff, resubscribing, skipping its own
echo) the same way for both.

On a cluster, SPUBLISH and SSUBSCRIBE are keyed by the channel's name: a stream's channel hashes to
one slot, so its messages go to (and are read from) only the shard that owns that slot, instead of
every node of the cluster as classic PUBLISH does. Classic pub/sub on a cluster would carry every
event across every node's bus; sharded pub/sub keeps fan-out traffic on one shard per stream.

Here also: the Redis clients the rest of livecart uses (the request client, the readiness check),
made for either kind of deployment.
"""
from __future__ import annotations

from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

# Sharded pub/sub reads one node's connection at a time (redis-py's ClusterPubSub), so the reader
# waits this long on each node that holds our channels before looking at the next: an event on
# another node waits at most this times (nodes - 1). With every channel on one node, no delay.
SHARD_POLL_SECONDS = 0.05


class RedisConfigError(RuntimeError):
    """Redis answers, but is not what the settings say (REDIS_CLUSTER on, a server without cluster
    mode): retrying cannot help, so the process stops at start with this one-line message."""


def redis_client(url: str, *, cluster: bool = False, **options: Any) -> Any:
    """A client of the Redis at `url`; with `cluster`, of the Redis Cluster that `url` is one node of
    (the other nodes are discovered from it, and each key's command goes to the node owning its slot)."""
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.from_url(url, **options)


def database_number(client: Any) -> int:
    """The client's database number, which keys and channels are prefixed with (a deployment or
    test run sharing a server does not see another's). A cluster has database 0 only."""
    pool = getattr(client, "connection_pool", None)
    return pool.connection_kwargs.get("db", 0) if pool is not None else 0


async def ping(client: Any) -> None:
    """Raises unless Redis can serve: on a cluster, the node must also report cluster_state:ok
    (a node answers PING while the cluster refuses every command, e.g. a shard without a primary)."""
    if not isinstance(client, RedisCluster):
        await client.ping()
        return
    info = await client.cluster_info()  # asks a node of the cluster; it answers for the whole
    if info.get("cluster_state") != "ok":
        raise RedisError(f"redis cluster_state is {info.get('cluster_state')!r}")


class PlainChannels:
    """Classic pub/sub on one Redis server: one connection hears every channel."""

    confirms, carries = "subscribe", "message"  # the message types: subscription confirmed, event

    def __init__(self, url: str, **options: Any) -> None:
        self.client = redis_client(url, **options)

    async def check(self) -> None:
        return None  # any Redis server does classic pub/sub

    async def connect(self, pubsub) -> None:
        await pubsub.connect()

    def publish(self, pipe, channel: str, payload: bytes) -> None:
        pipe.publish(channel, payload)

    async def subscribe(self, pubsub, *channels: str) -> None:
        await pubsub.subscribe(*channels)

    async def unsubscribe(self, pubsub, channel: str) -> None:
        await pubsub.unsubscribe(channel)

    def listening(self, pubsub) -> bool:
        return pubsub.subscribed

    async def next_message(self, pubsub) -> dict | None:
        return await pubsub.get_message(timeout=None)


class ShardedChannels:
    """Sharded pub/sub on a Redis Cluster: each channel is subscribed on the node owning its slot
    (redis-py's ClusterPubSub keeps one connection per such node)."""

    confirms, carries = "ssubscribe", "smessage"

    def __init__(self, url: str, **options: Any) -> None:
        self.url, self._options = url, options
        self.client = redis_client(url, cluster=True, **options)

    async def check(self) -> None:
        """RedisConfigError when REDIS_URL's server is up but not a cluster node; when it is down,
        nothing is known yet, and the broker keeps trying to connect as it would for any outage."""
        probe = redis_client(self.url, **self._options)
        try:
            info = await probe.info("cluster")
        except RedisError:
            return
        finally:
            await probe.aclose()
        if not info.get("cluster_enabled"):
            raise RedisConfigError(
                f"REDIS_CLUSTER is on, but the Redis at {self.url} is not a cluster node (cluster_enabled:0); "
                "point REDIS_URL at a node of the cluster, or turn REDIS_CLUSTER off"
            )

    async def connect(self, pubsub) -> None:
        # Read the slot map afresh on every (re)connection: while we were away a shard may have
        # failed over or its slots moved, and each channel must be subscribed where it lives now.
        await self.client.initialize()
        await self.client.nodes_manager.initialize()

    def publish(self, pipe, channel: str, payload: bytes) -> None:
        pipe.spublish(channel, payload)  # the cluster pipeline sends each to the node owning its slot

    async def subscribe(self, pubsub, *channels: str) -> None:
        for channel in channels:  # one command each: channels of different slots cannot share one
            await pubsub.ssubscribe(channel)

    async def unsubscribe(self, pubsub, channel: str) -> None:
        await pubsub.sunsubscribe(channel)

    def listening(self, pubsub) -> bool:
        return bool(pubsub.node_pubsub_mapping)

    async def next_message(self, pubsub) -> dict | None:
        # What is waiting on any node first, then a short wait on each: a node with nothing to
        # say must not hold up the messages already read from another.
        try:
            message = await pubsub.get_sharded_message(timeout=0)
            if message is None:
                message = await pubsub.get_sharded_message(timeout=SHARD_POLL_SECONDS)
        except RuntimeError as exc:
            # redis-py polls a shard whose connection never opened (its SSUBSCRIBE could not
            # connect) and says "pubsub connection not set": to us, a lost connection like any other.
            raise RedisConnectionError(str(exc)) from exc
        return message
