"""Moderation (issue 17): moderators, slow mode, timeouts and bans, blocked terms, review of
links, pinning, the audit trail, and what reaches open pages over a real WebSocket."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from livecart.client.livecart_client import LivecartClient, LivecartError
from livecart.models.engagement import InteractionType, StreamInteraction
from livecart.models.moderation import BlockedTerm, ChatRestriction, ModerationAction
from livecart.models.stream import LiveStream
from tests.realtime_support import ORDERS, STATS, base_url, listening, live_stream, next_of
from tests.support import make_vendor, register

POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id text held authorRole } }"
DELETE = "mutation($id: ID!) { deleteComment(id: $id) }"
ADD_MOD = "mutation($v: ID!, $u: ID!) { addModerator(vendorId: $v, userId: $u) { id username } }"
REMOVE_MOD = "mutation($v: ID!, $u: ID!) { removeModerator(vendorId: $v, userId: $u) }"
MODS = "query($v: ID!) { moderators(vendorId: $v) { username } }"
SLOW = "mutation($s: ID!, $n: Int!) { setSlowMode(streamId: $s, seconds: $n) { slowModeSeconds } }"
HOLD = "mutation($s: ID!, $on: Boolean!) { setHoldLinksForReview(streamId: $s, enabled: $on) { holdLinksForReview } }"
TIMEOUT = """mutation($v: ID!, $u: ID!, $n: Int!, $r: String) {
  timeoutUser(vendorId: $v, userId: $u, durationSeconds: $n, reason: $r) { kind reason endsAt user { username } }
}"""
BAN = """mutation($v: ID!, $u: ID!, $r: String, $rm: Boolean) {
  banUser(vendorId: $v, userId: $u, reason: $r, removeComments: $rm) { kind reason endsAt }
}"""
LIFT = "mutation($v: ID!, $u: ID!) { liftRestriction(vendorId: $v, userId: $u) }"
RESTRICTIONS = "query($v: ID!) { chatRestrictions(vendorId: $v) { kind user { username } } }"
ADD_TERMS = "mutation($v: ID!, $t: [String!]!) { addBlockedTerms(vendorId: $v, terms: $t) }"
REMOVE_TERMS = "mutation($v: ID!, $t: [String!]!) { removeBlockedTerms(vendorId: $v, terms: $t) }"
PIN = "mutation($id: ID!) { pinComment(id: $id) { pinnedComment { id text } } }"
UNPIN = "mutation($s: ID!) { unpinComment(streamId: $s) }"
APPROVE = "mutation($id: ID!) { approveComment(id: $id) { id held } }"
REJECT = "mutation($id: ID!) { rejectComment(id: $id) }"
REACT = "mutation($s: ID!) { react(streamId: $s, kind: LIKE) { likes } }"
LOG = """query($v: ID!) { moderationLog(vendorId: $v) {
  action actor { username } targetUser { username } streamId commentId reason detail createdAt
} }"""
STREAM = """query($s: ID!) { stream(id: $s) {
  commentCount comments { id text authorRole } chat { slowModeSeconds holdLinksForReview pinnedComment { id } }
} }"""


@pytest.fixture
def settings(settings):
    # Slow mode is the rule under test here; the per-user comment rate limit has its own tests.
    return settings.replace(rate_limits=False)


async def shop(client, name="seller"):
    """A seller with a live stream, a moderator and two viewers."""
    seller = await make_vendor(client, name)
    stream = await live_stream(seller)
    mod = await register(client, f"{name}-mod")
    await client.data(ADD_MOD, {"v": str(seller.vendor_id), "u": str(mod.id)}, token=seller.token)
    ann = await register(client, f"{name}-ann")
    bob = await register(client, f"{name}-bob")
    return seller, stream, mod, ann, bob


async def post(client, stream_id, text, token) -> dict:
    return (await client.data(POST, {"s": str(stream_id), "t": text}, token=token))["postComment"]


async def stream_view(client, stream_id, token=None) -> dict:
    return (await client.data(STREAM, {"s": str(stream_id)}, token=token))["stream"]


def code(error: dict) -> str:
    return error["extensions"]["code"]


async def visible_count(stream_id: int) -> int:
    return await StreamInteraction.filter(
        stream_id=stream_id, interaction_type=InteractionType.COMMENT, deleted_at__isnull=True, held_at__isnull=True
    ).count()


# ---------------------------------------------------------------- moderators


async def test_the_owner_appoints_and_removes_moderators(client):
    seller, stream, mod, ann, bob = await shop(client)
    v = str(seller.vendor_id)
    assert (await client.data(MODS, {"v": v}, token=seller.token))["moderators"] == [{"username": "seller-mod"}]
    # A moderator reads the list but appoints no one; nor does anyone else.
    assert (await client.data(MODS, {"v": v}, token=mod.token))["moderators"] == [{"username": "seller-mod"}]
    assert code(await client.error(ADD_MOD, {"v": v, "u": str(ann.id)}, token=mod.token)) == "FORBIDDEN"
    assert code(await client.error(ADD_MOD, {"v": v, "u": str(ann.id)}, token=ann.token)) == "FORBIDDEN"
    assert code(await client.error(MODS, {"v": v}, token=ann.token)) == "FORBIDDEN"
    assert code(await client.error(ADD_MOD, {"v": v, "u": "999999"}, token=seller.token)) == "NOT_FOUND"
    assert code(await client.error(ADD_MOD, {"v": "999999", "u": str(ann.id)}, token=seller.token)) == "NOT_FOUND"
    error = await client.error(ADD_MOD, {"v": v, "u": str(seller.id)}, token=seller.token)
    assert code(error) == "BAD_USER_INPUT"
    assert (await client.data(REMOVE_MOD, {"v": v, "u": str(mod.id)}, token=seller.token))["removeModerator"] is True
    assert (await client.data(REMOVE_MOD, {"v": v, "u": str(mod.id)}, token=seller.token))["removeModerator"] is False
    # No longer a moderator: moderating is refused.
    comment = await post(client, stream.id, "hello", ann.token)
    assert code(await client.error(DELETE, {"id": comment["id"]}, token=mod.token)) == "FORBIDDEN"


async def test_a_moderator_deletes_comments_but_reads_nothing_of_the_owners(client):
    seller, stream, mod, ann, bob = await shop(client)
    comment = await post(client, stream.id, "buy my stuff", ann.token)
    # Another viewer may not delete it; a moderator may, and it leaves the count.
    assert code(await client.error(DELETE, {"id": comment["id"]}, token=bob.token)) == "FORBIDDEN"
    assert (await client.data(DELETE, {"id": comment["id"]}, token=mod.token))["deleteComment"] is True
    view = await stream_view(client, stream.id)
    assert view["commentCount"] == 0 == await visible_count(stream.id) and view["comments"] == []
    assert code(await client.error(DELETE, {"id": comment["id"]}, token=mod.token)) == "NOT_FOUND"

    for field in ("streamKey", "stats { revenue }", "orders { id }", "activeViewers { id }"):
        body = await client.execute(f'query($s: ID!) {{ stream(id: $s) {{ id {field} }} }}', {"s": str(stream.id)}, token=mod.token)
        name = field.split(" ")[0]
        assert body["data"]["stream"][name] is None, field
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], field
    for mutation in (
        'mutation($s: ID!) { startStream(id: $s) { id } }',
        'mutation($s: ID!) { endStream(id: $s, action: SAVE) { stream { id } } }',
    ):
        assert code(await client.error(mutation, {"s": str(stream.id)}, token=mod.token)) == "FORBIDDEN"
    assert code(await client.error(LOG, {"v": str(seller.vendor_id)}, token=mod.token)) == "FORBIDDEN"
    assert (await LiveStream.get(id=stream.id)).status.value == "live"


async def test_comments_carry_their_authors_role(client):
    seller, stream, mod, ann, bob = await shop(client)
    assert (await post(client, stream.id, "welcome", seller.token))["authorRole"] == "OWNER"
    await post(client, stream.id, "be nice", mod.token)
    await post(client, stream.id, "hi", ann.token)
    roles = [c["authorRole"] for c in (await stream_view(client, stream.id))["comments"]]
    assert roles == ["OWNER", "MODERATOR", "VIEWER"]
    me = 'query($s: ID!) { stream(id: $s) { myChatRole } }'
    assert (await client.data(me, {"s": str(stream.id)}, token=mod.token))["stream"]["myChatRole"] == "MODERATOR"
    assert (await client.data(me, {"s": str(stream.id)}))["stream"]["myChatRole"] is None


# ---------------------------------------------------------------- slow mode


async def test_slow_mode_refuses_a_comment_too_soon_with_retry_after(client):
    seller, stream, mod, ann, bob = await shop(client)
    s = str(stream.id)
    for bad in (-1, 1, 2, 121, 3600):
        assert code(await client.error(SLOW, {"s": s, "n": bad}, token=seller.token)) == "BAD_USER_INPUT", bad
    assert code(await client.error(SLOW, {"s": s, "n": 30}, token=ann.token)) == "FORBIDDEN"
    assert code(await client.error(SLOW, {"s": "999999", "n": 30}, token=seller.token)) == "NOT_FOUND"
    assert (await client.data(SLOW, {"s": s, "n": 30}, token=mod.token))["setSlowMode"] == {"slowModeSeconds": 30}
    assert (await stream_view(client, stream.id))["chat"]["slowModeSeconds"] == 30

    await post(client, stream.id, "first", ann.token)
    error = await client.error(POST, {"s": s, "t": "second"}, token=ann.token)
    assert code(error) == "RATE_LIMITED"
    assert 1 <= error["extensions"]["retryAfter"] <= 30 and error["extensions"]["slowModeSeconds"] == 30
    await post(client, stream.id, "bob is another user", bob.token)
    # The owner and moderators are exempt.
    for _ in range(2):
        await post(client, stream.id, "staff", seller.token)
        await post(client, stream.id, "staff", mod.token)
    assert await visible_count(stream.id) == 6 == (await stream_view(client, stream.id))["commentCount"]
    # Once the interval has passed (the earlier comment moved back in time), it is taken.
    await StreamInteraction.filter(stream_id=stream.id, user_id=ann.id).update(
        created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=31)
    )
    await post(client, stream.id, "second", ann.token)
    await client.data(SLOW, {"s": s, "n": 0}, token=seller.token)
    await post(client, stream.id, "third, slow mode off", ann.token)


async def test_slow_mode_takes_one_of_many_comments_sent_at_once(client):
    seller, stream, mod, ann, bob = await shop(client)
    await client.data(SLOW, {"s": str(stream.id), "n": 60}, token=seller.token)
    answers = await asyncio.gather(
        *(client.execute(POST, {"s": str(stream.id), "t": f"burst {n}"}, token=ann.token) for n in range(5))
    )
    codes = sorted(a["errors"][0]["extensions"]["code"] if a.get("errors") else "OK" for a in answers)
    assert codes == ["OK"] + ["RATE_LIMITED"] * 4
    assert await visible_count(stream.id) == 1 == (await stream_view(client, stream.id))["commentCount"]


# ---------------------------------------------------------------- timeouts and bans


async def test_a_timeout_refuses_comments_and_reactions_with_reason_and_end(client):
    seller, stream, mod, ann, bob = await shop(client)
    v, s = str(seller.vendor_id), str(stream.id)
    for bad in (0, -5, 14 * 24 * 3600 + 1):
        error = await client.error(TIMEOUT, {"v": v, "u": str(ann.id), "n": bad}, token=mod.token)
        assert code(error) == "BAD_USER_INPUT", bad
    assert code(await client.error(TIMEOUT, {"v": v, "u": str(ann.id), "n": 60, "r": "x" * 501}, token=mod.token)) == "BAD_USER_INPUT"
    assert code(await client.error(TIMEOUT, {"v": v, "u": str(ann.id), "n": 60}, token=bob.token)) == "FORBIDDEN"
    assert code(await client.error(TIMEOUT, {"v": v, "u": "999999", "n": 60}, token=mod.token)) == "NOT_FOUND"
    assert not await ChatRestriction.exists()

    timeout = (await client.data(TIMEOUT, {"v": v, "u": str(ann.id), "n": 600, "r": "x" * 500}, token=mod.token))["timeoutUser"]
    assert timeout["kind"] == "TIMEOUT" and timeout["endsAt"] and len(timeout["reason"]) == 500
    error = await client.error(POST, {"s": s, "t": "hello?"}, token=ann.token)
    assert code(error) == "FORBIDDEN"
    assert error["extensions"]["reason"] == "x" * 500 and error["extensions"]["restriction"] == "TIMEOUT"
    assert dt.datetime.fromisoformat(error["extensions"]["endsAt"]) == dt.datetime.fromisoformat(timeout["endsAt"])
    assert code(await client.error(REACT, {"s": s}, token=ann.token)) == "FORBIDDEN"
    assert await visible_count(stream.id) == 0
    # Another shop's streams are not concerned.
    other_seller = await make_vendor(client, "other")
    other = await live_stream(other_seller)
    await post(client, other.id, "fine here", ann.token)
    assert (await client.data(RESTRICTIONS, {"v": v}, token=seller.token))["chatRestrictions"] == [
        {"kind": "TIMEOUT", "user": {"username": "seller-ann"}}
    ]
    # A timeout ends by itself...
    await ChatRestriction.filter(user_id=ann.id).update(ends_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    await post(client, stream.id, "back", ann.token)
    assert (await client.data(RESTRICTIONS, {"v": v}, token=seller.token))["chatRestrictions"] == []
    # ...or is lifted.
    await client.data(TIMEOUT, {"v": v, "u": str(ann.id), "n": 60}, token=mod.token)
    assert (await client.data(LIFT, {"v": v, "u": str(ann.id)}, token=mod.token))["liftRestriction"] is True
    assert (await client.data(LIFT, {"v": v, "u": str(ann.id)}, token=mod.token))["liftRestriction"] is False
    await client.data(REACT, {"s": s}, token=ann.token)


async def test_a_ban_has_no_end_refuses_the_owner_and_oneself_and_can_remove_comments(client):
    seller, stream, mod, ann, bob = await shop(client)
    v, s = str(seller.vendor_id), str(stream.id)
    assert code(await client.error(BAN, {"v": v, "u": str(seller.id)}, token=mod.token)) == "BAD_USER_INPUT"
    assert code(await client.error(BAN, {"v": v, "u": str(mod.id)}, token=mod.token)) == "BAD_USER_INPUT"
    assert code(await client.error(BAN, {"v": v, "u": str(seller.id)}, token=seller.token)) == "BAD_USER_INPUT"
    assert code(await client.error(BAN, {"v": v, "u": "999999"}, token=seller.token)) == "NOT_FOUND"
    assert code(await client.error(BAN, {"v": v, "u": str(bob.id)}, token=ann.token)) == "FORBIDDEN"
    assert code(await client.error(BAN, {"v": v, "u": str(bob.id), "r": "y" * 501}, token=seller.token)) == "BAD_USER_INPUT"

    kept = await post(client, stream.id, "ann keeps this", ann.token)
    await client.data(BAN, {"v": v, "u": str(ann.id), "r": "spam"}, token=mod.token)
    error = await client.error(POST, {"s": s, "t": "let me in"}, token=ann.token)
    assert code(error) == "FORBIDDEN" and error["extensions"]["reason"] == "spam" and error["extensions"]["endsAt"] is None
    assert [c["id"] for c in (await stream_view(client, stream.id))["comments"]] == [kept["id"]]

    spam = [await post(client, stream.id, f"spam {n}", bob.token) for n in range(3)]
    await post(client, stream.id, "ann's friend", mod.token)
    ban = (await client.data(BAN, {"v": v, "u": str(bob.id), "r": "spam", "rm": True}, token=seller.token))["banUser"]
    assert ban == {"kind": "BAN", "reason": "spam", "endsAt": None}
    view = await stream_view(client, stream.id)
    assert [c["text"] for c in view["comments"]] == ["ann keeps this", "ann's friend"]
    assert view["commentCount"] == 2 == await visible_count(stream.id)
    assert all(await StreamInteraction.filter(id__in=[int(c["id"]) for c in spam]).values_list("deleted_at", flat=True))
    assert (await client.data(LIFT, {"v": v, "u": str(bob.id)}, token=seller.token))["liftRestriction"] is True
    await post(client, stream.id, "sorry", bob.token)


# ---------------------------------------------------------------- blocked terms


async def test_blocked_terms_refuse_whole_words_however_spelled(client):
    seller, stream, mod, ann, bob = await shop(client)
    v, s = str(seller.vendor_id), str(stream.id)
    terms = (await client.data(ADD_TERMS, {"v": v, "t": ["Spam", "cheap pills", "ＳＰＡＭ"]}, token=mod.token))["addBlockedTerms"]
    assert terms == ["cheap pills", "spam"]
    assert code(await client.error(ADD_TERMS, {"v": v, "t": ["x"]}, token=ann.token)) == "FORBIDDEN"
    for text in ("SPAM here", "ｓｐａｍ", "sp\u200bam!", "s\u00adpam", "ѕраm", "Cheap   Pills now", "𝐬𝐩𝐚𝐦"):
        error = await client.error(POST, {"s": s, "t": text}, token=ann.token)
        assert code(error) == "BAD_USER_INPUT" and error["extensions"]["rule"] == "BLOCKED_TERM", text
    assert await StreamInteraction.filter(stream_id=stream.id).count() == 0  # nothing stored
    for text in ("spammer", "antispam", "cheap pillsbury"):  # not whole words
        await post(client, stream.id, text, ann.token)
    after = (await client.data(REMOVE_TERMS, {"v": v, "t": ["SPAM"]}, token=seller.token))["removeBlockedTerms"]
    assert after == ["cheap pills"]
    await post(client, stream.id, "spam is fine now", ann.token)


async def test_blocked_terms_are_bounded(client):
    seller, stream, mod, ann, bob = await shop(client)
    v = str(seller.vendor_id)
    assert code(await client.error(ADD_TERMS, {"v": v, "t": ["x" * 101]}, token=seller.token)) == "BAD_USER_INPUT"
    assert code(await client.error(ADD_TERMS, {"v": v, "t": ["  "]}, token=seller.token)) == "BAD_USER_INPUT"
    await client.data(ADD_TERMS, {"v": v, "t": ["y" * 100]}, token=seller.token)
    await BlockedTerm.bulk_create([BlockedTerm(vendor_id=seller.vendor_id, term=f"term{n}") for n in range(999)])
    error = await client.error(ADD_TERMS, {"v": v, "t": ["one more"]}, token=seller.token)
    assert code(error) == "BAD_USER_INPUT" and "1000" in error["message"]
    assert await BlockedTerm.filter(vendor_id=seller.vendor_id).count() == 1000
    await client.data(ADD_TERMS, {"v": v, "t": ["term5"]}, token=seller.token)  # already there: no more kept


# ---------------------------------------------------------------- held for review


async def test_comments_with_links_wait_for_approval_seen_only_by_their_author(client):
    seller, stream, mod, ann, bob = await shop(client)
    s = str(stream.id)
    assert code(await client.error(HOLD, {"s": s, "on": True}, token=ann.token)) == "FORBIDDEN"
    await client.data(HOLD, {"s": s, "on": True}, token=mod.token)
    plain = await post(client, stream.id, "no link here", ann.token)
    held = await post(client, stream.id, "buy my stuff at spam.example", ann.token)
    other = await post(client, stream.id, "see https://x.test/a", ann.token)
    assert not plain["held"] and held["held"] and other["held"]
    assert not (await post(client, stream.id, "our shop: shop.example", seller.token))["held"]  # staff are not held

    view = await stream_view(client, stream.id, bob.token)
    assert [c["text"] for c in view["comments"]] == ["no link here", "our shop: shop.example"]
    assert view["commentCount"] == 2
    mine = 'query($s: ID!) { stream(id: $s) { myHeldComments { id text held } } }'
    assert [c["id"] for c in (await client.data(mine, {"s": s}, token=ann.token))["stream"]["myHeldComments"]] == [held["id"], other["id"]]
    assert (await client.data(mine, {"s": s}, token=bob.token))["stream"]["myHeldComments"] == []
    review = 'query($s: ID!) { stream(id: $s) { heldComments { id text } } }'
    assert [c["id"] for c in (await client.data(review, {"s": s}, token=mod.token))["stream"]["heldComments"]] == [held["id"], other["id"]]
    body = await client.execute(review, {"s": s}, token=bob.token)
    assert body["data"]["stream"]["heldComments"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Held comments can be neither pinned nor deleted as visible ones.
    assert code(await client.error(PIN, {"id": held["id"]}, token=mod.token)) == "NOT_FOUND"

    assert code(await client.error(APPROVE, {"id": held["id"]}, token=bob.token)) == "FORBIDDEN"
    assert (await client.data(APPROVE, {"id": held["id"]}, token=mod.token))["approveComment"] == {"id": held["id"], "held": False}
    assert code(await client.error(APPROVE, {"id": held["id"]}, token=mod.token)) == "NOT_FOUND"
    assert (await client.data(REJECT, {"id": other["id"]}, token=seller.token))["rejectComment"] is True
    view = await stream_view(client, stream.id)
    assert [c["text"] for c in view["comments"]] == ["no link here", "buy my stuff at spam.example", "our shop: shop.example"]
    assert view["commentCount"] == 3 == await visible_count(stream.id)
    assert (await client.data(mine, {"s": s}, token=ann.token))["stream"]["myHeldComments"] == []


# ---------------------------------------------------------------- pinning


async def test_one_pinned_comment_per_stream(client):
    seller, stream, mod, ann, bob = await shop(client)
    first = await post(client, stream.id, "first", ann.token)
    second = await post(client, stream.id, "second", bob.token)
    assert code(await client.error(PIN, {"id": first["id"]}, token=ann.token)) == "FORBIDDEN"
    assert code(await client.error(PIN, {"id": "999999"}, token=mod.token)) == "NOT_FOUND"
    assert (await client.data(PIN, {"id": first["id"]}, token=mod.token))["pinComment"] == {
        "pinnedComment": {"id": first["id"], "text": "first"}
    }
    await client.data(PIN, {"id": second["id"]}, token=seller.token)
    assert (await stream_view(client, stream.id))["chat"]["pinnedComment"] == {"id": second["id"]}
    # Deleting the pinned comment unpins it.
    await client.data(DELETE, {"id": second["id"]}, token=bob.token)
    assert (await stream_view(client, stream.id))["chat"]["pinnedComment"] is None
    await client.data(PIN, {"id": first["id"]}, token=seller.token)
    assert (await client.data(UNPIN, {"s": str(stream.id)}, token=mod.token))["unpinComment"] is True
    assert (await client.data(UNPIN, {"s": str(stream.id)}, token=mod.token))["unpinComment"] is False
    assert code(await client.error(UNPIN, {"s": str(stream.id)}, token=ann.token)) == "FORBIDDEN"


# ---------------------------------------------------------------- the audit trail


async def test_every_moderation_action_is_kept_for_the_owner(client):
    seller, stream, mod, ann, bob = await shop(client)
    v, s = str(seller.vendor_id), str(stream.id)
    comment = await post(client, stream.id, "rude", ann.token)
    await client.data(DELETE, {"id": comment["id"]}, token=mod.token)
    await client.data(TIMEOUT, {"v": v, "u": str(ann.id), "n": 60, "r": "rude"}, token=mod.token)
    await client.data(SLOW, {"s": s, "n": 10}, token=mod.token)
    await client.data(ADD_TERMS, {"v": v, "t": ["rude"]}, token=mod.token)
    own = await post(client, stream.id, "mine", bob.token)
    await client.data(DELETE, {"id": own["id"]}, token=bob.token)  # an author's own deletion is no moderation
    # A refused action leaves no trace.
    await client.error(BAN, {"v": v, "u": str(seller.id)}, token=mod.token)

    log = (await client.data(LOG, {"v": v}, token=seller.token))["moderationLog"]
    assert [e["action"] for e in log] == ["BLOCK_TERMS", "SLOW_MODE", "TIMEOUT", "DELETE_COMMENT", "ADD_MODERATOR"]
    assert all(e["createdAt"] for e in log)
    block, slow, timeout, delete, appoint = log
    assert block["detail"] == "rude" and block["actor"] == {"username": "seller-mod"}
    assert slow["streamId"] == s and slow["detail"] == "10 s"
    assert timeout["targetUser"] == {"username": "seller-ann"} and timeout["reason"] == "rude" and timeout["detail"] == "60 s"
    assert delete["commentId"] == comment["id"] and delete["targetUser"] == {"username": "seller-ann"}
    assert appoint["actor"] == {"username": "seller"} and appoint["targetUser"] == {"username": "seller-mod"}
    assert code(await client.error(LOG, {"v": v}, token=ann.token)) == "FORBIDDEN"
    assert code(await client.error('query($v: ID!) { moderationLog(vendorId: $v, limit: 0) { id } }', {"v": v}, token=seller.token)) == "BAD_USER_INPUT"
    assert await ModerationAction.filter(vendor_id=seller.vendor_id).count() == 5


# ---------------------------------------------------------------- over a real WebSocket

DELETED = "subscription($s: ID!) { commentDeleted(streamId: $s) { streamId commentIds commentCount } }"
CHAT = "subscription($s: ID!) { chatUpdated(streamId: $s) { slowModeSeconds pinnedComment { id text authorRole } } }"
HELD = "subscription($s: ID!) { commentHeld(streamId: $s) { id text held } }"


async def test_open_pages_lose_deleted_and_banned_comments_and_get_the_pin(client):
    seller, stream, mod, ann, bob = await shop(client)
    v, s = str(seller.vendor_id), str(stream.id)
    keep = await post(client, stream.id, "hello all", ann.token)
    gone = await post(client, stream.id, "buy at spam.example", bob.token)
    more = await post(client, stream.id, "and more spam", bob.token)
    async with LivecartClient(base_url(client)) as viewer, LivecartClient(base_url(client), mod.token) as moderator:
        deletions = viewer.subscribe(DELETED, {"s": s})
        chat = viewer.subscribe(CHAT, {"s": s})
        first = await next_of(chat)  # the chat as it is, at once
        assert first["chatUpdated"] == {"slowModeSeconds": 0, "pinnedComment": None}
        pending = asyncio.ensure_future(next_of(deletions))
        await listening(client, stream.id, 2)

        await client.data(DELETE, {"id": gone["id"]}, token=mod.token)
        assert (await pending)["commentDeleted"] == {"streamId": s, "commentIds": [gone["id"]], "commentCount": 2}

        await client.data(BAN, {"v": v, "u": str(bob.id), "r": "spam", "rm": True}, token=mod.token)
        assert (await next_of(deletions))["commentDeleted"] == {"streamId": s, "commentIds": [more["id"]], "commentCount": 1}

        await client.data(PIN, {"id": keep["id"]}, token=mod.token)
        assert (await next_of(chat))["chatUpdated"] == {
            "slowModeSeconds": 0, "pinnedComment": {"id": keep["id"], "text": "hello all", "authorRole": "VIEWER"}
        }
        await client.data(SLOW, {"s": s, "n": 15}, token=seller.token)
        assert (await next_of(chat))["chatUpdated"]["slowModeSeconds"] == 15
        await client.data(SLOW, {"s": s, "n": 0}, token=seller.token)
        assert (await next_of(chat))["chatUpdated"]["slowModeSeconds"] == 0

        # Moderators hear of held comments; a viewer may not follow them.
        held_feed = moderator.subscribe(HELD, {"s": s})
        pending = asyncio.ensure_future(next_of(held_feed))
        await listening(client, stream.id, 3)
        await client.data(HOLD, {"s": s, "on": True}, token=seller.token)
        held = await post(client, stream.id, "look: www.example.com", ann.token)
        assert (await pending)["commentHeld"] == {"id": held["id"], "text": "look: www.example.com", "held": True}
        for token, expected in ((None, "UNAUTHENTICATED"), (ann.token, "FORBIDDEN")):
            async with LivecartClient(base_url(client), token) as other:
                with pytest.raises(LivecartError) as caught:
                    await next_of(other.subscribe(HELD, {"s": s}))
                assert caught.value.code == expected
        # The owner's feeds stay the owner's.
        for owner_only in (STATS, ORDERS):
            with pytest.raises(LivecartError) as caught:
                await next_of(moderator.subscribe(owner_only, {"s": s}))
            assert caught.value.code == "FORBIDDEN"
        await deletions.aclose()
        await chat.aclose()
        await held_feed.aclose()
