"""The seller's side: create, start, feature, monitor and end a stream (the seed's flows 4 and 5)."""
from __future__ import annotations

import asyncio

from livecart.models.engagement import StreamViewer
from livecart.models.stream import LiveStream, SavedStream, StreamStatus
from tests.support import count_queries, make_vendor, register

CREATE = """
mutation($t: String!, $p: [ID!]! = [], $at: DateTime) {
  createStream(title: $t, productIds: $p, scheduledAt: $at) {
    id status title scheduledAt streamKey playbackUrl featuredProducts { id }
  }
}"""
START = "mutation($id: ID!) { startStream(id: $id) { id status startedAt } }"
FEATURE = "mutation($s: ID!, $p: ID!) { featureProduct(streamId: $s, productId: $p) { featuredProducts { id } } }"
END = """
mutation($id: ID!, $a: EndStreamAction!, $url: String) {
  endStream(id: $id, action: $a, videoUrl: $url) {
    stream { id status endedAt playbackUrl }
    savedStream { id title videoUrl durationSeconds streamedAt savedAt stats { orders revenue } }
    stats { streamId viewerCount uniqueViewers peakViewers likes dislikes comments orders itemsSold revenue }
  }
}"""
STATS = "streamId durationSeconds viewerCount uniqueViewers peakViewers likes dislikes comments orders itemsSold revenue"
DASHBOARD = f"""
query($id: ID!) {{
  stream(id: $id) {{
    title status streamKey
    stats {{ {STATS} }}
    activeViewers {{ user {{ username }} }}
    orders {{ orderId streamId product {{ id }} quantity amount buyer {{ username }} }}
  }}
}}"""


async def create_stream(client, seller, title="Show", products=None) -> dict:
    variables = {"t": title, "p": [str(p) for p in (seller.product_ids if products is None else products)]}
    return (await client.data(CREATE, variables, token=seller.token))["createStream"]


async def live_stream_id(client, seller, title="Show") -> str:
    stream_id = (await create_stream(client, seller, title))["id"]
    await client.data(START, {"id": stream_id}, token=seller.token)
    return stream_id


def codes(body: dict) -> dict[str, str]:
    """Each error's field path (dotted) to its code."""
    return {".".join(map(str, e["path"])): e["extensions"]["code"] for e in body.get("errors", [])}


