"""Live streams, their featured products and their replays."""
from __future__ import annotations

import datetime as dt
import enum
import secrets

from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from livecart.models import outbox
from livecart.models.atomic import atomic
from livecart.models.catalog import Product
from livecart.models import events
from livecart.models.errors import bad_input, conflict, forbidden, not_found
from livecart.models.fields import MoneyField, plain_text
from livecart.models.clock import utcnow


class StreamStatus(str, enum.Enum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class LiveStream(Model):
    """A stream and the running figures the API serves.

    The counters are maintained in the same transaction as the rows they count
    (viewer sessions, reactions, comments, stream orders), so every figure is
    exact and reading them all costs one row.
    """

    id = fields.IntField(primary_key=True)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="streams", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=200)
    description = fields.TextField(null=True)
    status = fields.CharEnumField(StreamStatus, max_length=16, default=StreamStatus.SCHEDULED)
    stream_key = fields.CharField(max_length=64, unique=True)
    playback_id = fields.CharField(max_length=32, unique=True)
    scheduled_at = fields.DatetimeField(null=True)
    started_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Live video (models/media.py): whether media is arriving now, and from which publish session
    # ("whip:<id>" or "rtmp:<nginx client id>"), so a second publisher is refused and a late
    # publish-done of an earlier session changes nothing.
    broadcasting = fields.BooleanField(default=False)
    publisher = fields.CharField(max_length=64, null=True)

    viewer_count = fields.IntField(default=0)
    unique_viewers = fields.IntField(default=0)
    peak_viewers = fields.IntField(default=0)
    likes = fields.IntField(default=0)
    dislikes = fields.IntField(default=0)
    comment_count = fields.IntField(default=0)
    order_count = fields.IntField(default=0)
    items_sold = fields.IntField(default=0)
    revenue = MoneyField(default=0)

    class Meta:
        table = "live_streams"
        indexes = (
            Index(fields=("status", "started_at"), name="live_streams_idx_status"),
            Index(fields=("vendor_id", "created_at"), name="live_streams_idx_vendor_id"),
        )
        constraints = (
            CheckConstraint(check="status IN ('scheduled', 'live', 'ended')", name="live_streams_status_valid"),
            CheckConstraint(
                check="viewer_count >= 0 AND unique_viewers >= 0 AND peak_viewers >= viewer_count"
                " AND likes >= 0 AND dislikes >= 0 AND comment_count >= 0 AND order_count >= 0"
                " AND items_sold >= 0 AND revenue >= 0",
                name="live_streams_counters_valid",
            ),
        )


class StreamProduct(Model):
    """A product offered on a stream, the highlighted one listed first."""

    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="stream_products", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="stream_products", on_delete=fields.CASCADE)
    position = fields.IntField()
    highlighted = fields.BooleanField(default=False)
    added_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stream_products"
        unique_together = (("stream", "product"),)


class SavedStream(Model):
    """A replay kept when a stream ended with SAVE, with a snapshot of its figures in stats."""

    id = fields.IntField(primary_key=True)
    stream = fields.OneToOneField("models.LiveStream", related_name="saved", on_delete=fields.CASCADE)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="saved_streams", on_delete=fields.RESTRICT)
    title = fields.CharField(max_length=200)
    video_url = fields.CharField(max_length=1000)
    duration_seconds = fields.IntField()
    stats = fields.JSONField()
    streamed_at = fields.DatetimeField()
    saved_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "saved_streams"
        indexes = (
            Index(fields=("vendor_id",), name="saved_streams_idx_vendor_id"),
            Index(fields=("streamed_at",), name="saved_streams_idx_streamed_at"),
            Index(fields=("saved_at",), name="saved_streams_idx_saved_at"),
        )
        constraints = (CheckConstraint(check="duration_seconds >= 0", name="saved_streams_duration_valid"),)


MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 5000


