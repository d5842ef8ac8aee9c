"""Chat moderation: who may moderate a vendor's chat (the one policy for it), moderators,
timeouts and bans, blocked terms, slow mode, comments held for review, the pinned comment,
and the audit trail of every moderation action.

Every action writes its effect, its audit row and the events its subscribers hear of (the event
log, models/outbox.py) in one transaction; the resolvers publish the logged events after it commits.
"""
from __future__ import annotations

import datetime as dt
import enum
import math
import re
import unicodedata
from collections.abc import Iterable

from tortoise import fields
from tortoise.expressions import F, Q
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from livecart.models import engagement, outbox, policy
from livecart.models import events
from livecart.models.atomic import atomic
from livecart.models.catalog import Vendor
from livecart.models.engagement import InteractionType, StreamInteraction
from livecart.models.errors import DomainError, ErrorCode, bad_input, forbidden, not_found
from livecart.models.fields import MAX_PAGE, plain_text
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models.user import User

# ---------------------------------------------------------------- the tables


class ChatRole(str, enum.Enum):
    OWNER = "owner"
    MODERATOR = "moderator"
    VIEWER = "viewer"


class RestrictionKind(str, enum.Enum):
    TIMEOUT = "timeout"
    BAN = "ban"


class ActionKind(str, enum.Enum):
    DELETE_COMMENT = "delete_comment"
    TIMEOUT = "timeout"
    BAN = "ban"
    LIFT = "lift"
    ADD_MODERATOR = "add_moderator"
    REMOVE_MODERATOR = "remove_moderator"
    SLOW_MODE = "slow_mode"
    HOLD_LINKS = "hold_links"
    BLOCK_TERMS = "block_terms"
    UNBLOCK_TERMS = "unblock_terms"
    PIN = "pin"
    UNPIN = "unpin"
    APPROVE = "approve"
    REJECT = "reject"


class VendorModerator(Model):
    """A user the vendor's owner appointed to moderate the chat of the vendor's streams."""

    id = fields.IntField(primary_key=True)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="moderators", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="moderator_of", on_delete=fields.CASCADE)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "vendor_moderators"
        unique_together = (("vendor", "user"),)


class ChatRestriction(Model):
    """A timeout (until ends_at) or a ban (no end) on one user's chat and reactions on one
    vendor's streams, one per (vendor, user), lifted by deleting it (the audit trail keeps it)."""

    id = fields.IntField(primary_key=True)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="chat_restrictions", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="chat_restrictions", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(RestrictionKind, max_length=16)
    reason = fields.TextField(null=True)
    ends_at = fields.DatetimeField(null=True)
    created_by = fields.ForeignKeyField(
        "models.User", related_name="restrictions_made", on_delete=fields.SET_NULL, null=True
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "chat_restrictions"
        unique_together = (("vendor", "user"),)
        constraints = (
            CheckConstraint(check="kind IN ('timeout', 'ban')", name="chat_restrictions_kind_valid"),
            CheckConstraint(check="(kind = 'ban') = (ends_at IS NULL)", name="chat_restrictions_end_only_on_timeouts"),
        )


class BlockedTerm(Model):
    """A word or phrase refused in the vendor's chats, kept normalised (see normalise)."""

    id = fields.IntField(primary_key=True)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="blocked_terms", on_delete=fields.CASCADE)
    term = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "blocked_terms"
        unique_together = (("vendor", "term"),)


class StreamChat(Model):
    """A stream's chat settings. No row means the defaults: no slow mode, nothing held, no pin."""

    id = fields.IntField(primary_key=True)
    stream = fields.OneToOneField("models.LiveStream", related_name="chat", on_delete=fields.CASCADE)
    slow_mode_seconds = fields.IntField(default=0)
    hold_links = fields.BooleanField(default=False)
    pinned_comment = fields.ForeignKeyField(
        "models.StreamInteraction", related_name="pinned_in", on_delete=fields.SET_NULL, null=True
    )

    class Meta:
        table = "stream_chats"
        constraints = (
            CheckConstraint(
                check="slow_mode_seconds = 0 OR (slow_mode_seconds >= 3 AND slow_mode_seconds <= 120)",
                name="stream_chats_slow_mode_valid",
            ),
        )


