"""What viewers do on a stream: watch (sessions), react and comment."""
from __future__ import annotations

import datetime as dt
import enum
import re
import secrets
from collections.abc import Iterable

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Case, F, When
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from livecart.models import outbox
from livecart.models.atomic import atomic
from livecart.models.errors import bad_input, conflict, not_found
from livecart.models.fields import parse_id
from livecart.models.figures import viewer_count
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models.clock import utcnow
from livecart.models.user import User
from livecart.models import events


class InteractionType(str, enum.Enum):
    LIKE = "like"
    DISLIKE = "dislike"
    COMMENT = "comment"


REACTION_TYPES = (InteractionType.LIKE, InteractionType.DISLIKE)


class StreamInteraction(Model):
    """A like, dislike or comment. One reaction per (stream, user) is enforced by a
    partial unique index created in the migration (stream_interactions_one_reaction)."""

    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="interactions", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="interactions", on_delete=fields.CASCADE)
    interaction_type = fields.CharEnumField(InteractionType, max_length=16)
    comment_text = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    deleted_at = fields.DatetimeField(null=True)
    # Set while a comment waits for a moderator's approval (models/moderation.py): shown only
    # to its author and the moderators, and not counted, until then.
    held_at = fields.DatetimeField(null=True)

    class Meta:
        table = "stream_interactions"
        indexes = (
            Index(fields=("stream_id", "user_id"), name="stream_interactions_idx_stream_user"),
            Index(fields=("stream_id", "interaction_type"), name="stream_interactions_idx_stream_type"),
            Index(fields=("created_at",), name="stream_interactions_idx_created_at"),
        )
        constraints = (
            CheckConstraint(
                check="interaction_type IN ('like', 'dislike', 'comment')",
                name="stream_interactions_type_valid",
            ),
            CheckConstraint(
                check="(interaction_type = 'comment') = (comment_text IS NOT NULL)",
                name="stream_interactions_text_only_on_comments",
            ),
        )


class StreamViewer(Model):
    """One viewer session: the history of who watched, and when."""

    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="viewers", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="viewer_sessions", on_delete=fields.SET_NULL, null=True)
    joined_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    left_at = fields.DatetimeField(null=True)
    is_active = fields.BooleanField(default=True)
    # The secret half of the session's public id: without it no one else (an anonymous session has
    # no user to check) can renew or end the session. Null only on sessions from before it existed.
    key = fields.CharField(max_length=32, null=True)
    # Viewers are people, not tabs: a user's (or one browser's) further tabs share the session
    # their first opened, and count here; the session closes when the last of them leaves.
    tabs = fields.IntField(default=1)
    # An anonymous viewer's browser (a random id the pages keep), so its tabs are one viewer too.
    browser_id = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "stream_viewers"
        indexes = (
            Index(fields=("stream_id", "is_active"), name="stream_viewers_stream_id"),
            Index(fields=("is_active", "expires_at"), name="stream_viewers_idx_active_expiry"),
        )
        constraints = (
            CheckConstraint(check="is_active = (left_at IS NULL)", name="stream_viewers_active_until_left"),
            CheckConstraint(check="tabs >= 0", name="stream_viewers_tabs_not_negative"),
        )


class StreamViewerUser(Model):
    """The users who have watched a stream, once each: what makes uniqueViewers exact."""

    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="viewer_users", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="watched_streams", on_delete=fields.CASCADE)
    first_joined_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stream_viewer_users"
        unique_together = (("stream", "user"),)


# ---------------------------------------------------------------- viewer sessions
#
# Lock order, everywhere a viewer count changes: the stream row first (FOR NO KEY
# UPDATE, so comment and session inserts elsewhere are not blocked by their foreign
# key check), then sessions. endStream locks the stream and then closes its sessions,
# so taking the same order here means the two can never deadlock.


async def lock_stream(stream_id: int) -> LiveStream | None:
    return await LiveStream.filter(id=stream_id).select_for_update(no_key=True).first()


async def _close_lapsed_of_stream(stream_id: int, now: dt.datetime) -> int:
    """Close the stream's sessions that lapsed by `now`; they left when they lapsed."""
    return await StreamViewer.filter(stream_id=stream_id, is_active=True, expires_at__lte=now).update(
        is_active=False, left_at=F("expires_at")
    )


async def _remove_viewers(stream_id: int, gone: int) -> None:
    if gone:
        await LiveStream.filter(id=stream_id).update(viewer_count=F("viewer_count") - gone)


