"""Chat: posting, cleaning, paging and deleting comments, with exact counts."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from strawberry.dataloader import DataLoader

from livecart.models import chat
from livecart.models import stream as streams
from livecart.models.engagement import InteractionType, StreamInteraction
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models.clock import utcnow
from tests.support import make_vendor, register

POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id streamId text createdAt author { username } } }"
DELETE = "mutation($id: ID!) { deleteComment(id: $id) }"
PAGE = "query($s: ID!, $n: Int!, $b: ID) { stream(id: $s) { commentCount comments(limit: $n, before: $b) { id text } } }"


@pytest.fixture
def settings(settings):
    # These tests post bursts to check paging and counts; the chat rate limit has its own tests (test_ratelimit.py).
    return settings.replace(rate_limits=False)


async def live_stream(vendor, title="Show") -> LiveStream:
    stream = await streams.create_stream(vendor.vendor_id, title=title, product_ids=vendor.product_ids)
    return await streams.start_stream(stream)


async def post(client, stream_id, text, token) -> dict:
    return (await client.data(POST, {"s": str(stream_id), "t": text}, token=token))["postComment"]


async def page(client, stream_id, limit=50, before=None) -> dict:
    return (await client.data(PAGE, {"s": str(stream_id), "n": limit, "b": before}))["stream"]


async def assert_count_matches_rows(stream_id: int) -> None:
    visible = await StreamInteraction.filter(
        stream_id=stream_id, interaction_type=InteractionType.COMMENT, deleted_at__isnull=True
    ).count()
    assert (await LiveStream.get(id=stream_id)).comment_count == visible


async def test_a_comment_is_trimmed_cleaned_and_stored_as_typed(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream = await live_stream(seller)
    comment = await post(client, stream.id, "  \t<b>Hi</b> & \x00bye\x07\r\nsee you\u200b \n ", alice.token)
    assert comment["text"] == "<b>Hi</b> & bye\nsee you\u200b"  # markup kept: escaping is the renderer's job
    assert comment["streamId"] == str(stream.id) and comment["author"] == {"username": "alice"}
    assert comment["createdAt"]
    row = await StreamInteraction.get(id=int(comment["id"]))
    assert row.comment_text == comment["text"] and row.user_id == alice.id
    assert await page(client, stream.id) == {"commentCount": 1, "comments": [{"id": comment["id"], "text": comment["text"]}]}


async def test_comment_length_is_counted_after_trimming(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream = await live_stream(seller)
    assert len((await post(client, stream.id, "  " + "é" * 500 + "\n ", alice.token))["text"]) == 500
    assert (await post(client, stream.id, "x", alice.token))["text"] == "x"
    for text in ("", "   \n\t ", "\x00\x01", "y" * 501):
        error = await client.error(POST, {"s": str(stream.id), "t": text}, token=alice.token)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "text"}, text
    await assert_count_matches_rows(stream.id)
    assert (await LiveStream.get(id=stream.id)).comment_count == 2


async def test_only_a_live_stream_takes_comments(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    scheduled = await streams.create_stream(seller.vendor_id, title="Soon")
    ended = await live_stream(seller)
    await LiveStream.filter(id=ended.id).update(status=StreamStatus.ENDED, ended_at=utcnow())
    for stream_id in (scheduled.id, ended.id):
        error = await client.error(POST, {"s": str(stream_id), "t": "hello"}, token=alice.token)
        assert error["extensions"]["code"] == "CONFLICT"
    error = await client.error(POST, {"s": "9999", "t": "hello"}, token=alice.token)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert await StreamInteraction.all().count() == 0
    assert (await LiveStream.get(id=ended.id)).comment_count == 0


async def test_anonymous_posting_and_deleting_are_sent_to_log_in_and_back(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream = await live_stream(seller)
    error = await client.error(POST, {"s": str(stream.id), "t": "hello"})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["loginUrl"].endswith(f"return=/live/{stream.id}")
    comment = await post(client, stream.id, "hello", alice.token)
    error = await client.error(DELETE, {"id": comment["id"]})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["loginUrl"].endswith(f"return=/live/{stream.id}")  # the comment's stream
    assert (await page(client, stream.id))["commentCount"] == 1


async def test_deleting_by_author_or_stream_owner_only(client):
    seller = await make_vendor(client)
    other_seller = await make_vendor(client, "seller2")
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    stream = await live_stream(seller)
    first = await post(client, stream.id, "first", alice.token)
    second = await post(client, stream.id, "second", alice.token)
    third = await post(client, stream.id, "third", bob.token)

    for stranger in (bob, other_seller):
        error = await client.error(DELETE, {"id": first["id"]}, token=stranger.token)
        assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await client.data(DELETE, {"id": first["id"]}, token=alice.token))["deleteComment"] is True
    assert (await client.data(DELETE, {"id": third["id"]}, token=seller.token))["deleteComment"] is True
    assert await page(client, stream.id) == {"commentCount": 1, "comments": [{"id": second["id"], "text": "second"}]}

    again = await client.error(DELETE, {"id": first["id"]}, token=alice.token)
    assert again["extensions"]["code"] == "NOT_FOUND"  # a deleted comment is gone
    assert (await client.error(DELETE, {"id": "9999"}, token=alice.token))["extensions"]["code"] == "NOT_FOUND"
    row = await StreamInteraction.get(id=int(first["id"]))
    assert row.deleted_at is not None and row.comment_text == "first"  # soft delete keeps the record
    await assert_count_matches_rows(stream.id)


async def test_a_reaction_is_not_a_comment(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream = await live_stream(seller)
    await chat.react(stream.id, alice.id, InteractionType.LIKE)
    like = await StreamInteraction.get(stream_id=stream.id)
    error = await client.error(DELETE, {"id": str(like.id)}, token=alice.token)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (await LiveStream.get(id=stream.id)).likes == 1


async def test_pages_are_newest_first_oldest_first_within_and_stable(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream = await live_stream(seller)
    other = await live_stream(seller, "Other")
    await post(client, other.id, "elsewhere", alice.token)
    ids = [(await post(client, stream.id, f"c{i}", alice.token))["id"] for i in range(7)]

    newest = await page(client, stream.id, limit=3)
    assert [c["text"] for c in newest["comments"]] == ["c4", "c5", "c6"]
    # New comments arrive while the reader scrolls back: older pages do not shift.
    await post(client, stream.id, "c7", alice.token)
    older = await page(client, stream.id, limit=3, before=newest["comments"][0]["id"])
    assert [c["text"] for c in older["comments"]] == ["c1", "c2", "c3"]
    oldest = await page(client, stream.id, limit=3, before=older["comments"][0]["id"])
    assert [c["id"] for c in oldest["comments"]] == [ids[0]]
    assert (await page(client, stream.id, limit=3, before=ids[0]))["comments"] == []
    assert [c["text"] for c in (await page(client, stream.id, limit=200))["comments"]] == [f"c{i}" for i in range(8)]

    for limit in (0, -1, 201):
        error = await client.error(PAGE, {"s": str(stream.id), "n": limit})
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "limit"}
    error = await client.error(PAGE, {"s": str(stream.id), "n": 5, "b": "abc"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "before"}


async def test_comment_by_id_turns_an_event_into_a_comment(client):
    """The real-time path's helper: a deleted comment is no longer shown."""
    from livecart.schema.engagement import comment_by_id

    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream = await live_stream(seller)
    row = await chat.post_comment(stream.id, alice.id, "  hi  ")

    def request_info():  # a fresh request: its own DataLoaders, as Context.loader makes them
        loaders: dict = {}
        context = SimpleNamespace(loader=lambda batch: loaders.setdefault(batch, DataLoader(load_fn=batch)))
        return SimpleNamespace(context=context)

    comment = await comment_by_id(request_info(), row.id)
    assert (comment.id, comment.text, comment.stream_id) == (str(row.id), "hi", str(stream.id))
    await chat.delete_comment(row, alice.id, utcnow())
    assert await comment_by_id(request_info(), row.id) is None
