"""Events between processes through Redis pub/sub (redis.asyncio).

One process holds ONE pub/sub connection, subscribed to the channels that have
local subscribers; a reader task hands what arrives to the process's Hub, which
fans out locally. Publishing delivers to local subscribers first, then queues the
message for Redis: a mutation never waits on Redis and never sees its failure.

While Redis is down, local delivery goes on, outgoing messages wait in a bounded
outbox, and both tasks reconnect with exponential backoff; the reader subscribes
its channels again, and delivery between processes resumes without a restart.
Each message names the process that sent it, so a process skips its own echo.

With `cluster` (REDIS_CLUSTER) the same happens over a Redis Cluster's sharded pub/sub: the
strategy in subscriptions/redis_channels.py says which commands carry the events.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import deque

import orjson
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from livecart.models.events import Event
from livecart.subscriptions.hub import Hub
from livecart.subscriptions.redis_channels import PlainChannels, ShardedChannels, database_number

log = logging.getLogger("livecart.broker")

FAILURES = (RedisConnectionError, RedisTimeoutError, OSError, RedisError)
OUTBOX_SIZE = 10_000
PUBLISH_BATCH = 500
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
SUBSCRIBE_CONFIRM_TIMEOUT = 2.0


def _backoff(attempt: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt) * random.uniform(0.8, 1.2)


class RedisBroker:
    def __init__(self, url: str, outbox_size: int = OUTBOX_SIZE, *, cluster: bool = False) -> None:
        self.hub = Hub(ready=self._ready, released=self._released)
        self.process_id = uuid.uuid4().hex
        # Our own retries (with backoff, resubscribing) replace redis-py's.
        channels = ShardedChannels if cluster else PlainChannels
        self._channels = channels(url, socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 0))
        self._client = self._channels.client
        # Pub/sub channels ignore the database number: prefix them with it so that
        # deployments (or test runs) sharing one Redis server do not hear each other.
        self._prefix = f"livecart:{database_number(self._client)}:"
        self._outbox: deque[tuple[str, bytes]] = deque(maxlen=outbox_size)
        self._outbox_ready = asyncio.Event()
        # The publisher task and close()'s final flush must not send (and pop) the same batch twice.
        self._sending = asyncio.Lock()
        self._pubsub = None  # a redis-py PubSub (a ClusterPubSub on a cluster) while connected
        self._confirmed: dict[str, asyncio.Event] = {}
        self._commands = asyncio.Lock()  # subscribe/unsubscribe in the order they were asked
        self._wake_reader = asyncio.Event()
        # A channel could not be subscribed on a connection that still reads (on a cluster: its
        # shard is down, the others answer): the reader starts over, subscribing every channel.
        self._subscribe_failed = False
        self._redis_back = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._closing = False
        self.connected = False
        self.dropped = 0
        # Called with the publisher's time.time() ("t") of each message read back, our own echo included.
        self.lag_observer = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Raises RedisConfigError when Redis is not what the settings say; an unreachable Redis
        is no error here (it is retried, as any outage)."""
        await self._channels.check()
        for run in (self._read_forever, self._publish_forever):
            task = asyncio.create_task(run(), name=f"livecart-redis-{run.__name__}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        await self._flush_outbox_once()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: redis-py can swallow a cancellation inside a read, and shutdown must not hang on it.
            await asyncio.wait(tasks, timeout=2)
        try:
            if self._pubsub is not None:
                await asyncio.wait_for(self._close_pubsub(self._pubsub), 2)
            await asyncio.wait_for(self._client.aclose(), 2)
        except (asyncio.TimeoutError, *FAILURES) as exc:
            log.warning("redis connections did not close cleanly: %s", exc)
        self.hub.close()

    # ------------------------------------------------------------ publishing

    async def publish(self, channel: str, event: Event) -> None:
        self.hub.deliver(channel, event)
        if len(self._outbox) == self._outbox.maxlen:
            self.dropped += 1
            log.error("redis outbox full: dropping the oldest event (%d dropped so far)", self.dropped)
        self._outbox.append((self._prefix + channel, orjson.dumps({"o": self.process_id, "e": event, "t": time.time()})))
        self._outbox_ready.set()

    async def _publish_forever(self) -> None:
        attempt = 0
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                try:
                    await self._send_batch()
                    if attempt:
                        log.warning("redis publishing resumed")
                    attempt = 0
                except FAILURES as exc:
                    if attempt == 0:
                        log.warning("redis publish failed (%s); %d events wait in the outbox", exc, len(self._outbox))
                    await self._redis_back_or(_backoff(attempt))
                    attempt += 1

    async def _redis_back_or(self, seconds: float) -> None:
        """Sleep, but retry at once when the reader has reconnected (Redis is back)."""
        self._redis_back.clear()
        try:
            await asyncio.wait_for(self._redis_back.wait(), seconds)
        except TimeoutError:
            pass

    async def _send_batch(self) -> None:
        async with self._sending:
            # Taken out before sending: events published meanwhile may push the oldest out of a full
            # outbox, and what is popped afterwards must be what was sent.
            batch = [self._outbox.popleft() for _ in range(min(PUBLISH_BATCH, len(self._outbox)))]
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for channel, payload in batch:
                        self._channels.publish(pipe, channel, payload)
                    await pipe.execute()
            except BaseException:
                self._outbox.extendleft(reversed(batch))  # a failed (or cancelled) batch is sent again
                raise

    async def _flush_outbox_once(self) -> None:
        try:
            while self._outbox:
                await asyncio.wait_for(self._send_batch(), timeout=1)
        except (TimeoutError, *FAILURES):
            if self._outbox:
                log.error("closing with %d events not sent to redis", len(self._outbox))

    # ------------------------------------------------------------ subscribing

    async def _ready(self, channel: str) -> None:
        """Subscribe the channel once per process; wait (briefly) until Redis confirms."""
        confirmed = self._confirmed.get(channel)
        if confirmed is None:
            confirmed = self._confirmed[channel] = asyncio.Event()
            await self._subscribe(channel)
        if self._pubsub is None or self._subscribe_failed or confirmed.is_set():
            return  # Redis is down: local subscribers still hear this process's events
        try:
            await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_CONFIRM_TIMEOUT)
        except TimeoutError:
            if self.connected:  # else the lost connection was logged, and reconnecting subscribes it
                log.warning("redis did not confirm the subscription to %s in time", channel)

    async def _subscribe(self, channel: str) -> None:
        async with self._commands:
            pubsub = self._pubsub
            if pubsub is None or channel not in self.hub.channels():
                return  # the reader subscribes every local channel when it (re)connects
            try:
                await self._channels.subscribe(pubsub, self._prefix + channel)
            except FAILURES as exc:
                log.warning("redis subscribe to %s failed (%s); reconnecting to subscribe it again", channel, exc)
                self._subscribe_failed = True
        self._wake_reader.set()

    def _released(self, channel: str) -> None:
        self._confirmed.pop(channel, None)
        task = asyncio.get_running_loop().create_task(self._unsubscribe(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unsubscribe(self, channel: str) -> None:
        async with self._commands:
            pubsub = self._pubsub
            if pubsub is None or channel in self.hub.channels():
                return  # someone subscribed again meanwhile
            try:
                await self._channels.unsubscribe(pubsub, self._prefix + channel)
            except FAILURES as exc:
                log.warning("redis unsubscribe from %s failed (%s)", channel, exc)

    # ------------------------------------------------------------ reading

    async def _read_forever(self) -> None:
        attempt = 0
        while True:
            pubsub = self._client.pubsub()
            try:
                await self._connect(pubsub)
                if attempt:
                    log.warning("redis pub/sub reconnected; %d channels subscribed again", len(self.hub.channels()))
                attempt = 0
                await self._read(pubsub)
            except FAILURES as exc:
                if attempt == 0:
                    log.warning("redis pub/sub connection lost (%s); reconnecting with backoff", exc)
            finally:
                self._disconnected(pubsub)
                await self._close_pubsub(pubsub)
            await asyncio.sleep(_backoff(attempt))
            attempt += 1

    async def _connect(self, pubsub) -> None:
        async with self._commands:
            self._subscribe_failed = False
            await self._channels.connect(pubsub)
            channels = self.hub.channels()
            if channels:
                await self._channels.subscribe(pubsub, *(self._prefix + c for c in channels))
            self._pubsub = pubsub
            self.connected = True
            self._redis_back.set()

    def _disconnected(self, pubsub) -> None:
        if self._pubsub is pubsub:
            self._pubsub = None
            self.connected = False
            for confirmed in self._confirmed.values():
                confirmed.clear()

    async def _read(self, pubsub) -> None:
        while True:
            if self._subscribe_failed:
                raise RedisConnectionError("a channel could not be subscribed")
            if not self._channels.listening(pubsub):
                # Nothing to read until a channel is subscribed; redis-py refuses to wait on nothing.
                self._wake_reader.clear()
                await self._wake_reader.wait()
                continue
            message = await self._channels.next_message(pubsub)
            if message is not None:
                self._handle(message)

    def _handle(self, message: dict) -> None:
        channel = message["channel"].decode()[len(self._prefix):]
        if message["type"] == self._channels.confirms:
            confirmed = self._confirmed.get(channel)
            if confirmed is not None:
                confirmed.set()
            return
        if message["type"] != self._channels.carries:
            return
        try:
            envelope = orjson.loads(message["data"])
            origin, event = envelope["o"], envelope["e"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.error("ignoring a malformed message on %s", channel)
            return
        if self.lag_observer is not None and isinstance(envelope.get("t"), float):
            self.lag_observer(envelope["t"])
        if origin != self.process_id:  # our own events were delivered locally already
            self.hub.deliver(channel, event)

    @staticmethod
    async def _close_pubsub(pubsub) -> None:
        try:
            await pubsub.aclose()
        except Exception:  # noqa: BLE001 - the connection is already broken
            pass