async def close_sessions_of_stream(stream_id: int, now: dt.datetime) -> int:
    """Close every active session of a stream (it is ending); returns how many were open.

    Safe inside the caller's transaction (it nests as a savepoint). Sessions that had
    already lapsed keep their lapse time as left_at; the rest leave `now`.
    """
    async with atomic():
        await lock_stream(stream_id)
        lapsed = await _close_lapsed_of_stream(stream_id, now)
        watching = await StreamViewer.filter(stream_id=stream_id, is_active=True).update(
            is_active=False, left_at=now
        )
        await _remove_viewers(stream_id, lapsed + watching)
    return lapsed + watching


BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def check_browser_id(browser_id: str | None) -> str | None:
    if browser_id is not None and not BROWSER_ID.fullmatch(browser_id):
        raise bad_input("browserId", "must be 8 to 64 letters, digits, - or _.")
    return browser_id


async def _watching_already(
    stream_id: int, user_id: int | None, browser_id: str | None, now: dt.datetime
) -> StreamViewer | None:
    """The person's open session on the stream (a user's, else the browser's), if any."""
    if user_id is not None:
        query = StreamViewer.filter(stream_id=stream_id, user_id=user_id)
    elif browser_id is not None:
        query = StreamViewer.filter(stream_id=stream_id, user_id=None, browser_id=browser_id)
    else:
        return None
    return await query.filter(is_active=True, expires_at__gt=now).order_by("-id").first()


async def join_stream(
    stream_id: int, user_id: int | None, now: dt.datetime, ttl_seconds: int, browser_id: str | None = None
) -> tuple[StreamViewer, int]:
    """A session on a LIVE stream; returns it and the stream's viewer count after. A person
    already watching (another tab) gets that session back, with one more tab: still one viewer."""
    async with outbox.transaction():
        stream = await lock_stream(stream_id)
        if stream is None:
            raise not_found("stream", stream_id)
        if stream.status != StreamStatus.LIVE:
            raise conflict(f"Only a live stream can be watched; this one is {stream.status.value}.")
        # Lapsed sessions leave first, so the peak below counts only who is really here.
        lapsed = await _close_lapsed_of_stream(stream_id, now)
        session = await _watching_already(stream_id, user_id, browser_id, now)
        if session is not None:
            expires_at = now + dt.timedelta(seconds=ttl_seconds)
            await StreamViewer.filter(id=session.id).update(tabs=F("tabs") + 1, last_seen_at=now, expires_at=expires_at)
            session.last_seen_at, session.expires_at = now, expires_at
            await _remove_viewers(stream_id, lapsed)
            await outbox.append(stream_id, events.viewers_changed(stream_id))
            return session, stream.viewer_count - lapsed
        first_visit = user_id is None or await _first_visit(stream_id, user_id, now)
        session = await StreamViewer.create(
            stream_id=stream_id, user_id=user_id, joined_at=now, last_seen_at=now,
            expires_at=now + dt.timedelta(seconds=ttl_seconds), key=secrets.token_urlsafe(16),
            browser_id=browser_id if user_id is None else None,
        )
        after = F("viewer_count") + (1 - lapsed)
        await LiveStream.filter(id=stream_id).update(
            viewer_count=after,
            peak_viewers=Case(When(peak_viewers__lt=after, then=after), default=F("peak_viewers")),
            unique_viewers=F("unique_viewers") + int(first_visit),
        )
        await outbox.append(stream_id, events.viewers_changed(stream_id))
    return session, stream.viewer_count - lapsed + 1


async def _first_visit(stream_id: int, user_id: int, now: dt.datetime) -> bool:
    """Records the user among the stream's viewers; True the first time only.
    Race-free because the caller holds the stream row lock."""
    if await StreamViewerUser.exists(stream_id=stream_id, user_id=user_id):
        return False
    await StreamViewerUser.create(stream_id=stream_id, user_id=user_id, first_joined_at=now)
    return True


def session_public_id(session: StreamViewer) -> str:
    """What joinStream hands out: the row id with the session's secret key."""
    return f"{session.id}.{session.key}" if session.key else str(session.id)


def parse_session_id(raw: str) -> tuple[int, str | None]:
    number, _, key = str(raw).partition(".")
    return parse_id("sessionId", number), key or None


async def _own_session(public_id: str, user_id: int | None) -> StreamViewer:
    """The session, if the caller may act on it: it holds the session's key, and a user's
    session is that user's alone. Anything else is reported as unknown, not confirmed to exist."""
    session_id, key = parse_session_id(public_id)
    session = await StreamViewer.get_or_none(id=session_id)
    if (
        session is None
        or (session.key is not None and not secrets.compare_digest(key or "", session.key))
        or (session.user_id is not None and session.user_id != user_id)
    ):
        raise not_found("viewer session", public_id)
    return session


