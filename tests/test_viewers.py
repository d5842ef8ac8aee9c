"""Viewer sessions: join, heartbeat, leave, lapse, and the counts they keep."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from tortoise.transactions import in_transaction

from livecart.client.livecart_client import LivecartClient
from livecart.models import engagement
from livecart.models import stream as streams
from livecart.models.engagement import StreamViewer, StreamViewerUser
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models.clock import utcnow
from tests.realtime_support import VIEWERS, base_url, next_of
from tests.support import make_vendor, register

JOIN = "mutation($s: ID!) { joinStream(streamId: $s) { id streamId expiresAt viewerCount } }"
HEARTBEAT = "mutation($id: ID!) { viewerHeartbeat(sessionId: $id) { id streamId expiresAt viewerCount } }"
LEAVE = "mutation($id: ID!) { leaveStream(sessionId: $id) }"
COUNT = "query($s: ID!) { stream(id: $s) { viewerCount } }"


@pytest.fixture
def settings(settings):
    # The app's own sweeper stays out of these tests' way; they sweep when they mean to.
    # Rate limits off: the load test below sends everything from one address.
    return settings.replace(viewer_sweep_interval_seconds=3600, rate_limits=False)


async def live_stream(vendor, title="Show") -> LiveStream:
    stream = await streams.create_stream(vendor.vendor_id, title=title, product_ids=vendor.product_ids)
    return await streams.start_stream(stream)


async def join(client, stream_id, token=None) -> dict:
    return (await client.data(JOIN, {"s": str(stream_id)}, token=token))["joinStream"]


async def viewer_count(client, stream_id) -> int:
    return (await client.data(COUNT, {"s": str(stream_id)}))["stream"]["viewerCount"]


async def figures(stream_id) -> tuple[int, int, int]:
    row = await LiveStream.get(id=stream_id)
    return row.viewer_count, row.unique_viewers, row.peak_viewers


def row_id(session_id: str) -> int:
    """The database row of a session's public id ("<row>.<key>")."""
    return int(session_id.partition(".")[0])


async def lapse(*session_ids, seconds_ago=1) -> dt.datetime:
    """Moves the sessions' expiry into the past, as if their viewers had gone quiet."""
    lapsed_at = utcnow().replace(microsecond=0) - dt.timedelta(seconds=seconds_ago)
    await StreamViewer.filter(id__in=[row_id(s) for s in session_ids]).update(expires_at=lapsed_at)
    return lapsed_at


async def test_anonymous_and_logged_in_viewers_join_and_are_counted(client):
    seller = await make_vendor(client)
    viewer = await register(client, "viewer")
    stream = await live_stream(seller)

    before = utcnow()
    first = await join(client, stream.id)
    second = await join(client, stream.id, token=viewer.token)
    assert first["streamId"] == str(stream.id) and first["viewerCount"] == 1
    assert second["viewerCount"] == 2
    expires = dt.datetime.fromisoformat(first["expiresAt"])
    assert dt.timedelta(seconds=44) <= expires - before <= dt.timedelta(seconds=46)  # the 45 s default

    sessions = {s.id: s for s in await StreamViewer.filter(stream_id=stream.id)}
    assert sessions[row_id(first["id"])].user_id is None
    assert sessions[row_id(second["id"])].user_id == viewer.id
    assert all(s.is_active and s.left_at is None for s in sessions.values())
    assert await viewer_count(client, stream.id) == 2
    assert await figures(stream.id) == (2, 2, 2)


async def test_only_a_live_stream_can_be_joined(client):
    seller = await make_vendor(client)
    scheduled = await streams.create_stream(seller.vendor_id, title="Soon")
    error = await client.error(JOIN, {"s": str(scheduled.id)})
    assert error["extensions"]["code"] == "CONFLICT"
    ended = await live_stream(seller)
    await LiveStream.filter(id=ended.id).update(status=StreamStatus.ENDED, ended_at=utcnow())
    assert (await client.error(JOIN, {"s": str(ended.id)}))["extensions"]["code"] == "CONFLICT"
    assert (await client.error(JOIN, {"s": "9999"}))["extensions"]["code"] == "NOT_FOUND"
    assert (await client.error(JOIN, {"s": "x"}))["extensions"]["code"] == "BAD_USER_INPUT"
    assert await StreamViewer.all().count() == 0


