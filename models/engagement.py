"""What viewers do on a stream: watch (sessions), react and comment."""
from __future__ import annotations

import datetime as dt
import enum

from tortoise import fields
from tortoise.expressions import F
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model
from tortoise.transactions import in_transaction

from models.stream import LiveStream


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

    class Meta:
        table = "stream_viewers"
        indexes = (
            Index(fields=("stream_id", "is_active"), name="stream_viewers_stream_id"),
            Index(fields=("is_active", "expires_at"), name="stream_viewers_idx_active_expiry"),
        )
        constraints = (
            CheckConstraint(check="is_active = (left_at IS NULL)", name="stream_viewers_active_until_left"),
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


async def _lock_stream(stream_id: int) -> LiveStream | None:
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
    async with in_transaction():
        await _lock_stream(stream_id)
        lapsed = await _close_lapsed_of_stream(stream_id, now)
        watching = await StreamViewer.filter(stream_id=stream_id, is_active=True).update(
            is_active=False, left_at=now
        )
        await _remove_viewers(stream_id, lapsed + watching)
    return lapsed + watching
