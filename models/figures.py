"""A stream's figures: the counters kept on its row, the viewers now (the counter less sessions
that lapsed but are not swept yet), and the snapshot a saved stream keeps. Both commerce (orders)
and engagement (viewers) move these counters; this module reads them and imports neither."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from dataclasses import fields as fields_of
from decimal import Decimal

from tortoise.expressions import RawSQL

from livecart.models.clock import utcnow
from livecart.models.fields import to_money
from livecart.models.stream import LiveStream, duration_seconds


@dataclass(frozen=True)
class StreamFigures:
    """Every figure of a stream, read from the counters maintained on its row."""

    stream_id: int
    duration_seconds: int
    viewer_count: int
    unique_viewers: int
    peak_viewers: int
    likes: int
    dislikes: int
    comments: int
    orders: int
    items_sold: int
    revenue: Decimal

    @classmethod
    def of(cls, stream: LiveStream, now: dt.datetime | None = None, viewer_count: int | None = None) -> StreamFigures:
        """viewer_count, when given, is the count less sessions that lapsed but are not swept yet."""
        return cls(
            stream_id=stream.id,
            duration_seconds=duration_seconds(stream, now),
            viewer_count=stream.viewer_count if viewer_count is None else viewer_count,
            unique_viewers=stream.unique_viewers,
            peak_viewers=stream.peak_viewers,
            likes=stream.likes,
            dislikes=stream.dislikes,
            comments=stream.comment_count,
            orders=stream.order_count,
            items_sold=stream.items_sold,
            revenue=to_money(stream.revenue),
        )

    def to_json(self) -> dict:
        """The snapshot kept on a saved stream; money as a string so it stays exact."""
        snapshot = asdict(self)
        snapshot["revenue"] = format(self.revenue, "f")
        return snapshot

    @classmethod
    def from_json(cls, stream_id: int, snapshot: dict) -> StreamFigures:
        values = {f.name: snapshot.get(f.name, 0) for f in fields_of(cls)}
        values["stream_id"] = stream_id
        values["revenue"] = to_money(snapshot.get("revenue", "0"))
        return cls(**values)


async def stream_figures(stream_id: int) -> StreamFigures | None:
    """The figures now: one statement, never cached, so a subscription sees each change."""
    now = utcnow()
    stream = await LiveStream.filter(id=stream_id).annotate(lapsed=lapsed_sql(now)).first()
    if stream is None:
        return None
    return StreamFigures.of(stream, now, viewer_count=stream.viewer_count - int(stream.lapsed))


# ---------------------------------------------------------------- viewers now

def lapsed_sql(now: dt.datetime) -> RawSQL:
    """Sessions of the outer live_streams row still marked active though they lapsed.

    The moment is inlined in the one format both databases compare correctly: the
    format Tortoise's SQLite adapter stores (PostgreSQL casts it to timestamptz).
    """
    moment = now.astimezone(dt.timezone.utc).isoformat(" ")
    return RawSQL(
        "(SELECT COUNT(*) FROM stream_viewers sv WHERE sv.stream_id = live_streams.id"
        f" AND sv.is_active AND sv.expires_at <= '{moment}')"
    )


async def viewer_counts(stream_ids: Iterable[int], now: dt.datetime) -> dict[int, int]:
    """Sessions active now, per stream: the maintained counter less the sessions that
    lapsed but the sweeper has not closed yet, read in one statement (one snapshot)."""
    rows = (
        await LiveStream.filter(id__in=set(stream_ids))
        .annotate(lapsed=lapsed_sql(now))
        .values("id", "viewer_count", "lapsed")
    )
    return {row["id"]: row["viewer_count"] - int(row["lapsed"]) for row in rows}


async def viewer_count(stream_id: int, now: dt.datetime) -> int:
    return (await viewer_counts([stream_id], now)).get(stream_id, 0)