class ModerationAction(Model):
    """The audit trail: who did what, to whom, when and why."""

    id = fields.IntField(primary_key=True)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="moderation_actions", on_delete=fields.CASCADE)
    stream = fields.ForeignKeyField(
        "models.LiveStream", related_name="moderation_actions", on_delete=fields.SET_NULL, null=True
    )
    actor = fields.ForeignKeyField("models.User", related_name="moderation_actions", on_delete=fields.SET_NULL, null=True)
    action = fields.CharEnumField(ActionKind, max_length=32)
    target_user = fields.ForeignKeyField(
        "models.User", related_name="moderation_targets", on_delete=fields.SET_NULL, null=True
    )
    # No foreign key: the trail outlives what it names.
    comment_id = fields.IntField(null=True)
    reason = fields.TextField(null=True)
    detail = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "moderation_actions"
        indexes = (Index(fields=("vendor_id", "created_at"), name="moderation_actions_idx_vendor_created"),)


# ---------------------------------------------------------------- the policy
#
# "May this user act on this vendor's streams?": the owner for everything (models/policy.py, the
# one answer to "is this the seller"), a moderator for the chat only.

is_owner = policy.may_act_for
owned_stream = policy.owned_stream


async def chat_role(vendor_id: int, user_id: int | None) -> ChatRole:
    if user_id is None:
        return ChatRole.VIEWER
    return (await chat_roles({(vendor_id, user_id)}))[(vendor_id, user_id)]


async def chat_roles(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], ChatRole]:
    """Roles of many (vendor, user) pairs in two statements."""
    pairs = set(pairs)
    vendor_ids = {v for v, _ in pairs}
    user_ids = {u for _, u in pairs}
    owners = set(await Vendor.filter(id__in=vendor_ids, user_id__in=user_ids).values_list("id", "user_id"))
    mods = set(
        await VendorModerator.filter(vendor_id__in=vendor_ids, user_id__in=user_ids).values_list("vendor_id", "user_id")
    )
    return {
        pair: ChatRole.OWNER if pair in owners else ChatRole.MODERATOR if pair in mods else ChatRole.VIEWER
        for pair in pairs
    }


async def _vendor(vendor_id: int) -> Vendor:
    vendor = await Vendor.get_or_none(id=vendor_id)
    if vendor is None:
        raise not_found("vendor", vendor_id)
    return vendor


require_owner = policy.require_vendor_owner  # NOT_FOUND for no such vendor, FORBIDDEN for anyone else


async def require_moderator(vendor_id: int, user_id: int) -> Vendor:
    """NOT_FOUND for no such vendor, FORBIDDEN for anyone but its owner and moderators."""
    vendor = await _vendor(vendor_id)
    if vendor.user_id != user_id and not await VendorModerator.exists(vendor_id=vendor_id, user_id=user_id):
        raise forbidden("Only the seller or a moderator of this shop's chat may do this.")
    return vendor


async def moderated_stream(stream_id: int, user_id: int) -> LiveStream:
    """The stream, if the caller may moderate its chat (owner or moderator)."""
    stream = await LiveStream.get_or_none(id=stream_id)
    if stream is None:
        raise not_found("stream", stream_id)
    await require_moderator(stream.vendor_id, user_id)
    return stream


async def _user(user_id: int) -> User:
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


async def _audit(vendor_id: int, actor_id: int, action: ActionKind, **what) -> None:
    await ModerationAction.create(vendor_id=vendor_id, actor_id=actor_id, action=action, **what)


# ---------------------------------------------------------------- moderators


async def add_moderator(vendor_id: int, actor_id: int, user_id: int) -> User:
    vendor = await require_owner(vendor_id, actor_id)
    user = await _user(user_id)
    if user.id == vendor.user_id:
        raise bad_input("userId", "the seller moderates their own chat already")
    async with atomic():
        if not await VendorModerator.exists(vendor_id=vendor_id, user_id=user_id):
            await VendorModerator.create(vendor_id=vendor_id, user_id=user_id)
            await _audit(vendor_id, actor_id, ActionKind.ADD_MODERATOR, target_user_id=user_id)
    return user


async def remove_moderator(vendor_id: int, actor_id: int, user_id: int) -> bool:
    """True when the user was a moderator."""
    await require_owner(vendor_id, actor_id)
    await _user(user_id)
    async with atomic():
        removed = await VendorModerator.filter(vendor_id=vendor_id, user_id=user_id).delete()
        if removed:
            await _audit(vendor_id, actor_id, ActionKind.REMOVE_MODERATOR, target_user_id=user_id)
    return bool(removed)