def duration_seconds(stream: LiveStream, now: dt.datetime | None = None) -> int:
    """Seconds live so far, or in all once ended; 0 before it starts."""
    if stream.started_at is None:
        return 0
    end = stream.ended_at or now or utcnow()
    return max(0, int((end - stream.started_at).total_seconds()))


async def create_stream(
    vendor_id: int,
    *,
    title: str,
    description: str | None = None,
    scheduled_at: dt.datetime | None = None,
    product_ids: list[int] = (),
) -> LiveStream:
    """A SCHEDULED stream offering the vendor's own products, in the order given."""
    title = plain_text("title", title).strip()
    description = plain_text("description", description)
    if not 1 <= len(title) <= MAX_TITLE_LENGTH:
        raise bad_input("title", f"1 to {MAX_TITLE_LENGTH} characters")
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise bad_input("description", f"at most {MAX_DESCRIPTION_LENGTH} characters")
    if scheduled_at is not None:
        if scheduled_at.tzinfo is None:
            raise bad_input("scheduledAt", "needs a time zone")
        try:
            # Stored in UTC: 0001-01-01T00:00+14:00 or 9999-12-31T23:59-12:00 has no UTC time.
            scheduled_at = scheduled_at.astimezone(dt.timezone.utc)
        except OverflowError:
            raise bad_input("scheduledAt", "out of range: must be a time in years 1 to 9999 in UTC") from None
    product_ids = list(dict.fromkeys(product_ids))
    products = {p.id: p for p in await Product.filter(id__in=product_ids)}
    for product_id in product_ids:
        if product_id not in products:
            raise not_found("product", product_id)
        if products[product_id].vendor_id != vendor_id:
            raise forbidden(f"Product {product_id} belongs to another vendor.")
    async with atomic():
        stream = await LiveStream.create(
            vendor_id=vendor_id,
            title=title,
            description=description,
            scheduled_at=scheduled_at,
            stream_key=secrets.token_urlsafe(32),
            playback_id=secrets.token_hex(12),
        )
        await StreamProduct.bulk_create(
            [StreamProduct(stream=stream, product_id=pid, position=i) for i, pid in enumerate(product_ids)]
        )
    return stream


async def start_stream(stream: LiveStream) -> LiveStream:
    """SCHEDULED to LIVE; the status check and the change are one atomic statement."""
    now = utcnow()
    async with outbox.transaction():
        changed = await LiveStream.filter(id=stream.id, status=StreamStatus.SCHEDULED).update(
            status=StreamStatus.LIVE, started_at=now
        )
        if changed:
            await outbox.append(stream.id, events.stream_updated(stream.id))
    if not changed:
        await stream.refresh_from_db(fields=["status"])  # what it is now, not what the caller read
        raise conflict(f"Only a scheduled stream can go live; this one is {stream.status.value}.")
    # Set here, not re-read: a failed read after the commit would make a started stream look unstarted.
    stream.status, stream.started_at = StreamStatus.LIVE, now
    return stream


def live_streams_query():
    return LiveStream.filter(status=StreamStatus.LIVE).order_by("-started_at", "-id")


def streams_query(vendor_id: int | None, status: StreamStatus | None):
    query = LiveStream.all()
    if vendor_id is not None:
        query = query.filter(vendor_id=vendor_id)
    if status is not None:
        query = query.filter(status=status)
    return query.order_by("-created_at", "-id")


def saved_streams_query(vendor_id: int | None):
    query = SavedStream.all()
    if vendor_id is not None:
        query = query.filter(vendor_id=vendor_id)
    return query.order_by("-saved_at", "-id")


# ---------------------------------------------------------------- the seller's lifecycle

MAX_URL_LENGTH = 1000


def check_video_url(video_url: str) -> str:
    video_url = plain_text("videoUrl", video_url).strip()
    if not video_url or len(video_url) > MAX_URL_LENGTH or not video_url.startswith(("https://", "http://", "/")):
        raise bad_input("videoUrl", f"an http(s) URL or a path, at most {MAX_URL_LENGTH} characters")
    return video_url
