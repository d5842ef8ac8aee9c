import pytest

from livecart.models import stream as streams
from livecart.models.stream import LiveStream, StreamStatus
from tests.support import count_queries, make_vendor

LIVE_PAGE = "{ liveStreams { id title status vendor { name } featuredProducts { name price stock vendor { name } } } }"


async def live_stream(vendor, title="Show", products=None) -> LiveStream:
    stream = await streams.create_stream(vendor.vendor_id, title=title, product_ids=products or vendor.product_ids)
    return await streams.start_stream(stream)


async def test_live_streams_show_vendor_and_featured_products(client):
    seller = await make_vendor(client, products=2, price="0.10")
    stream = await live_stream(seller, "Morning show")
    await streams.create_stream(seller.vendor_id, title="Later")  # scheduled: not live
    data = await client.data(LIVE_PAGE)
    assert data["liveStreams"] == [{
        "id": str(stream.id), "title": "Morning show", "status": "LIVE", "vendor": {"name": "Shop"},
        "featuredProducts": [
            {"name": "Product 0", "price": "0.10", "stock": 10, "vendor": {"name": "Shop"}},
            {"name": "Product 1", "price": "0.10", "stock": 10, "vendor": {"name": "Shop"}},
        ],
    }]


async def test_stream_fields_and_filters(client):
    seller = await make_vendor(client)
    scheduled = await streams.create_stream(seller.vendor_id, title="Soon", description="d")
    live = await live_stream(seller, "Now")
    data = await client.data(
        "query($id: ID!) { stream(id: $id) { title description status startedAt endedAt durationSeconds playbackUrl } }",
        {"id": str(scheduled.id)},
    )
    assert data["stream"]["status"] == "SCHEDULED" and data["stream"]["durationSeconds"] == 0
    assert data["stream"]["startedAt"] is None and data["stream"]["description"] == "d"
    assert scheduled.stream_key not in data["stream"]["playbackUrl"]
    assert scheduled.playback_id in data["stream"]["playbackUrl"]

    data = await client.data("{ streams(status: LIVE) { title } all: streams { title } }")
    assert data["streams"] == [{"title": "Now"}]
    assert [s["title"] for s in data["all"]] == ["Now", "Soon"]  # newest first
    data = await client.data("query($v: ID) { streams(vendorId: $v) { id } }", {"v": str(seller.vendor_id + 1)})
    assert data["streams"] == []
    assert (await client.data('{ stream(id: "999") { id } }'))["stream"] is None
    assert live.started_at is not None


async def test_highlighted_product_is_listed_first(client):
    from livecart.models.stream import StreamProduct

    seller = await make_vendor(client, products=3)
    stream = await live_stream(seller)
    await StreamProduct.filter(stream_id=stream.id, product_id=seller.product_ids[2]).update(highlighted=True)
    data = await client.data("query($id: ID!) { stream(id: $id) { featuredProducts { id } } }", {"id": str(stream.id)})
    assert [int(p["id"]) for p in data["stream"]["featuredProducts"]] == [seller.product_ids[2], *seller.product_ids[:2]]


@pytest.mark.parametrize("bad_id", ["abc", "-1", "0", "1.5", "١", "99999999999999999999", "2147483648"])
async def test_malformed_ids_are_bad_input(client, bad_id):
    error = await client.error("query($id: ID!) { stream(id: $id) { id } }", {"id": bad_id})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "id"}


async def test_fifty_streams_resolve_in_constant_statements(client):
    seller = await make_vendor(client, products=3)
    other = await make_vendor(client, "seller2", products=2)
    for i in range(50):
        owner = seller if i % 2 else other
        await live_stream(owner, f"Stream {i}")
    # Pages sized to fit the query cost limit (schema/cost.py): fifty streams, five products each.
    query = LIVE_PAGE.replace("liveStreams", "liveStreams(first: 50)").replace("featuredProducts", "featuredProducts(first: 5)")
    with count_queries() as statements:
        data = await client.data(query)
    assert len(data["liveStreams"]) == 50
    # streams, vendors, stream products, products: one statement each, however many streams.
    assert 1 <= len(statements) <= 5, statements


async def test_saved_streams_read_side(client):
    from livecart.models.stream import SavedStream

    seller = await make_vendor(client)
    stream = await live_stream(seller, "Kept")
    await LiveStream.filter(id=stream.id).update(status=StreamStatus.ENDED, ended_at=stream.started_at)
    saved = await SavedStream.create(
        stream_id=stream.id, vendor_id=seller.vendor_id, title="Kept", video_url="https://v/1.mp4",
        duration_seconds=42, stats={}, streamed_at=stream.started_at,
    )
    data = await client.data("{ savedStreams { id title videoUrl durationSeconds vendor { name } stream { status playbackUrl } } }")
    assert data["savedStreams"] == [{
        "id": str(saved.id), "title": "Kept", "videoUrl": "https://v/1.mp4", "durationSeconds": 42,
        "vendor": {"name": "Shop"}, "stream": {"status": "ENDED", "playbackUrl": "https://v/1.mp4"},
    }]
    data = await client.data("query($v: ID) { savedStreams(vendorId: $v) { id } }", {"v": str(seller.vendor_id + 5)})
    assert data["savedStreams"] == []
    data = await client.data("query($id: ID!) { savedStream(id: $id) { title } }", {"id": str(saved.id)})
    assert data["savedStream"] == {"title": "Kept"}