async def moderators(vendor_id: int, actor_id: int) -> list[User]:
    await require_moderator(vendor_id, actor_id)
    ids = await VendorModerator.filter(vendor_id=vendor_id).order_by("created_at", "id").limit(MAX_PAGE).values_list("user_id", flat=True)
    users = {u.id: u for u in await User.filter(id__in=ids)}
    return [users[i] for i in ids if i in users]


# ---------------------------------------------------------------- timeouts and bans

MAX_REASON_LENGTH = 500
MAX_TIMEOUT_SECONDS = 14 * 24 * 3600


def _reason(reason: str | None) -> str | None:
    reason = plain_text("reason", reason)
    if reason is None:
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise bad_input("reason", f"at most {MAX_REASON_LENGTH} characters")
    return reason or None


async def _restrictable(vendor: Vendor, actor_id: int, user_id: int) -> None:
    await _user(user_id)
    if user_id == actor_id:
        raise bad_input("userId", "you cannot time out or ban yourself")
    if user_id == vendor.user_id:
        raise bad_input("userId", "the seller cannot be timed out or banned")
    if await VendorModerator.exists(vendor_id=vendor.id, user_id=user_id):
        raise bad_input("userId", "a moderator cannot be timed out or banned: remove them as moderator first")


async def _restrict(
    vendor_id: int, actor_id: int, user_id: int, kind: RestrictionKind, reason: str | None, ends_at: dt.datetime | None
) -> ChatRestriction:
    await ChatRestriction.filter(vendor_id=vendor_id, user_id=user_id).delete()
    return await ChatRestriction.create(
        vendor_id=vendor_id, user_id=user_id, kind=kind, reason=reason, ends_at=ends_at, created_by_id=actor_id
    )


async def timeout_user(
    vendor_id: int, actor_id: int, user_id: int, seconds: int, reason: str | None, now: dt.datetime
) -> ChatRestriction:
    vendor = await require_moderator(vendor_id, actor_id)
    if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
        raise bad_input("durationSeconds", f"1 second to 14 days ({MAX_TIMEOUT_SECONDS} seconds)")
    reason = _reason(reason)
    await _restrictable(vendor, actor_id, user_id)
    async with atomic():
        restriction = await _restrict(
            vendor_id, actor_id, user_id, RestrictionKind.TIMEOUT, reason, now + dt.timedelta(seconds=seconds)
        )
        await _audit(
            vendor_id, actor_id, ActionKind.TIMEOUT, target_user_id=user_id, reason=reason, detail=f"{seconds} s"
        )
    return restriction


async def ban_user(
    vendor_id: int, actor_id: int, user_id: int, reason: str | None, remove_comments: bool, now: dt.datetime
) -> tuple[ChatRestriction, dict[int, list[int]]]:
    """The ban and, with remove_comments, the comments removed from the vendor's live streams
    (stream id -> comment ids), for the caller to publish."""
    vendor = await require_moderator(vendor_id, actor_id)
    reason = _reason(reason)
    await _restrictable(vendor, actor_id, user_id)
    removed: dict[int, list[int]] = {}
    async with outbox.transaction():
        restriction = await _restrict(vendor_id, actor_id, user_id, RestrictionKind.BAN, reason, None)
        if remove_comments:
            live = await LiveStream.filter(vendor_id=vendor_id, status=StreamStatus.LIVE).values_list("id", flat=True)
            rows = await StreamInteraction.filter(
                stream_id__in=live, user_id=user_id, interaction_type=InteractionType.COMMENT, deleted_at__isnull=True
            ).values_list("id", "stream_id")
            for comment_id, stream_id in rows:
                removed.setdefault(stream_id, []).append(comment_id)
            if rows:
                await engagement.remove_comments([comment_id for comment_id, _ in rows], now)
        await _audit(
            vendor_id, actor_id, ActionKind.BAN, target_user_id=user_id, reason=reason,
            detail=f"{sum(map(len, removed.values()))} comments removed" if remove_comments else None,
        )
        await _log_removed(removed)
    return restriction, removed


async def _log_removed(removed: dict[int, list[int]]) -> None:
    """A ban's removed comments, per stream in messages of at most MAX_DELETED_IDS ids (the
    subscription's declared list size). Streams in id order: their counter rows lock in that order."""
    for stream_id in sorted(removed):
        comment_ids = removed[stream_id]
        chunks = [comment_ids[i:i + MAX_DELETED_IDS] for i in range(0, len(comment_ids), MAX_DELETED_IDS)]
        await outbox.append(stream_id, *(events.comment_deleted(stream_id, chunk) for chunk in chunks))


