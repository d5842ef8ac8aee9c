"""The event log (issue 15): every change subscribers hear about, written by the transaction that
made it, numbered per stream in commit order.

`append` runs inside a mutation's transaction, as its last statement: an upsert of the stream's
counter row (`event_streams`) takes that row's lock until commit, so two transactions on one
stream get their numbers one after the other and commit in that order; a transaction that rolls
back takes its number back with it. No gap, no number twice. On SQLite the single writer gives
the same order.

`transaction()` is `atomic()` that remembers what it appended: once it has committed,
`take_committed(stream_id)` hands those events (with their `seq` and `cursor`) to the code that
publishes them (subscriptions/broker.publish_to_stream). Events of a transaction that rolled back
are never handed out. A process that dies between commit and publish loses nothing: the rows are
in the log, and the relay (subscriptions/relay.py) delivers them from there.
"""
from __future__ import annotations

import base64
import contextlib
import contextvars
import dataclasses
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson
from tortoise import fields
from tortoise.models import Model

from livecart.models.atomic import atomic
from livecart.models.errors import DomainError, ErrorCode, bad_input
from livecart.models.user import utcnow

# Retention: events older than this go, but a stream keeps at least KEEP_EVENTS of its newest.
RETENTION_SECONDS = 24 * 3600
KEEP_EVENTS = 10_000
PRUNE_BATCH = 1000
MAX_UNPUBLISHED = 1000


class EventStream(Model):
    """One row per stream that has events: the last number given and the last one pruned."""

    stream_id = fields.IntField(primary_key=True, generated=False)
    last_seq = fields.BigIntField(default=0)
    pruned_seq = fields.BigIntField(default=0)  # events up to this number are gone
    epoch = fields.CharField(max_length=16)  # tells this log from another one's (a reset database)

    class Meta:
        table = "event_streams"


class EventLog(Model):
    id = fields.BigIntField(primary_key=True)
    stream_id = fields.IntField()
    seq = fields.BigIntField()
    type = fields.CharField(max_length=32)
    payload = fields.TextField()  # the event as published, JSON
    created_at = fields.DatetimeField()

    class Meta:
        table = "event_log"
        unique_together = (("stream_id", "seq"),)


# ---------------------------------------------------------------- cursors

CURSOR_PREFIX = "ev1:"


def encode_cursor(stream_id: int, seq: int, epoch: str) -> str:
    """Opaque to clients: the stream, the number and the log's epoch."""
    raw = f"{CURSOR_PREFIX}{stream_id}:{seq}:{epoch}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclasses.dataclass(frozen=True, slots=True)
class Cursor:
    stream_id: int
    seq: int
    epoch: str


def decode_cursor(raw: str) -> Cursor:
    """BAD_USER_INPUT for anything this server did not make."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if not text.startswith(CURSOR_PREFIX):
            raise ValueError
        stream, seq, epoch = text[len(CURSOR_PREFIX):].split(":")
        cursor = Cursor(int(stream), int(seq), epoch)
        if cursor.seq < 0 or (not epoch and cursor.seq != 0):
            raise ValueError
        return cursor
    except (ValueError, UnicodeDecodeError):
        raise bad_input("after", "not a cursor this server gave.") from None


@dataclasses.dataclass(frozen=True, slots=True)
class Head:
    """Where a stream's log stands: its newest number, the last one pruned, its epoch."""

    stream_id: int
    last_seq: int
    pruned_seq: int
    epoch: str

    def cursor(self, seq: int | None = None) -> str:
        return encode_cursor(self.stream_id, self.last_seq if seq is None else seq, self.epoch)


async def head(stream_id: int) -> Head:
    row = await EventStream.get_or_none(stream_id=stream_id)
    if row is None:
        return Head(stream_id, 0, 0, "")
    return Head(stream_id, row.last_seq, row.pruned_seq, row.epoch)


async def heads(stream_ids: list[int]) -> dict[int, int]:
    """The newest number of each stream (the relay's poll)."""
    rows = await EventStream.filter(stream_id__in=stream_ids).values_list("stream_id", "last_seq")
    return dict(rows)


def check_cursor(raw: str, now: Head) -> int:
    """The number after which to replay. BAD_USER_INPUT: not ours, another stream's, another log's
    or ahead of the log; CURSOR_EXPIRED (with the oldest cursor kept): older than the log keeps."""
    cursor = decode_cursor(raw)
    if cursor.stream_id != now.stream_id:
        raise bad_input("after", "a cursor of another stream.")
    if cursor.seq == 0 and cursor.epoch == "":
        pass  # before the first event (a stream that had none yet when it was given)
    elif cursor.epoch != now.epoch or cursor.seq > now.last_seq:
        raise bad_input("after", "not a cursor of this stream's events.")
    if cursor.seq < now.pruned_seq:
        raise expired(now)
    return cursor.seq


# ---------------------------------------------------------------- appending


@dataclasses.dataclass(slots=True)
class _Unit:
    appended: list[dict[str, Any]] = dataclasses.field(default_factory=list)