async def heartbeat(
    session_id: str, user_id: int | None, now: dt.datetime, ttl_seconds: int
) -> tuple[StreamViewer, int]:
    """Renews a session that has not lapsed; a lapsed or closed one must join again."""
    session = await _own_session(session_id, user_id)
    expires_at = now + dt.timedelta(seconds=ttl_seconds)
    # One conditional statement: the sweeper cannot close it between a check and the renewal.
    renewed = await StreamViewer.filter(id=session.id, is_active=True, expires_at__gt=now).update(
        last_seen_at=now, expires_at=expires_at
    )
    if not renewed:
        raise conflict("This viewer session has ended; join the stream again.")
    session.last_seen_at, session.expires_at = now, expires_at
    return session, await viewer_count(session.stream_id, now)


async def leave_stream(session_id: str, user_id: int | None, now: dt.datetime) -> tuple[StreamViewer, bool, int]:
    """One tab leaves: the session closes with its last tab. Returns the session, whether this
    call ended the caller's presence (false when the session had already ended), and the count after."""
    session = await _own_session(session_id, user_id)
    async with outbox.transaction():
        stream = await lock_stream(session.stream_id)
        lapsed = await _close_lapsed_of_stream(session.stream_id, now)
        # Another tab still watching: one tab fewer, the person stays counted.
        fewer = await StreamViewer.filter(id=session.id, is_active=True, tabs__gt=1).update(tabs=F("tabs") - 1)
        left = 0 if fewer else await StreamViewer.filter(id=session.id, is_active=True).update(
            is_active=False, left_at=now, tabs=0
        )
        await _remove_viewers(session.stream_id, lapsed + left)
        if fewer or left:
            await outbox.append(session.stream_id, events.viewers_changed(session.stream_id))
    return session, bool(fewer or left), stream.viewer_count - lapsed - left


async def close_lapsed_sessions(now: dt.datetime) -> dict[int, int]:
    """The sweeper's pass: closes every lapsed session, one short transaction per stream.
    Returns the viewer count after, for each stream that changed."""
    stream_ids = await (
        StreamViewer.filter(is_active=True, expires_at__lte=now).distinct().values_list("stream_id", flat=True)
    )
    counts: dict[int, int] = {}
    for stream_id in stream_ids:
        async with outbox.transaction():
            stream = await lock_stream(stream_id)
            if stream is None:
                continue
            lapsed = await _close_lapsed_of_stream(stream_id, now)
            await _remove_viewers(stream_id, lapsed)
            if lapsed:
                await outbox.append(stream_id, events.viewers_changed(stream_id))
        if lapsed:  # another process's sweeper may have got there first
            counts[stream_id] = stream.viewer_count - lapsed
    return counts


async def active_sessions(stream_id: int, now: dt.datetime) -> list[StreamViewer]:
    """Sessions watching now, first joined first (the owner's activeViewers)."""
    return await StreamViewer.filter(stream_id=stream_id, is_active=True, expires_at__gt=now).order_by("joined_at", "id")


# ---------------------------------------------------------------- reactions

_COUNTER_OF = {InteractionType.LIKE: "likes", InteractionType.DISLIKE: "dislikes"}
_REACTION_ATTEMPTS = 3


async def existing_stream(stream_id: int) -> LiveStream:
    stream = await LiveStream.get_or_none(id=stream_id)
    if stream is None:
        raise not_found("stream", stream_id)
    return stream


async def store_reaction(stream_id: int, user_id: int, kind: InteractionType | None) -> tuple[LiveStream, bool]:
    """Sets (or, with None, clears) the user's one reaction, once models/chat.py's react has
    checked the stream and the chat's rules. Returns the stream with its counts after, and
    whether anything changed.

    One user's requests queue on the user's row; should two inserts still meet, the
    partial unique index lets one win and the other gets IntegrityError, rolls back and
    tries again, now seeing the winner's row. So duplicates never exist and the counters
    follow the rows.
    """
    for attempt in range(_REACTION_ATTEMPTS):
        try:
            async with outbox.transaction():
                changed = await _set_reaction(stream_id, user_id, kind)
                if changed:
                    await outbox.append(stream_id, events.reactions_changed(stream_id))
                return await LiveStream.get(id=stream_id), changed
        except IntegrityError:
            if attempt == _REACTION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def check_reactable(stream: LiveStream) -> None:
    # An ended stream's figures are final (issue 13); a scheduled one has no audience yet.
    if stream.status != StreamStatus.LIVE:
        raise conflict(f"Only a live stream takes reactions; this one is {stream.status.value}.")