async def lift_restriction(vendor_id: int, actor_id: int, user_id: int) -> bool:
    """True when a timeout or ban was in force (or on record) and is gone now."""
    await require_moderator(vendor_id, actor_id)
    await _user(user_id)
    async with atomic():
        lifted = await ChatRestriction.filter(vendor_id=vendor_id, user_id=user_id).delete()
        if lifted:
            await _audit(vendor_id, actor_id, ActionKind.LIFT, target_user_id=user_id)
    return bool(lifted)


async def restrictions(vendor_id: int, actor_id: int, now: dt.datetime) -> list[ChatRestriction]:
    """Bans and timeouts in force, newest first."""
    await require_moderator(vendor_id, actor_id)
    return await ChatRestriction.filter(_in_force(now), vendor_id=vendor_id).order_by("-created_at", "-id").limit(MAX_PAGE)


def _in_force(now: dt.datetime) -> Q:
    return Q(ends_at__isnull=True) | Q(ends_at__gt=now)


def restricted_error(restriction: ChatRestriction) -> DomainError:
    if restriction.kind == RestrictionKind.BAN:
        message = "You are banned from this shop's chat."
    else:
        message = f"You are timed out of this shop's chat until {restriction.ends_at.isoformat()}."
    if restriction.reason:
        message += f" Reason: {restriction.reason}"
    return DomainError(
        ErrorCode.FORBIDDEN, message,
        restriction=restriction.kind.value.upper(),
        reason=restriction.reason,
        endsAt=restriction.ends_at.isoformat() if restriction.ends_at else None,
    )


async def check_not_restricted(vendor_id: int, user_id: int, now: dt.datetime) -> None:
    restriction = await ChatRestriction.filter(_in_force(now), vendor_id=vendor_id, user_id=user_id).first()
    if restriction is not None:
        raise restricted_error(restriction)


# ---------------------------------------------------------------- blocked terms

MAX_BLOCKED_TERMS = 1000
# A ban's removed comments are announced in messages of at most this many ids.
MAX_DELETED_IDS = 500
MAX_TERM_LENGTH = 100

# Characters that render as nothing: inserted into a word, they must not hide it.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"))
# Letters of other scripts that look like Latin ones (NFKC keeps them apart).
_LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ӏ": "l", "ɡ": "g",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ω": "w",
})
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """How terms and comments are compared: invisible characters out, NFKC (full-width,
    ligatures, styled letters), case folded, look-alike letters of other scripts as Latin."""
    text = unicodedata.normalize("NFKC", text.translate(_INVISIBLE)).casefold()
    return _SPACES.sub(" ", text.translate(_LOOKALIKES)).strip()


def _clean_terms(terms: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for term in terms:
        term = normalise(plain_text("terms", term))
        if not term:
            raise bad_input("terms", "a term needs some text")
        if len(term) > MAX_TERM_LENGTH:
            raise bad_input("terms", f"a term has at most {MAX_TERM_LENGTH} characters")
        cleaned.append(term)
    return list(dict.fromkeys(cleaned))


async def add_blocked_terms(vendor_id: int, actor_id: int, terms: list[str]) -> list[str]:
    await require_moderator(vendor_id, actor_id)
    cleaned = _clean_terms(terms)
    if len(cleaned) > MAX_BLOCKED_TERMS:
        raise bad_input("terms", f"at most {MAX_BLOCKED_TERMS} blocked terms")
    async with atomic():
        # The vendor row lock makes the count and the inserts one step against concurrent adds.
        await Vendor.filter(id=vendor_id).select_for_update(no_key=True).first()
        have = set(await BlockedTerm.filter(vendor_id=vendor_id).values_list("term", flat=True))
        new = [t for t in cleaned if t not in have]
        if len(have) + len(new) > MAX_BLOCKED_TERMS:
            raise bad_input("terms", f"at most {MAX_BLOCKED_TERMS} blocked terms; {len(have)} are kept already")
        if new:
            await BlockedTerm.bulk_create([BlockedTerm(vendor_id=vendor_id, term=t) for t in new])
            await _audit(vendor_id, actor_id, ActionKind.BLOCK_TERMS, detail=", ".join(new))
    return await blocked_terms(vendor_id, actor_id)


async def remove_blocked_terms(vendor_id: int, actor_id: int, terms: list[str]) -> list[str]:
    await require_moderator(vendor_id, actor_id)
    cleaned = _clean_terms(terms)
    async with atomic():
        gone = await BlockedTerm.filter(vendor_id=vendor_id, term__in=cleaned).values_list("term", flat=True)
        if gone:
            await BlockedTerm.filter(vendor_id=vendor_id, term__in=gone).delete()
            await _audit(vendor_id, actor_id, ActionKind.UNBLOCK_TERMS, detail=", ".join(gone))
    return await blocked_terms(vendor_id, actor_id)


async def blocked_terms(vendor_id: int, actor_id: int) -> list[str]:
    await require_moderator(vendor_id, actor_id)
    return await BlockedTerm.filter(vendor_id=vendor_id).order_by("term").values_list("term", flat=True)


async def check_blocked_terms(vendor_id: int, text: str) -> None:
    terms = await BlockedTerm.filter(vendor_id=vendor_id).values_list("term", flat=True)
    if not terms:
        return
    normal = normalise(text)
    # Whole words: no letter or digit right before or after the term.
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in terms) + r")(?!\w)")
    if pattern.search(normal):
        raise DomainError(
            ErrorCode.BAD_USER_INPUT,
            "text: the seller does not allow a word in this comment (blocked terms)",
            argument="text",
            rule="BLOCKED_TERM",
        )