async def test_flow_4_and_5_seller_goes_live_monitors_and_ends_with_save(client):
    seller = await make_vendor(client, products=2, price="0.10")
    buyer = await register(client, "buyer")
    created = await create_stream(client, seller, "Morning show")
    assert created["status"] == "SCHEDULED" and created["title"] == "Morning show"
    assert len(created["streamKey"]) >= 32 and created["streamKey"] not in created["playbackUrl"]
    assert [int(p["id"]) for p in created["featuredProducts"]] == seller.product_ids
    stream_id = created["id"]

    started = (await client.data(START, {"id": stream_id}, token=seller.token))["startStream"]
    assert started["status"] == "LIVE" and started["startedAt"]

    # Viewers watch, react, comment and buy while the seller watches the dashboard.
    await client.data("mutation($s: ID!) { joinStream(streamId: $s) { id } }", {"s": stream_id})
    await client.data("mutation($s: ID!) { joinStream(streamId: $s) { id } }", {"s": stream_id}, token=buyer.token)
    await client.data("mutation($s: ID!) { react(streamId: $s, kind: LIKE) { likes } }", {"s": stream_id}, token=buyer.token)
    await client.data(
        'mutation($s: ID!) { postComment(streamId: $s, text: "love it") { id } }', {"s": stream_id}, token=buyer.token
    )
    await client.data(
        "mutation($p: ID!, $s: ID) { buyNow(productId: $p, quantity: 3, streamId: $s) { id } }",
        {"p": str(seller.product_ids[0]), "s": stream_id},
        token=buyer.token,
    )

    board = (await client.data(DASHBOARD, {"id": stream_id}, token=seller.token))["stream"]
    assert board["streamKey"] == created["streamKey"]
    stats = board["stats"]
    assert stats["streamId"] == stream_id
    assert (stats["viewerCount"], stats["uniqueViewers"], stats["peakViewers"]) == (2, 2, 2)
    assert (stats["likes"], stats["dislikes"], stats["comments"]) == (1, 0, 1)
    assert (stats["orders"], stats["itemsSold"], stats["revenue"]) == (1, 3, "0.30")
    assert sorted(str(v["user"] and v["user"]["username"]) for v in board["activeViewers"]) == ["None", "buyer"]
    assert board["orders"] == [{
        "orderId": board["orders"][0]["orderId"], "streamId": stream_id, "product": {"id": str(seller.product_ids[0])},
        "quantity": 3, "amount": "0.30", "buyer": {"username": "buyer"},
    }]

    ended = (await client.data(END, {"id": stream_id, "a": "SAVE"}, token=seller.token))["endStream"]
    row = await LiveStream.get(id=int(stream_id))
    assert ended["stream"]["status"] == "ENDED" and ended["stream"]["endedAt"]
    assert ended["stats"] == {
        "streamId": stream_id, "viewerCount": 0, "uniqueViewers": 2, "peakViewers": 2, "likes": 1, "dislikes": 0,
        "comments": 1, "orders": 1, "itemsSold": 3, "revenue": "0.30",
    }
    saved = ended["savedStream"]
    assert saved["title"] == "Morning show" and row.playback_id in saved["videoUrl"]
    assert saved["videoUrl"] == ended["stream"]["playbackUrl"]  # the replay is what plays now
    assert saved["stats"] == {"orders": 1, "revenue": "0.30"}
    assert saved["durationSeconds"] == (row.ended_at - row.started_at).total_seconds() // 1
    kept = await SavedStream.get(id=int(saved["id"]))
    assert kept.streamed_at == row.started_at and row.ended_at <= kept.saved_at  # went live, then kept
    assert saved["streamedAt"] and saved["savedAt"]
    assert not await StreamViewer.filter(stream_id=int(stream_id), is_active=True).exists()

    # The replay and its snapshot stay, the snapshot for the seller only.
    query = "query($id: ID!) { savedStream(id: $id) { title stats { itemsSold revenue } } }"
    mine = await client.data(query, {"id": saved["id"]}, token=seller.token)
    assert mine["savedStream"] == {"title": "Morning show", "stats": {"itemsSold": 3, "revenue": "0.30"}}
    body = await client.execute(query, {"id": saved["id"]}, token=buyer.token)
    assert body["data"]["savedStream"] == {"title": "Morning show", "stats": None}
    assert codes(body) == {"savedStream.stats": "FORBIDDEN"}

    again = await client.error(END, {"id": stream_id, "a": "DELETE"}, token=seller.token)
    assert again["extensions"]["code"] == "CONFLICT"
    assert await SavedStream.filter(stream_id=int(stream_id)).count() == 1


async def test_flow_5_end_with_delete_keeps_no_replay(client):
    seller = await make_vendor(client)
    stream_id = await live_stream_id(client, seller)
    ended = (await client.data(END, {"id": stream_id, "a": "DELETE"}, token=seller.token))["endStream"]
    assert ended["savedStream"] is None and ended["stream"]["status"] == "ENDED"
    assert ended["stream"]["playbackUrl"] is None
    assert not await SavedStream.exists(stream_id=int(stream_id))
    assert (await client.data("{ savedStreams { id } }"))["savedStreams"] == []


async def test_save_with_a_given_video_url_and_ending_a_scheduled_stream(client):
    seller = await make_vendor(client)
    stream_id = (await create_stream(client, seller))["id"]
    variables = {"id": stream_id, "a": "SAVE", "url": "https://cdn.example.com/v/1.mp4"}
    ended = (await client.data(END, variables, token=seller.token))["endStream"]
    assert ended["savedStream"]["videoUrl"] == "https://cdn.example.com/v/1.mp4"
    assert ended["savedStream"]["durationSeconds"] == 0  # it never went live
    error = await client.error(START, {"id": stream_id}, token=seller.token)
    assert error["extensions"]["code"] == "CONFLICT"