async def _set_reaction(stream_id: int, user_id: int, kind: InteractionType | None) -> bool:
    # One user's reactions queue on their user row, so a clear and an insert racing each
    # other cannot keep the retry loop above busy; other users are not held up.
    await User.filter(id=user_id).select_for_update(no_key=True).first()
    current = (
        await StreamInteraction.filter(stream_id=stream_id, user_id=user_id, interaction_type__in=REACTION_TYPES)
        .select_for_update()
        .first()
    )
    before = current.interaction_type if current else None
    if before == kind:
        return False
    if current is None:
        await StreamInteraction.create(stream_id=stream_id, user_id=user_id, interaction_type=kind)
    elif kind is None:
        await StreamInteraction.filter(id=current.id).delete()
    else:
        await StreamInteraction.filter(id=current.id).update(interaction_type=kind, created_at=utcnow())
    deltas = {}
    if before is not None:
        deltas[_COUNTER_OF[before]] = F(_COUNTER_OF[before]) - 1
    if kind is not None:
        deltas[_COUNTER_OF[kind]] = F(_COUNTER_OF[kind]) + 1
    # Only while it is LIVE, in the same statement: a stream that ended since the check above
    # rolls the reaction back instead of changing its final figures.
    if not await LiveStream.filter(id=stream_id, status=StreamStatus.LIVE).update(**deltas):
        check_reactable(await existing_stream(stream_id))
    return True


async def reactions_of(user_id: int, stream_ids: Iterable[int]) -> dict[int, InteractionType]:
    rows = await StreamInteraction.filter(
        user_id=user_id, stream_id__in=set(stream_ids), interaction_type__in=REACTION_TYPES
    ).values_list("stream_id", "interaction_type")
    return {stream_id: InteractionType(kind) for stream_id, kind in rows}


# ---------------------------------------------------------------- comments

MAX_COMMENT_LENGTH = 500
MAX_COMMENTS_PAGE = 200
# Control characters (Unicode category Cc) other than the newline.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def clean_comment(text: str) -> str:
    """Control characters out, then trimmed; stored as typed otherwise (no escaping:
    that is the renderer's job)."""
    cleaned = _CONTROL.sub("", text).strip()
    if not cleaned:
        raise bad_input("text", "a comment needs some text")
    if len(cleaned) > MAX_COMMENT_LENGTH:
        raise bad_input("text", f"at most {MAX_COMMENT_LENGTH} characters")
    return cleaned


async def visible_comment(comment_id: int) -> StreamInteraction | None:
    return await StreamInteraction.get_or_none(
        id=comment_id, interaction_type=InteractionType.COMMENT, deleted_at__isnull=True, held_at__isnull=True
    )


async def remove_comments(comment_ids: list[int], now: dt.datetime) -> int:
    """Soft-deletes the comments not deleted yet and takes the visible ones off their streams'
    counts; returns how many this call deleted. Call inside the caller's transaction."""
    rows = await StreamInteraction.filter(
        id__in=comment_ids, interaction_type=InteractionType.COMMENT, deleted_at__isnull=True
    ).select_for_update().values_list("id", "stream_id", "held_at")
    if not rows:
        return 0
    await StreamInteraction.filter(id__in=[r[0] for r in rows], deleted_at__isnull=True).update(deleted_at=now)
    counted: dict[int, int] = {}
    for _, stream_id, held_at in rows:
        if held_at is None:
            counted[stream_id] = counted.get(stream_id, 0) + 1
    for stream_id, n in counted.items():
        await LiveStream.filter(id=stream_id).update(comment_count=F("comment_count") - n)
    return len(rows)


def check_page_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_COMMENTS_PAGE:
        raise bad_input("limit", f"1 to {MAX_COMMENTS_PAGE}")


async def comment_pages(
    stream_ids: Iterable[int], limit: int, before: int | None
) -> dict[int, list[StreamInteraction]]:
    """For each stream, up to `limit` visible comments older than `before` (the newest
    when None), oldest first. Paging by id keeps a page stable while new ones arrive.
    Two statements for any number of streams: the ids ranked per stream, then the rows."""
    check_page_limit(limit)
    stream_ids = sorted(set(stream_ids))
    if not stream_ids:
        return {}
    where = (
        f"stream_id IN ({', '.join(str(int(s)) for s in stream_ids)})"
        " AND interaction_type = 'comment' AND deleted_at IS NULL AND held_at IS NULL"
    )
    if before is not None:
        where += f" AND id < {int(before)}"
    ranked = (
        "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY stream_id ORDER BY id DESC) AS newest"
        f" FROM stream_interactions WHERE {where}) ranked WHERE newest <= {int(limit)}"
    )
    ids = [row["id"] for row in await StreamInteraction._meta.db.execute_query_dict(ranked)]
    pages: dict[int, list[StreamInteraction]] = {s: [] for s in stream_ids}
    if ids:
        for row in await StreamInteraction.filter(id__in=ids).order_by("id"):
            pages[row.stream_id].append(row)
    return pages