# ---------------------------------------------------------------- a stream's chat settings

# A link: a scheme, www., or a name with a dot and a top-level name (spam.example).
_LINK = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.|\b[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b)")


def has_link(text: str) -> bool:
    return bool(_LINK.search(normalise(text)))


async def chat_of(stream_id: int) -> StreamChat:
    """The settings, or the defaults (unsaved) when none were ever set."""
    return await StreamChat.get_or_none(stream_id=stream_id) or StreamChat(stream_id=stream_id)


async def chats_of(stream_ids: Iterable[int]) -> dict[int, StreamChat]:
    stream_ids = set(stream_ids)
    found = {c.stream_id: c for c in await StreamChat.filter(stream_id__in=stream_ids)}
    return {s: found.get(s) or StreamChat(stream_id=s) for s in stream_ids}


async def _save_chat(stream_id: int, **values) -> None:
    if not await StreamChat.filter(stream_id=stream_id).update(**values):
        await StreamChat.create(stream_id=stream_id, **values)


async def set_slow_mode(stream_id: int, actor_id: int, seconds: int) -> LiveStream:
    stream = await moderated_stream(stream_id, actor_id)
    if seconds != 0 and not 3 <= seconds <= 120:
        raise bad_input("seconds", "0 (off) or 3 to 120")
    async with outbox.transaction():
        await LiveStream.filter(id=stream_id).select_for_update(no_key=True).first()
        await _save_chat(stream_id, slow_mode_seconds=seconds)
        await _audit(stream.vendor_id, actor_id, ActionKind.SLOW_MODE, stream_id=stream_id,
                     detail=f"{seconds} s" if seconds else "off")
        await outbox.append(stream_id, events.chat_updated(stream_id))
    return stream


async def set_hold_links(stream_id: int, actor_id: int, enabled: bool) -> LiveStream:
    stream = await moderated_stream(stream_id, actor_id)
    async with outbox.transaction():
        await LiveStream.filter(id=stream_id).select_for_update(no_key=True).first()
        await _save_chat(stream_id, hold_links=enabled)
        await _audit(stream.vendor_id, actor_id, ActionKind.HOLD_LINKS, stream_id=stream_id,
                     detail="on" if enabled else "off")
        await outbox.append(stream_id, events.chat_updated(stream_id))
    return stream


def slow_mode_error(wait_seconds: float, interval: int) -> DomainError:
    return DomainError(
        ErrorCode.RATE_LIMITED,
        f"Slow mode: one comment every {interval} seconds.",
        retryAfter=max(1, math.ceil(wait_seconds)),
        slowModeSeconds=interval,
    )


# ---------------------------------------------------------------- comments: pin, review


async def _comment(comment_id: int, *, held: bool | None = False) -> StreamInteraction:
    """A comment not deleted; held=False only visible ones, True only held ones, None either."""
    query = StreamInteraction.filter(id=comment_id, interaction_type=InteractionType.COMMENT, deleted_at__isnull=True)
    if held is not None:
        query = query.filter(held_at__isnull=not held)
    comment = await query.first()
    if comment is None:
        raise not_found("comment", comment_id)
    return comment


