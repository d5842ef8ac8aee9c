"""Streams and replays: the read side, and what every stream field needs."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from strawberry.types import Info

from livecart.models import lifecycle, live, media, policy
from livecart.models import stream as streams
from livecart.models.catalog import Product
from livecart.models.fields import check_first, parse_id
from livecart.models.stream import LiveStream, SavedStream, StreamProduct, StreamStatus
from livecart.resolvers.loaders import rows_by_id
from livecart.resolvers.user import seller_vendor
from livecart.models import events
from livecart.subscriptions.broker import publish_to_directory, publish_to_stream


async def load_streams(keys: Sequence[int]) -> list[LiveStream | None]:
    return await rows_by_id(LiveStream, keys)


async def load_saved_by_stream(keys: Sequence[int]) -> list[SavedStream | None]:
    saved = {s.stream_id: s for s in await SavedStream.filter(stream_id__in=set(keys))}
    return [saved.get(key) for key in keys]


async def load_featured_products(keys: Sequence[int]) -> list[list[Product]]:
    """The products of each stream, the highlighted one first, then in the order added."""
    links = await StreamProduct.filter(stream_id__in=set(keys)).order_by("-highlighted", "position", "id")
    products = {p.id: p for p in await Product.filter(id__in={link.product_id for link in links})}
    grouped: dict[int, list[Product]] = defaultdict(list)
    for link in links:
        grouped[link.stream_id].append(products[link.product_id])
    return [grouped.get(key, []) for key in keys]


async def stream_by_id(info: Info, stream_id: int) -> LiveStream | None:
    return await info.context.loader(load_streams).load(stream_id)


async def featured_products(info: Info, stream_id: int, first: int) -> list[Product]:
    check_first(first)
    return (await info.context.loader(load_featured_products).load(stream_id))[:first]


async def playback_url(info: Info, stream: LiveStream) -> str | None:
    """The live feed while it can play; once ended, the replay's video if one was kept."""
    if stream.status != StreamStatus.ENDED:
        return info.context.settings.playback_url(stream.playback_id)
    saved = await info.context.loader(load_saved_by_stream).load(stream.id)
    return saved.video_url if saved else None


async def stream(info: Info, id: str) -> LiveStream | None:
    return await stream_by_id(info, parse_id("id", id))


async def live_streams(first: int) -> list[LiveStream]:
    return await streams.live_streams_query().limit(check_first(first))


async def stream_list(vendor_id: str | None, status: StreamStatus | None, first: int) -> list[LiveStream]:
    vendor = parse_id("vendorId", vendor_id) if vendor_id is not None else None
    return await streams.streams_query(vendor, status).limit(check_first(first))


async def saved_streams(vendor_id: str | None, first: int) -> list[SavedStream]:
    vendor = parse_id("vendorId", vendor_id) if vendor_id is not None else None
    return await streams.saved_streams_query(vendor).limit(check_first(first))


async def saved_stream(id: str) -> SavedStream | None:
    return await SavedStream.get_or_none(id=parse_id("id", id))


# ---------------------------------------------------------------- the seller's actions


async def create_stream(
    info: Info, title: str, description: str | None, scheduled_at: dt.datetime | None, product_ids: list[str]
) -> LiveStream:
    user = await info.context.require_user()
    vendor = await seller_vendor(info, user.id)  # the IsVendor check's lookup, from the request's loader
    return await streams.create_stream(
        vendor.id,
        title=title,
        description=description,
        scheduled_at=scheduled_at,
        product_ids=[parse_id("productIds", pid) for pid in product_ids],
    )


async def _owned(info: Info, argument: str, stream_id: str) -> LiveStream:
    user = await info.context.require_user()
    return await policy.owned_stream(parse_id(argument, stream_id), user.id)


async def start_stream(info: Info, id: str) -> LiveStream:
    stream = await streams.start_stream(await _owned(info, "id", id))
    await publish_to_stream(info.context.broker, stream.id, events.stream_updated(stream.id))
    await publish_to_directory(info.context.broker, events.live_streams_changed(stream.id))
    return stream


async def rotate_stream_key(info: Info, id: str) -> LiveStream:
    return await media.rotate_stream_key(await _owned(info, "id", id))


async def feature_product(info: Info, stream_id: str, product_id: str) -> LiveStream:
    stream = await _owned(info, "streamId", stream_id)
    stream = await live.feature_product(stream, parse_id("productId", product_id))
    await publish_to_stream(info.context.broker, stream.id, events.stream_updated(stream.id))
    return stream


async def end_stream(info: Info, id: str, save: bool, video_url: str | None):
    """Returns (stream, saved stream or None, final figures)."""
    stream = await _owned(info, "id", id)
    recording_url = info.context.settings.recording_url(stream.playback_id)
    stream, saved, figures = await lifecycle.end_stream(stream, save=save, video_url=video_url, recording_url=recording_url)
    # After the commit: the publisher held here stops, then SAVE assembles the recording from every
    # segment (answered once it is there, so the replay plays at once), DELETE removes the media.
    await media.finish_media(info.context.settings.media_dir, stream, save=save)
    broker = info.context.broker
    await publish_to_stream(
        broker,
        stream.id,
        events.stream_updated(stream.id),
        events.viewers_changed(stream.id),
    )
    await publish_to_directory(broker, events.live_streams_changed(stream.id))
    return stream, saved, figures
