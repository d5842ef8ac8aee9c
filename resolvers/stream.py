"""Streams and replays: the read side, and what every stream field needs."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from strawberry.types import Info

from models import stream as streams
from models.catalog import Product
from models.fields import parse_id
from models.stream import LiveStream, SavedStream, StreamProduct, StreamStatus
from resolvers.loaders import rows_by_id


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


async def featured_products(info: Info, stream_id: int) -> list[Product]:
    return await info.context.loader(load_featured_products).load(stream_id)


async def playback_url(info: Info, stream: LiveStream) -> str | None:
    """The live feed while it can play; once ended, the replay's video if one was kept."""
    if stream.status != StreamStatus.ENDED:
        return info.context.settings.playback_url(stream.playback_id)
    saved = await info.context.loader(load_saved_by_stream).load(stream.id)
    return saved.video_url if saved else None


async def stream(info: Info, id: str) -> LiveStream | None:
    return await stream_by_id(info, parse_id("id", id))


async def live_streams() -> list[LiveStream]:
    return await streams.live_streams_query()


async def stream_list(vendor_id: str | None, status: StreamStatus | None) -> list[LiveStream]:
    vendor = parse_id("vendorId", vendor_id) if vendor_id is not None else None
    return await streams.streams_query(vendor, status)


async def saved_streams(vendor_id: str | None) -> list[SavedStream]:
    vendor = parse_id("vendorId", vendor_id) if vendor_id is not None else None
    return await streams.saved_streams_query(vendor)


async def saved_stream(id: str) -> SavedStream | None:
    return await SavedStream.get_or_none(id=parse_id("id", id))
