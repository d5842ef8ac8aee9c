"""Reactions: one per user and stream, exact counts, and LiveStream's batched figures."""
from __future__ import annotations

import asyncio

from livecart.models import chat, engagement
from livecart.models import stream as streams
from livecart.models.engagement import InteractionType, StreamInteraction
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models.clock import utcnow
from tests.support import count_queries, make_vendor, register

REACT = "mutation($s: ID!, $k: ReactionKind!) { react(streamId: $s, kind: $k) { streamId likes dislikes } }"
CLEAR = "mutation($s: ID!) { clearReaction(streamId: $s) { streamId likes dislikes } }"
MINE = "query($s: ID!) { stream(id: $s) { likes dislikes myReaction } }"


async def live_stream(vendor, title="Show") -> LiveStream:
    stream = await streams.create_stream(vendor.vendor_id, title=title, product_ids=vendor.product_ids)
    return await streams.start_stream(stream)


async def react(client, stream_id, kind, token) -> dict:
    return (await client.data(REACT, {"s": str(stream_id), "k": kind}, token=token))["react"]


async def assert_counters_match_rows(stream_id: int) -> None:
    row = await LiveStream.get(id=stream_id)
    likes = await StreamInteraction.filter(stream_id=stream_id, interaction_type=InteractionType.LIKE).count()
    dislikes = await StreamInteraction.filter(stream_id=stream_id, interaction_type=InteractionType.DISLIKE).count()
    assert (row.likes, row.dislikes) == (likes, dislikes)


async def test_one_reaction_per_user_replaced_and_cleared(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    stream = await live_stream(seller)

    assert await react(client, stream.id, "LIKE", alice.token) == {"streamId": str(stream.id), "likes": 1, "dislikes": 0}
    assert await react(client, stream.id, "LIKE", alice.token) == {"streamId": str(stream.id), "likes": 1, "dislikes": 0}
    assert await react(client, stream.id, "LIKE", bob.token) == {"streamId": str(stream.id), "likes": 2, "dislikes": 0}
    assert await react(client, stream.id, "DISLIKE", alice.token) == {"streamId": str(stream.id), "likes": 1, "dislikes": 1}

    assert (await client.data(MINE, {"s": str(stream.id)}, token=alice.token))["stream"] == {
        "likes": 1, "dislikes": 1, "myReaction": "DISLIKE"}
    assert (await client.data(MINE, {"s": str(stream.id)}, token=bob.token))["stream"]["myReaction"] == "LIKE"
    assert (await client.data(MINE, {"s": str(stream.id)}))["stream"]["myReaction"] is None  # anonymous

    cleared = (await client.data(CLEAR, {"s": str(stream.id)}, token=alice.token))["clearReaction"]
    assert cleared == {"streamId": str(stream.id), "likes": 1, "dislikes": 0}
    again = (await client.data(CLEAR, {"s": str(stream.id)}, token=alice.token))["clearReaction"]
    assert again == cleared  # nothing left to clear
    assert (await client.data(MINE, {"s": str(stream.id)}, token=alice.token))["stream"]["myReaction"] is None
    assert await StreamInteraction.filter(stream_id=stream.id).count() == 1
    await assert_counters_match_rows(stream.id)


async def test_anonymous_reactions_are_sent_to_log_in_and_back(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    for query, variables in ((REACT, {"s": str(stream.id), "k": "LIKE"}), (CLEAR, {"s": str(stream.id)})):
        error = await client.error(query, variables)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert error["extensions"]["loginUrl"].endswith(f"return=/live/{stream.id}")
    # The way back names the stream as its page does, never the id as sent.
    padded = await client.error(REACT, {"s": f" {stream.id}", "k": "LIKE"})
    assert padded["extensions"]["loginUrl"].endswith(f"return=/live/{stream.id}")
    malformed = await client.error(REACT, {"s": "../seller", "k": "LIKE"})
    assert malformed["extensions"]["code"] == "UNAUTHENTICATED" and "return=" not in malformed["extensions"]["loginUrl"]
    assert await StreamInteraction.all().count() == 0


async def test_unknown_stream_and_bad_kind(client):
    alice = await register(client, "alice")
    error = await client.error(REACT, {"s": "9999", "k": "LIKE"}, token=alice.token)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (await client.error(CLEAR, {"s": "9999"}, token=alice.token))["extensions"]["code"] == "NOT_FOUND"
    error = await client.error(REACT, {"s": "1", "k": "LOVE"}, token=alice.token)
    assert error["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED")


async def test_reactions_are_kept_on_an_ended_stream(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream = await live_stream(seller)
    await react(client, stream.id, "LIKE", alice.token)
    await LiveStream.filter(id=stream.id).update(status=StreamStatus.ENDED, ended_at=utcnow())
    assert (await client.data(MINE, {"s": str(stream.id)}, token=alice.token))["stream"] == {
        "likes": 1, "dislikes": 0, "myReaction": "LIKE"}


async def test_one_users_concurrent_reactions_never_make_two_rows(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream = await live_stream(seller)
    kinds = [InteractionType.LIKE, InteractionType.DISLIKE, None] * 10
    # Straight at the models as well as through the API: both race on the same row.
    await asyncio.gather(
        *(chat.react(stream.id, alice.id, kind) for kind in kinds),
        *(react(client, stream.id, "LIKE", alice.token) for _ in range(10)),
    )
    assert await StreamInteraction.filter(stream_id=stream.id, user_id=alice.id).count() <= 1
    await assert_counters_match_rows(stream.id)
    final = await react(client, stream.id, "DISLIKE", alice.token)
    assert (final["likes"], final["dislikes"]) == (0, 1)
    await assert_counters_match_rows(stream.id)


FIFTY = "{ liveStreams(first: 50) { id likes dislikes commentCount viewerCount myReaction comments(limit: 2) { text author { username } } } }"


async def test_fifty_streams_figures_in_constant_statements(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    stream_ids = [(await live_stream(seller, f"Show {i}")).id for i in range(50)]
    for i, stream_id in enumerate(stream_ids):
        if i % 2:
            await chat.react(stream_id, alice.id, InteractionType.LIKE if i % 4 == 1 else InteractionType.DISLIKE)
        for n in range(i % 4):
            await chat.post_comment(stream_id, alice.id, f"comment {n}")
        if i % 3 == 0:
            await engagement.join_stream(stream_id, None, utcnow(), 45)

    with count_queries() as statements:
        data = await client.data(FIFTY, token=alice.token)
    shows = {int(s["id"]): s for s in data["liveStreams"]}
    assert len(shows) == 50
    for i, stream_id in enumerate(stream_ids):
        show = shows[stream_id]
        expected_reaction = None if i % 2 == 0 else ("LIKE" if i % 4 == 1 else "DISLIKE")
        assert show["myReaction"] == expected_reaction
        assert (show["likes"], show["dislikes"]) == (int(expected_reaction == "LIKE"), int(expected_reaction == "DISLIKE"))
        assert show["commentCount"] == i % 4
        assert [c["text"] for c in show["comments"]] == [f"comment {n}" for n in range(i % 4)][-2:]
        assert show["viewerCount"] == int(i % 3 == 0)
    # caller, streams, viewer counts, reactions, comment ids, comment rows, authors: each once.
    assert len(statements) <= 8, statements
