"""What a viewer says on a stream, reacting and commenting: the viewer's side (models/engagement.py)
under the chat's rules (models/moderation.py, which itself removes comments through engagement:
so this sits above both)."""
from __future__ import annotations

import datetime as dt

from tortoise.expressions import F

from livecart.models import engagement, moderation, outbox
from livecart.models.clock import utcnow
from livecart.models.engagement import InteractionType, StreamInteraction
from livecart.models.errors import conflict, forbidden, not_found
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models import events


async def react(stream_id: int, user_id: int, kind: InteractionType | None) -> tuple[LiveStream, bool]:
    """Sets (or, with None, clears) the user's one reaction on a live stream, unless a timeout or
    ban refuses it (FORBIDDEN). Returns the stream with its counts after, and whether anything changed."""
    if kind is not None and kind not in engagement.REACTION_TYPES:
        raise ValueError(f"{kind} is not a reaction")
    stream = await engagement.existing_stream(stream_id)
    engagement.check_reactable(stream)
    await moderation.check_not_restricted(stream.vendor_id, user_id, utcnow())
    return await engagement.store_reaction(stream_id, user_id, kind)


async def post_comment(stream_id: int, user_id: int, text: str, now: dt.datetime | None = None) -> StreamInteraction:
    """A comment, unless the chat's rules refuse it: a timeout or ban (FORBIDDEN), a blocked
    term (BAD_USER_INPUT), slow mode (RATE_LIMITED). The owner and moderators are exempt from
    all three and from review; a viewer's comment with a link is held when the stream says so."""
    now = now or utcnow()
    text = engagement.clean_comment(text)
    stream = await engagement.existing_stream(stream_id)
    staff = await moderation.chat_role(stream.vendor_id, user_id) is not moderation.ChatRole.VIEWER
    chat = await moderation.chat_of(stream_id)
    if not staff:
        await moderation.check_not_restricted(stream.vendor_id, user_id, now)
        await moderation.check_blocked_terms(stream.vendor_id, text)
    held = not staff and chat.hold_links and moderation.has_link(text)
    async with outbox.transaction():
        # The stream row lock orders one stream's comments, so slow mode sees the one before.
        locked = await engagement.lock_stream(stream_id)
        if locked.status != StreamStatus.LIVE:
            raise conflict(f"Only a live stream takes comments; this one is {locked.status.value}.")
        if not staff and chat.slow_mode_seconds:
            last = (
                await StreamInteraction.filter(
                    stream_id=stream_id, user_id=user_id, interaction_type=InteractionType.COMMENT
                ).order_by("-created_at").first()
            )
            if last is not None:
                wait = (last.created_at + dt.timedelta(seconds=chat.slow_mode_seconds) - now).total_seconds()
                if wait > 0:
                    raise moderation.slow_mode_error(wait, chat.slow_mode_seconds)
        if not held:
            await LiveStream.filter(id=stream_id).update(comment_count=F("comment_count") + 1)
        comment = await StreamInteraction.create(
            stream_id=stream_id, user_id=user_id, interaction_type=InteractionType.COMMENT, comment_text=text,
            created_at=now, held_at=now if held else None,
        )
        told = events.comment_held if held else events.comment_added  # held: only moderators hear of it
        await outbox.append(stream_id, told(stream_id, comment.id))
        return comment


async def delete_comment(comment: StreamInteraction, user_id: int, now: dt.datetime) -> bool:
    """Soft delete by the author, or by the stream's owner or a moderator (kept in the audit
    trail); it stops showing and counting. Returns whether it was the stream's pinned comment."""
    stream = await LiveStream.get(id=comment.stream_id)
    if comment.user_id != user_id and await moderation.chat_role(stream.vendor_id, user_id) is moderation.ChatRole.VIEWER:
        raise forbidden("Only the comment's author, the stream's owner or a moderator may delete it.")
    async with outbox.transaction():
        if not await engagement.remove_comments([comment.id], now):  # someone deleted it a moment ago
            raise not_found("comment", comment.id)
        unpinned = await moderation.StreamChat.filter(stream_id=stream.id, pinned_comment_id=comment.id).update(
            pinned_comment_id=None
        )
        if comment.user_id != user_id:
            await moderation.audit_deletion(comment, stream, user_id)
        told = [events.comment_deleted(stream.id, [comment.id])]
        if unpinned:
            told.append(events.chat_updated(stream.id))
        await outbox.append(stream.id, *told)
    comment.deleted_at = now
    return bool(unpinned)