async def test_bad_video_url_changes_nothing(client):
    seller = await make_vendor(client)
    stream_id = await live_stream_id(client, seller)
    for variables in ({"a": "SAVE", "url": "javascript:alert(1)"}, {"a": "DELETE", "url": "https://x.example/v.mp4"}):
        error = await client.error(END, {"id": stream_id, **variables}, token=seller.token)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await LiveStream.get(id=int(stream_id))).status == StreamStatus.LIVE


async def test_two_concurrent_ends_one_wins(client):
    seller = await make_vendor(client)
    stream_id = await live_stream_id(client, seller)
    bodies = await asyncio.gather(*(
        client.execute(END, {"id": stream_id, "a": action}, token=seller.token) for action in ("SAVE", "SAVE", "DELETE")
    ))
    won = [b for b in bodies if not b.get("errors")]
    assert len(won) == 1
    assert sorted(b["errors"][0]["extensions"]["code"] for b in bodies if b.get("errors")) == ["CONFLICT", "CONFLICT"]
    assert await SavedStream.filter(stream_id=int(stream_id)).count() == (1 if won[0]["data"]["endStream"]["savedStream"] else 0)


async def test_create_stream_checks(client):
    seller = await make_vendor(client)
    other = await make_vendor(client, "other")
    shopper = await register(client, "shopper")
    assert (await client.error(CREATE, {"t": "x"}))["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await client.error(CREATE, {"t": "x"}, token=shopper.token))["extensions"]["code"] == "FORBIDDEN"
    error = await client.error(CREATE, {"t": "x", "p": [str(other.product_ids[0])]}, token=seller.token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await client.error(CREATE, {"t": "x", "p": ["9999"]}, token=seller.token))["extensions"]["code"] == "NOT_FOUND"
    for title in ("", "   ", "x" * 201):
        assert (await client.error(CREATE, {"t": title}, token=seller.token))["extensions"]["code"] == "BAD_USER_INPUT"
    made = await create_stream(client, seller, "x" * 200, products=[])
    assert made["featuredProducts"] == [] and made["scheduledAt"] is None
    at = (await client.data(CREATE, {"t": "later", "at": "2030-01-02T10:00:00+00:00"}, token=seller.token))
    assert at["createStream"]["scheduledAt"].startswith("2030-01-02T10:00:00")
    assert await LiveStream.filter(vendor_id=seller.vendor_id).count() == 2


async def test_only_the_owner_acts_on_a_stream(client):
    seller = await make_vendor(client)
    other = await make_vendor(client, "other")
    shopper = await register(client, "shopper")
    stream_id = (await create_stream(client, seller))["id"]
    for token, code in ((other.token, "FORBIDDEN"), (shopper.token, "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        assert (await client.error(START, {"id": stream_id}, token=token))["extensions"]["code"] == code
        error = await client.error(FEATURE, {"s": stream_id, "p": str(seller.product_ids[0])}, token=token)
        assert error["extensions"]["code"] == code
        assert (await client.error(END, {"id": stream_id, "a": "SAVE"}, token=token))["extensions"]["code"] == code
    assert (await LiveStream.get(id=int(stream_id))).status == StreamStatus.SCHEDULED
    assert (await client.error(START, {"id": "9999"}, token=seller.token))["extensions"]["code"] == "NOT_FOUND"
    await client.data(START, {"id": stream_id}, token=seller.token)
    assert (await client.error(START, {"id": stream_id}, token=seller.token))["extensions"]["code"] == "CONFLICT"


async def test_feature_product_adds_and_highlights(client):
    seller = await make_vendor(client, products=3)
    other = await make_vendor(client, "other")
    stream_id = (await create_stream(client, seller, products=seller.product_ids[:2]))["id"]
    a, b, c = map(str, seller.product_ids)

    featured = (await client.data(FEATURE, {"s": stream_id, "p": c}, token=seller.token))["featureProduct"]
    assert [p["id"] for p in featured["featuredProducts"]] == [c, a, b]  # added, and highlighted first
    featured = (await client.data(FEATURE, {"s": stream_id, "p": b}, token=seller.token))["featureProduct"]
    assert [p["id"] for p in featured["featuredProducts"]] == [b, a, c]  # one highlight at a time

    error = await client.error(FEATURE, {"s": stream_id, "p": str(other.product_ids[0])}, token=seller.token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await client.error(FEATURE, {"s": stream_id, "p": "9999"}, token=seller.token))["extensions"]["code"] == "NOT_FOUND"
    await client.data(END, {"id": stream_id, "a": "DELETE"}, token=seller.token)
    assert (await client.error(FEATURE, {"s": stream_id, "p": a}, token=seller.token))["extensions"]["code"] == "CONFLICT"


async def test_owner_fields_are_null_with_an_error_for_anyone_else(client):
    seller = await make_vendor(client)
    other = await make_vendor(client, "other")
    stream_id = await live_stream_id(client, seller)
    query = "query($id: ID!) { stream(id: $id) { title streamKey stats { likes } orders { id } activeViewers { id } } }"
    owner_only = {"streamKey": None, "stats": None, "orders": None, "activeViewers": None}
    for token, code in ((other.token, "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        body = await client.execute(query, {"id": stream_id}, token=token)
        assert body["data"]["stream"] == {"title": "Show", **owner_only}
        assert codes(body) == {f"stream.{field}": code for field in owner_only}
    mine = (await client.data(query, {"id": stream_id}, token=seller.token))["stream"]
    assert mine["stats"] == {"likes": 0} and mine["orders"] == [] and mine["activeViewers"] == []
    assert mine["streamKey"] == (await LiveStream.get(id=int(stream_id))).stream_key


async def test_fifty_streams_stats_resolve_in_constant_statements(client):
    seller = await make_vendor(client)
    query = f"""query($v: ID) {{ streams(vendorId: $v, first: 50) {{
        streamKey stats {{ {STATS} }} orders(first: 5) {{ amount product {{ name }} buyer {{ username }} }} activeViewers(first: 5) {{ id }}
    }} }}"""

    async def statements_for(count: int) -> int:
        while await LiveStream.filter(vendor_id=seller.vendor_id).count() < count:
            await live_stream_id(client, seller)
        with count_queries() as statements:
            data = await client.data(query, {"v": str(seller.vendor_id)}, token=seller.token)
        assert len(data["streams"]) == count
        assert all(s["stats"]["revenue"] == "0.00" for s in data["streams"])
        return len(statements)

    few = await statements_for(2)
    assert await statements_for(50) == few
    assert few <= 8


async def test_a_schedule_with_no_utc_time_is_bad_input(client):
    # Found by tests/test_fuzz.py: storing these in UTC overflowed the datetime range (a crash).
    seller = await make_vendor(client, products=0)
    for at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"):
        error = await client.error(CREATE, {"t": "Show", "at": at}, token=seller.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "scheduledAt"}
    data = await client.data(CREATE, {"t": "Show", "at": "2030-06-01T12:00:00+02:00"}, token=seller.token)
    assert data["createStream"]["scheduledAt"].startswith("2030-06-01T10:00:00")


async def test_a_nul_in_a_title_or_a_video_url_is_bad_input(client):
    # Found by tests/test_fuzz.py: PostgreSQL refuses a NUL in text, so these were crashes there.
    seller = await make_vendor(client, products=0)
    error = await client.error(CREATE, {"t": "Sh\x00ow"}, token=seller.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "title"}
    stream = await create_stream(client, seller, products=[])
    error = await client.error(END, {"id": stream["id"], "a": "SAVE", "url": "https://x.example/\x00"}, token=seller.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "videoUrl"}
