"""Streams and replays in the schema."""
from __future__ import annotations

import datetime as dt

import strawberry
from strawberry.types import Info

from livecart.schema.scalars import EVENT_CURSOR
from livecart.models import stream as m
from livecart.resolvers import stream as r
from livecart.models.figures import StreamFigures
from livecart.models.fields import MAX_PAGE
from livecart.schema.catalog import Product, Vendor, vendor_type
from livecart.schema.commerce import EndStreamAction, EndStreamResult, OwnerFields, OwnerOnly, StreamStats
from livecart.schema.engagement import EngagementFields
from livecart.schema.moderation import ModerationFields
from livecart.schema.media import MediaFields
from livecart.schema.cost import list_size
from livecart.schema.permissions import IsVendor

StreamStatus = strawberry.enum(m.StreamStatus, name="StreamStatus")

# Default pages (issue 13): lists of streams times their products must stay within the query
# cost limit (schema/cost.py) when asked without arguments, as the home page does.
STREAMS_PAGE = 20
FEATURED_PAGE = 20


@strawberry.type
class LiveStream(EngagementFields, ModerationFields, OwnerFields, MediaFields):
    """A stream; its viewer-side and owner-only fields come from the mixins of those domains."""
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)

    model: strawberry.Private[m.LiveStream]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    def title(self) -> str:
        return self.model.title

    @strawberry.field
    def description(self) -> str | None:
        return self.model.description

    @strawberry.field
    def status(self) -> StreamStatus:
        return self.model.status

    @strawberry.field
    async def vendor(self, info: Info) -> Vendor:
        return await vendor_type(info, self.model.vendor_id)

    @strawberry.field
    def scheduled_at(self) -> dt.datetime | None:
        return self.model.scheduled_at

    @strawberry.field
    def started_at(self) -> dt.datetime | None:
        return self.model.started_at

    @strawberry.field
    def ended_at(self) -> dt.datetime | None:
        return self.model.ended_at

    @strawberry.field(description="Seconds live so far, or in all once ended; 0 before it starts.")
    def duration_seconds(self) -> int:
        return m.duration_seconds(self.model)

    @strawberry.field(description="Where a player fetches the video.")
    async def playback_url(self, info: Info) -> str | None:
        return await r.playback_url(info, self.model)

    @strawberry.field(
        description=f"The products offered on this stream, the highlighted one first: the first `first` (1 to {MAX_PAGE}).",
        metadata=list_size(MAX_PAGE, "first", FEATURED_PAGE),
    )
    async def featured_products(self, info: Info, first: int = FEATURED_PAGE) -> list[Product]:
        return [Product.from_model(p) for p in await r.featured_products(info, self.model.id, first)]


def streams_out(rows: list[m.LiveStream]) -> list[LiveStream]:
    return [LiveStream(model=row) for row in rows]


@strawberry.type
class SavedStream:
    model: strawberry.Private[m.SavedStream]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    async def stream(self, info: Info) -> LiveStream:
        return LiveStream(model=await r.stream_by_id(info, self.model.stream_id))

    @strawberry.field
    def title(self) -> str:
        return self.model.title

    @strawberry.field
    async def vendor(self, info: Info) -> Vendor:
        return await vendor_type(info, self.model.vendor_id)

    @strawberry.field
    def video_url(self) -> str:
        return self.model.video_url

    @strawberry.field
    def duration_seconds(self) -> int:
        return self.model.duration_seconds

    @strawberry.field
    def streamed_at(self) -> dt.datetime:
        return self.model.streamed_at

    @strawberry.field
    def saved_at(self) -> dt.datetime:
        return self.model.saved_at

    @strawberry.field(description="Owner only: the stream's figures when it ended.", permission_classes=[OwnerOnly])
    def stats(self) -> StreamStats | None:
        return StreamStats.from_figures(StreamFigures.from_json(self.model.stream_id, self.model.stats))


@strawberry.type
class StreamQuery:
    @strawberry.field(
        description=f"Streams that are LIVE now, newest first: the first `first` (1 to {MAX_PAGE}).",
        metadata=list_size(MAX_PAGE, "first", STREAMS_PAGE),
    )
    async def live_streams(self, first: int = STREAMS_PAGE) -> list[LiveStream]:
        return streams_out(await r.live_streams(first))

    @strawberry.field
    async def stream(self, info: Info, id: strawberry.ID) -> LiveStream | None:
        row = await r.stream(info, id)
        return LiveStream(model=row) if row else None

    @strawberry.field(
        description=f"Streams filtered by vendor and status, newest first: the first `first` (1 to {MAX_PAGE}).",
        metadata=list_size(MAX_PAGE, "first", STREAMS_PAGE),
    )
    async def streams(
        self, vendor_id: strawberry.ID | None = None, status: StreamStatus | None = None, first: int = STREAMS_PAGE
    ) -> list[LiveStream]:
        return streams_out(await r.stream_list(vendor_id, status, first))

    @strawberry.field(
        description=f"Replays, newest first: the first `first` (1 to {MAX_PAGE}).",
        metadata=list_size(MAX_PAGE, "first", STREAMS_PAGE),
    )
    async def saved_streams(self, vendor_id: strawberry.ID | None = None, first: int = STREAMS_PAGE) -> list[SavedStream]:
        return [SavedStream(model=row) for row in await r.saved_streams(vendor_id, first)]

    @strawberry.field
    async def saved_stream(self, id: strawberry.ID) -> SavedStream | None:
        row = await r.saved_stream(id)
        return SavedStream(model=row) if row else None


@strawberry.type
class StreamMutation:
    @strawberry.mutation(description="Vendor only; the products must be the vendor's own.", permission_classes=[IsVendor])
    async def create_stream(
        self,
        info: Info,
        title: str,
        description: str | None = None,
        scheduled_at: dt.datetime | None = None,
        product_ids: list[strawberry.ID] = (),
    ) -> LiveStream:
        return LiveStream(model=await r.create_stream(info, title, description, scheduled_at, list(product_ids)))

    @strawberry.mutation(description="Owner only: SCHEDULED to LIVE.", permission_classes=[IsVendor])
    async def start_stream(self, info: Info, id: strawberry.ID) -> LiveStream:
        return LiveStream(model=await r.start_stream(info, id))

    @strawberry.mutation(
        description="Owner only: adds the product to the stream if needed and highlights it.",
        permission_classes=[IsVendor],
    )
    async def feature_product(self, info: Info, stream_id: strawberry.ID, product_id: strawberry.ID) -> LiveStream:
        return LiveStream(model=await r.feature_product(info, stream_id, product_id))

    @strawberry.mutation(
        description="Owner only: a new secret stream key; the old one is refused from now on.",
        permission_classes=[IsVendor],
    )
    async def rotate_stream_key(self, info: Info, id: strawberry.ID) -> LiveStream:
        return LiveStream(model=await r.rotate_stream_key(info, id))

    @strawberry.mutation(
        description="Owner only: LIVE (or SCHEDULED) to ENDED, then SAVE or DELETE.", permission_classes=[IsVendor]
    )
    async def end_stream(
        self, info: Info, id: strawberry.ID, action: EndStreamAction, video_url: str | None = None
    ) -> EndStreamResult:
        stream, saved, figures = await r.end_stream(info, id, action is EndStreamAction.SAVE, video_url)
        return EndStreamResult(
            stream=LiveStream(model=stream),
            saved_stream=SavedStream(model=saved) if saved else None,
            stats=StreamStats.from_figures(figures),
        )