async def pin_comment(comment_id: int, actor_id: int) -> LiveStream:
    comment = await _comment(comment_id)
    stream = await moderated_stream(comment.stream_id, actor_id)
    async with outbox.transaction():
        await LiveStream.filter(id=stream.id).select_for_update(no_key=True).first()
        await _save_chat(stream.id, pinned_comment_id=comment.id)
        await _audit(stream.vendor_id, actor_id, ActionKind.PIN, stream_id=stream.id, comment_id=comment.id,
                     target_user_id=comment.user_id)
        await outbox.append(stream.id, events.chat_updated(stream.id))
    return stream


async def unpin_comment(stream_id: int, actor_id: int) -> bool:
    stream = await moderated_stream(stream_id, actor_id)
    async with outbox.transaction():
        unpinned = await StreamChat.filter(stream_id=stream_id, pinned_comment_id__isnull=False).update(
            pinned_comment_id=None
        )
        if unpinned:
            await _audit(stream.vendor_id, actor_id, ActionKind.UNPIN, stream_id=stream_id)
            await outbox.append(stream_id, events.chat_updated(stream_id))
    return bool(unpinned)


async def held_comments(stream_id: int, actor_id: int) -> list[StreamInteraction]:
    await moderated_stream(stream_id, actor_id)
    return await StreamInteraction.filter(
        stream_id=stream_id, interaction_type=InteractionType.COMMENT, deleted_at__isnull=True, held_at__isnull=False
    ).order_by("id").limit(MAX_PAGE)


async def held_comments_of_author(stream_ids: Iterable[int], user_id: int) -> dict[int, list[StreamInteraction]]:
    rows = await StreamInteraction.filter(
        stream_id__in=set(stream_ids), user_id=user_id, interaction_type=InteractionType.COMMENT,
        deleted_at__isnull=True, held_at__isnull=False,
    ).order_by("id")
    grouped: dict[int, list[StreamInteraction]] = {}
    for row in rows:
        grouped.setdefault(row.stream_id, []).append(row)
    return grouped


async def approve_comment(comment_id: int, actor_id: int) -> StreamInteraction:
    """The held comment shows to everyone from now (and counts)."""
    comment = await _comment(comment_id, held=True)
    stream = await moderated_stream(comment.stream_id, actor_id)
    async with outbox.transaction():
        approved = await StreamInteraction.filter(id=comment.id, held_at__isnull=False, deleted_at__isnull=True).update(
            held_at=None
        )
        if not approved:  # decided a moment ago by someone else
            raise not_found("held comment", comment.id)
        await LiveStream.filter(id=comment.stream_id).update(comment_count=F("comment_count") + 1)
        await _audit(stream.vendor_id, actor_id, ActionKind.APPROVE, stream_id=stream.id, comment_id=comment.id,
                     target_user_id=comment.user_id)
        await outbox.append(stream.id, events.comment_added(stream.id, comment.id))
    comment.held_at = None
    return comment


async def reject_comment(comment_id: int, actor_id: int, now: dt.datetime) -> StreamInteraction:
    comment = await _comment(comment_id, held=True)
    stream = await moderated_stream(comment.stream_id, actor_id)
    async with outbox.transaction():
        rejected = await StreamInteraction.filter(id=comment.id, held_at__isnull=False, deleted_at__isnull=True).update(
            deleted_at=now
        )
        if not rejected:
            raise not_found("held comment", comment.id)
        await _audit(stream.vendor_id, actor_id, ActionKind.REJECT, stream_id=stream.id, comment_id=comment.id,
                     target_user_id=comment.user_id)
        await outbox.append(stream.id, events.comment_deleted(stream.id, [comment.id]))
    return comment


async def audit_deletion(comment: StreamInteraction, stream: LiveStream, actor_id: int) -> None:
    await _audit(stream.vendor_id, actor_id, ActionKind.DELETE_COMMENT, stream_id=stream.id, comment_id=comment.id,
                 target_user_id=comment.user_id)


# ---------------------------------------------------------------- the audit trail

MAX_LOG_PAGE = 200


async def moderation_log(vendor_id: int, actor_id: int, limit: int) -> list[ModerationAction]:
    """Newest first; the owner's alone."""
    await require_owner(vendor_id, actor_id)
    if not 1 <= limit <= MAX_LOG_PAGE:
        raise bad_input("limit", f"1 to {MAX_LOG_PAGE}")
    return await ModerationAction.filter(vendor_id=vendor_id).order_by("-created_at", "-id").limit(limit)