_unit: contextvars.ContextVar[_Unit | None] = contextvars.ContextVar("livecart_outbox_unit", default=None)
_committed: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "livecart_outbox_committed", default=None
)


@contextlib.asynccontextmanager
async def transaction() -> AsyncIterator[Any]:
    """`atomic()` whose appended events are handed out (take_committed) once it commits.
    Inside another one it is a savepoint and the outer transaction hands the events out."""
    if _unit.get() is not None:
        async with atomic() as connection:
            yield connection
        return
    unit = _Unit()
    token = _unit.set(unit)
    try:
        async with atomic() as connection:
            yield connection
    finally:
        _unit.reset(token)
    # Only reached when the transaction committed.
    if unit.appended:
        committed = _committed.get()
        if committed is None:
            committed = []
            _committed.set(committed)
        committed.extend(unit.appended)
        # A task that logs and never publishes some stream's events (a sweeper's purchase touching
        # other streams) must not grow this list: the relay delivers those from the log anyway.
        del committed[:-MAX_UNPUBLISHED]


def _placeholders(db, count: int) -> list[str]:
    if db.capabilities.dialect == "postgres":
        return [f"${i}" for i in range(1, count + 1)]
    return ["?"] * count


async def append(stream_id: int, *events: dict[str, Any]) -> None:
    """Log `events` of one stream in the running transaction (its last statements: the counter's
    row lock is held until commit). Each event gets `seq` and `cursor`."""
    unit = _unit.get()
    if unit is None:
        raise RuntimeError("outbox.append outside outbox.transaction()")
    if not events:
        return
    db = EventLog._meta.db
    p = _placeholders(db, 3)
    rows = await db.execute_query_dict(
        f"INSERT INTO event_streams (stream_id, last_seq, pruned_seq, epoch) VALUES ({p[0]}, {p[1]}, 0, {p[2]}) "
        f"ON CONFLICT (stream_id) DO UPDATE SET last_seq = event_streams.last_seq + {len(events)} "
        "RETURNING last_seq, epoch",
        [stream_id, len(events), secrets.token_hex(4)],
    )
    last, epoch = rows[0]["last_seq"], rows[0]["epoch"]
    now = utcnow()
    p = _placeholders(db, 5)
    first = last - len(events) + 1
    for offset, event in enumerate(events):
        seq = first + offset
        event["seq"] = seq
        event["cursor"] = encode_cursor(stream_id, seq, epoch)
        await db.execute_query(
            f"INSERT INTO event_log (stream_id, seq, type, payload, created_at) VALUES ({p[0]}, {p[1]}, {p[2]}, {p[3]}, {p[4]})",
            [stream_id, seq, event["type"], orjson.dumps(event).decode(), now],
        )
        unit.appended.append(event)


def take_committed(stream_id: int) -> list[dict[str, Any]]:
    """The committed events of `stream_id` this task has not published yet, in order."""
    committed = _committed.get()
    if not committed:
        return []
    mine = [e for e in committed if e.get("stream_id") == stream_id]
    if mine:
        committed[:] = [e for e in committed if e.get("stream_id") != stream_id]
    return mine


async def read(stream_id: int, after: int, upto: int | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """The logged events of a stream after `after` (up to `upto`), oldest first, at most `limit`."""
    query = EventLog.filter(stream_id=stream_id, seq__gt=after)
    if upto is not None:
        query = query.filter(seq__lte=upto)
    rows = await query.order_by("seq").limit(limit).values_list("payload", flat=True)
    return [orjson.loads(payload) for payload in rows]


# ---------------------------------------------------------------- retention


async def prune(now: dt.datetime | None = None, *, retention_seconds: int = RETENTION_SECONDS,
                keep: int = KEEP_EVENTS, batch: int = PRUNE_BATCH) -> int:
    """Delete events older than the retention, a stream's newest `keep` always kept, at most
    `batch` rows per statement. Writers never wait on a delete: the stream's pruned mark moves
    first, in a statement of its own (a reader that then misses rows knows they were pruned), and
    the rows go after it without the counter row's lock. Returns how many went."""
    cutoff = (now or utcnow()) - dt.timedelta(seconds=retention_seconds)
    removed = 0
    for stream in await EventStream.filter(last_seq__gt=keep).all():
        while True:
            seqs = await EventLog.filter(
                stream_id=stream.stream_id, seq__lte=stream.last_seq - keep, created_at__lt=cutoff
            ).order_by("seq").limit(batch).values_list("seq", flat=True)
            if not seqs:
                break
            upto = max(seqs)
            await EventStream.filter(stream_id=stream.stream_id, pruned_seq__lt=upto).update(pruned_seq=upto)
            removed += await EventLog.filter(stream_id=stream.stream_id, seq__lte=upto).delete()
            if len(seqs) < batch:
                break
    return removed


def expired(now: Head) -> DomainError:
    return DomainError(
        ErrorCode.CURSOR_EXPIRED,
        "The events after this cursor are no longer kept: reload, then follow from the oldest cursor or now.",
        oldestCursor=now.cursor(now.pruned_seq),
    )