async def test_a_user_counts_once_among_unique_viewers_each_anonymous_session_once(client):
    seller = await make_vendor(client)
    viewer = await register(client, "viewer")
    stream = await live_stream(seller)
    a = await join(client, stream.id, token=viewer.token)
    await client.data(LEAVE, {"id": a["id"]}, token=viewer.token)
    await join(client, stream.id, token=viewer.token)
    await join(client, stream.id, token=viewer.token)  # a second tab: the same person
    await join(client, stream.id)
    await join(client, stream.id)
    assert await figures(stream.id) == (3, 3, 3)
    assert await StreamViewerUser.filter(stream_id=stream.id).count() == 1


async def test_heartbeat_renews_and_leave_closes(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    session = await join(client, stream.id)
    await join(client, stream.id)

    renewed = (await client.data(HEARTBEAT, {"id": session["id"]}))["viewerHeartbeat"]
    assert renewed["id"] == session["id"] and renewed["viewerCount"] == 2
    assert renewed["expiresAt"] >= session["expiresAt"]
    row = await StreamViewer.get(id=row_id(session["id"]))
    assert row.expires_at == dt.datetime.fromisoformat(renewed["expiresAt"])

    assert (await client.data(LEAVE, {"id": session["id"]}))["leaveStream"] is True
    assert (await client.data(LEAVE, {"id": session["id"]}))["leaveStream"] is False  # already gone
    row = await StreamViewer.get(id=row_id(session["id"]))
    assert row.is_active is False and row.left_at is not None and row.left_at >= row.joined_at
    assert await viewer_count(client, stream.id) == 1
    assert await figures(stream.id) == (1, 2, 2)

    error = await client.error(HEARTBEAT, {"id": session["id"]})
    assert error["extensions"]["code"] == "CONFLICT"  # a closed session is not revived: join again


async def test_unknown_or_someone_elses_session_is_not_found(client):
    seller = await make_vendor(client)
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    stream = await live_stream(seller)
    hers = await join(client, stream.id, token=alice.token)
    for query in (HEARTBEAT, LEAVE):
        assert (await client.error(query, {"id": "424242"}))["extensions"]["code"] == "NOT_FOUND"
        assert (await client.error(query, {"id": hers["id"]}, token=bob.token))["extensions"]["code"] == "NOT_FOUND"
        assert (await client.error(query, {"id": hers["id"]}))["extensions"]["code"] == "NOT_FOUND"
    assert (await client.error(LEAVE, {"id": "nope"}))["extensions"]["code"] == "BAD_USER_INPUT"
    assert await figures(stream.id) == (1, 1, 1)


async def test_an_anonymous_session_answers_only_to_its_whole_id(client):
    """Its row id alone (they count up) or a wrong key cannot renew or end someone's session."""
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    session = await join(client, stream.id)
    number, _, key = session["id"].partition(".")
    assert len(key) >= 16
    for guess in (number, f"{number}.", f"{number}.{'x' * len(key)}", f"{int(number) + 1}.{key}"):
        for query in (HEARTBEAT, LEAVE):
            assert (await client.error(query, {"id": guess}))["extensions"]["code"] == "NOT_FOUND", guess
    assert (await client.data(HEARTBEAT, {"id": session["id"]}))["viewerHeartbeat"]["id"] == session["id"]
    assert (await client.data(LEAVE, {"id": session["id"]}))["leaveStream"] is True


async def test_lapsed_sessions_stop_counting_and_the_sweeper_closes_them(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    other = await live_stream(seller, "Other")
    quiet = await join(client, stream.id)
    watching = await join(client, stream.id)
    elsewhere = await join(client, other.id)
    lapsed_at = await lapse(quiet["id"], elsewhere["id"])

    # At once, before any sweep: the API no longer counts them, nor renews them.
    assert await viewer_count(client, stream.id) == 1
    async with LivecartClient(base_url(client)) as watcher:
        counts = watcher.subscribe(VIEWERS, {"s": str(stream.id)})
        assert (await next_of(counts))["viewerCount"]["count"] == 1  # the subscription's first word agrees
        await counts.aclose()
    assert await viewer_count(client, other.id) == 0
    assert (await client.data(HEARTBEAT, {"id": watching["id"]}))["viewerHeartbeat"]["viewerCount"] == 1
    assert (await client.error(HEARTBEAT, {"id": quiet["id"]}))["extensions"]["code"] == "CONFLICT"

    # The sweep closes them in the history, as having left when they lapsed.
    from livecart.resolvers.engagement import sweep_lapsed_sessions
    from livecart.server.appkeys import BROKER

    changed = await sweep_lapsed_sessions(client.http.server.app[BROKER])
    assert changed == {stream.id: 1, other.id: 0}
    rows = {s.id: s for s in await StreamViewer.all()}
    assert rows[row_id(quiet["id"])].is_active is False and rows[row_id(quiet["id"])].left_at == lapsed_at
    assert rows[row_id(elsewhere["id"])].left_at == lapsed_at
    assert rows[row_id(watching["id"])].is_active is True
    assert await figures(stream.id) == (1, 2, 2)
    assert await figures(other.id) == (0, 1, 1)
    assert await sweep_lapsed_sessions(client.http.server.app[BROKER]) == {}  # nothing left to close
    assert (await client.data(LEAVE, {"id": quiet["id"]}))["leaveStream"] is False


async def test_peak_counts_only_sessions_active_at_one_time(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    first = await join(client, stream.id)
    second = await join(client, stream.id)
    await lapse(first["id"], second["id"])
    # Not swept yet: the join closes them first, so the peak is not pushed to 3.
    third = await join(client, stream.id)
    assert third["viewerCount"] == 1
    assert await figures(stream.id) == (1, 3, 2)
    assert await StreamViewer.filter(stream_id=stream.id, is_active=True).count() == 1


async def test_closing_a_streams_sessions_inside_the_callers_transaction(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    await join(client, stream.id)
    lapsed = await join(client, stream.id)
    lapsed_at = await lapse(lapsed["id"])
    now = utcnow()

    async with in_transaction():
        closed = await engagement.close_sessions_of_stream(stream.id, now)
        await LiveStream.filter(id=stream.id).update(status=StreamStatus.ENDED, ended_at=now)

    assert closed == 2
    assert await figures(stream.id) == (0, 2, 2)
    sessions = await StreamViewer.filter(stream_id=stream.id).order_by("id")
    assert [s.is_active for s in sessions] == [False, False]
    assert sessions[0].left_at == now and sessions[1].left_at == lapsed_at
    assert await engagement.close_sessions_of_stream(stream.id, now) == 0
    assert (await client.error(JOIN, {"s": str(stream.id)}))["extensions"]["code"] == "CONFLICT"


async def test_two_hundred_concurrent_joins_reactions_and_comments_keep_every_count_exact(client):
    from livecart.models.engagement import InteractionType, StreamInteraction

    seller = await make_vendor(client)
    stream = await live_stream(seller)
    users = [await register(client, f"fan{i:02d}") for i in range(20)]
    react = "mutation($s: ID!, $k: ReactionKind!) { react(streamId: $s, kind: $k) { likes } }"
    post = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"
    s = str(stream.id)

    calls = []
    for i in range(80):  # half anonymous, half by the users (each joins twice: two tabs, one viewer)
        calls.append(client.data(JOIN, {"s": s}, token=users[(i // 2) % 20].token if i % 2 else None))
    for i in range(60):  # three reactions from each user, racing one another
        calls.append(client.data(react, {"s": s, "k": ("LIKE", "DISLIKE")[(i // 20 + i) % 2]}, token=users[i % 20].token))
    for i in range(60):
        calls.append(client.data(post, {"s": s, "t": f"hello {i}"}, token=users[i % 20].token))
    assert len(calls) == 200
    await asyncio.gather(*calls)

    row = await LiveStream.get(id=stream.id)
    active = await StreamViewer.filter(stream_id=stream.id, is_active=True).count()
    anonymous = await StreamViewer.filter(stream_id=stream.id, user_id__isnull=True).count()
    watching_users = await StreamViewerUser.filter(stream_id=stream.id).count()
    assert (active, anonymous, watching_users) == (60, 40, 20)
    assert await StreamViewer.filter(stream_id=stream.id, user_id__isnull=False, tabs=2).count() == 20
    assert (row.viewer_count, row.peak_viewers, row.unique_viewers) == (60, 60, anonymous + watching_users)
    assert await viewer_count(client, stream.id) == 60

    reactions = StreamInteraction.filter(stream_id=stream.id)
    likes = await reactions.filter(interaction_type=InteractionType.LIKE).count()
    dislikes = await reactions.filter(interaction_type=InteractionType.DISLIKE).count()
    assert (row.likes, row.dislikes) == (likes, dislikes) and likes + dislikes == 20  # one each
    comments = await reactions.filter(interaction_type=InteractionType.COMMENT).count()
    assert row.comment_count == comments == 60


async def test_the_apps_sweeper_closes_lapsed_sessions_on_its_own(aiohttp_client, settings):
    from livecart.server.app import create_app
    from tests.support import GraphQLClient

    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(viewer_sweep_interval_seconds=1))))
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    session = await join(client, stream.id)
    await lapse(session["id"])
    for _ in range(100):  # wait for the background pass, not for a fixed time
        if not (await StreamViewer.get(id=row_id(session["id"]))).is_active:
            break
        await asyncio.sleep(0.1)
    assert (await StreamViewer.get(id=row_id(session["id"]))).is_active is False
    assert await figures(stream.id) == (0, 1, 1)


async def test_joining_a_stream_id_beyond_the_key_column_is_bad_input(client):
    # Found by tests/test_fuzz.py: on PostgreSQL this was a crash ("value out of int32 range").
    error = await client.error(JOIN, {"s": "2147483648"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "streamId"}
    error = await client.error(HEARTBEAT, {"id": "2147483648"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "sessionId"}


JOIN_AS_BROWSER = "mutation($s: ID!, $b: String) { joinStream(streamId: $s, browserId: $b) { id viewerCount } }"
ACTIVE_VIEWERS = "query($s: ID!) { stream(id: $s) { activeViewers { user { username } } } }"


async def test_a_persons_tabs_are_one_viewer_until_the_last_leaves(client):
    seller = await make_vendor(client)
    viewer = await register(client, "viewer")
    stream = await live_stream(seller)
    first = await join(client, stream.id, token=viewer.token)
    second = await join(client, stream.id, token=viewer.token)
    assert second["id"] == first["id"] and second["viewerCount"] == 1
    listed = (await client.data(ACTIVE_VIEWERS, {"s": str(stream.id)}, token=seller.token))["stream"]["activeViewers"]
    assert listed == [{"user": {"username": "viewer"}}]  # listed once

    assert (await client.data(LEAVE, {"id": first["id"]}, token=viewer.token))["leaveStream"] is True
    assert await viewer_count(client, stream.id) == 1  # the other tab still watches
    assert (await client.data(LEAVE, {"id": second["id"]}, token=viewer.token))["leaveStream"] is True
    assert await viewer_count(client, stream.id) == 0
    assert (await client.data(LEAVE, {"id": second["id"]}, token=viewer.token))["leaveStream"] is False
    assert await figures(stream.id) == (0, 1, 1)


async def test_an_anonymous_browsers_tabs_share_its_id_and_other_browsers_do_not(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    s = str(stream.id)
    a = (await client.data(JOIN_AS_BROWSER, {"s": s, "b": "browser-one-abcdef"}))["joinStream"]
    b = (await client.data(JOIN_AS_BROWSER, {"s": s, "b": "browser-one-abcdef"}))["joinStream"]
    c = (await client.data(JOIN_AS_BROWSER, {"s": s, "b": "browser-two-abcdef"}))["joinStream"]
    d = (await client.data(JOIN_AS_BROWSER, {"s": s, "b": None}))["joinStream"]
    assert a["id"] == b["id"] and len({a["id"], c["id"], d["id"]}) == 3
    assert d["viewerCount"] == 3 and await figures(stream.id) == (3, 3, 3)
    # A lapsed session is not handed out again: the browser starts a new one.
    await lapse(a["id"])
    again = (await client.data(JOIN_AS_BROWSER, {"s": s, "b": "browser-one-abcdef"}))["joinStream"]
    assert again["id"] != a["id"] and again["viewerCount"] == 3


@pytest.mark.parametrize("browser_id", ["short", "x" * 65, "has space in it", "<script>alert</script>"])
async def test_a_malformed_browser_id_is_bad_input_and_joins_nothing(client, browser_id):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    error = await client.error(JOIN_AS_BROWSER, {"s": str(stream.id), "b": browser_id})
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["argument"] == "browserId"
    assert await StreamViewer.filter(stream_id=stream.id).count() == 0
