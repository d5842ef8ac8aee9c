"""Viewers, reactions and chat: thin resolvers and the DataLoader batch functions.

Every mutation commits first, then publishes its events (models/events.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strawberry.types import Info

from livecart.models import chat, engagement
from livecart.models.engagement import InteractionType, StreamInteraction, StreamViewer
from livecart.models.errors import not_found
from livecart.models.fields import parse_id
from livecart.models.figures import viewer_counts
from livecart.models.stream import LiveStream
from livecart.models.clock import utcnow
from livecart.resolvers import ratelimit
from livecart.models import events
from livecart.subscriptions.broker import publish_to_stream

# ---------------------------------------------------------------- loaders


async def load_comments(keys: Sequence[int]) -> list[StreamInteraction | None]:
    """Comments by id; a deleted comment, or another kind of interaction, is None."""
    rows = {
        row.id: row
        for row in await StreamInteraction.filter(
            id__in=set(keys), interaction_type=InteractionType.COMMENT, deleted_at__isnull=True, held_at__isnull=True
        )
    }
    return [rows.get(key) for key in keys]


async def load_viewer_counts(keys: Sequence[int]) -> list[int]:
    counts = await viewer_counts(keys, utcnow())
    return [counts.get(key, 0) for key in keys]


async def load_reactions(keys: Sequence[tuple[Any, int]]) -> list[InteractionType | None]:
    """Keys are (request context, stream id). The caller is looked up here, in the batch,
    not before `load`: fields awaiting the caller first would resume one by one and each
    make a batch of its own. One request has one caller, so this is one statement."""
    user = await keys[0][0].user() if keys else None
    if user is None:
        return [None] * len(keys)
    mine = await engagement.reactions_of(user.id, [stream_id for _, stream_id in keys])
    return [mine.get(stream_id) for _, stream_id in keys]


async def load_comment_pages(keys: Sequence[tuple[int, int, int | None]]) -> list[list[StreamInteraction]]:
    """Keys are (stream id, limit, before); streams asked with the same page share a statement."""
    pages: dict[tuple[int, int, int | None], list[StreamInteraction]] = {}
    for limit, before in {(limit, before) for _, limit, before in keys}:
        streams = [s for s, lim, bef in keys if (lim, bef) == (limit, before)]
        for stream_id, page in (await engagement.comment_pages(streams, limit, before)).items():
            pages[(stream_id, limit, before)] = page
    return [pages.get(key, []) for key in keys]


async def comment_row(info: Info, comment_id: int) -> StreamInteraction | None:
    return await info.context.loader(load_comments).load(comment_id)


async def viewer_count(info: Info, stream_id: int) -> int:
    return await info.context.loader(load_viewer_counts).load(stream_id)


async def my_reaction(info: Info, stream_id: int) -> InteractionType | None:
    return await info.context.loader(load_reactions).load((info.context, stream_id))


async def comments(info: Info, stream_id: int, limit: int, before: str | None) -> list[StreamInteraction]:
    engagement.check_page_limit(limit)  # here too, so the error names this field, not a batch
    cursor = parse_id("before", before) if before is not None else None
    return await info.context.loader(load_comment_pages).load((stream_id, limit, cursor))


# ---------------------------------------------------------------- viewers


async def _viewers_changed(info: Info, stream_id: int) -> None:
    await publish_to_stream(info.context.broker, stream_id, events.viewers_changed(stream_id))


async def join_stream(info: Info, stream_id: str, browser_id: str | None = None) -> tuple[StreamViewer, int]:
    await ratelimit.hit_address(info, ratelimit.JOIN_ADDRESS)
    user = await info.context.user()
    session, count = await engagement.join_stream(
        parse_id("streamId", stream_id), user.id if user else None, utcnow(),
        info.context.settings.viewer_session_ttl_seconds, engagement.check_browser_id(browser_id),
    )
    await _viewers_changed(info, session.stream_id)
    return session, count


async def viewer_heartbeat(info: Info, session_id: str) -> tuple[StreamViewer, int]:
    user = await info.context.user()
    return await engagement.heartbeat(
        session_id, user.id if user else None, utcnow(),
        info.context.settings.viewer_session_ttl_seconds,
    )


async def leave_stream(info: Info, session_id: str) -> bool:
    user = await info.context.user()
    session, left, _ = await engagement.leave_stream(
        session_id, user.id if user else None, utcnow()
    )
    if left:
        await _viewers_changed(info, session.stream_id)
    return left


async def sweep_lapsed_sessions(broker) -> dict[int, int]:
    """Closes lapsed sessions everywhere and tells each changed stream's subscribers."""
    counts = await engagement.close_lapsed_sessions(utcnow())
    for stream_id in counts:
        await publish_to_stream(broker, stream_id, events.viewers_changed(stream_id))
    return counts


# ---------------------------------------------------------------- reactions


async def react(info: Info, stream_id: str, kind: InteractionType | None) -> LiveStream:
    stream_key = parse_id("streamId", stream_id)
    user = await info.context.require_user(f"/live/{stream_key}")
    stream, changed = await chat.react(stream_key, user.id, kind)
    if changed:
        await publish_to_stream(info.context.broker, stream.id, events.reactions_changed(stream.id))
    return stream


# ---------------------------------------------------------------- comments


async def post_comment(info: Info, stream_id: str, text: str) -> StreamInteraction:
    stream_key = parse_id("streamId", stream_id)
    user = await info.context.require_user(f"/live/{stream_key}")
    await ratelimit.hit(info, ratelimit.COMMENT, user.id, stream_key)
    comment = await chat.post_comment(stream_key, user.id, text, utcnow())
    if comment.held_at is None:
        event = events.comment_added(comment.stream_id, comment.id)
    else:  # waits for a moderator: only they hear of it
        event = events.comment_held(comment.stream_id, comment.id)
    await publish_to_stream(info.context.broker, comment.stream_id, event)
    return comment


async def delete_comment(info: Info, comment_id: str) -> bool:
    key = parse_id("id", comment_id)
    comment = await engagement.visible_comment(key)
    # The login page returns to the comment's stream; an unknown comment has none to return to.
    user = await info.context.require_user(f"/live/{comment.stream_id}" if comment else None)
    if comment is None:
        raise not_found("comment", key)
    unpinned = await chat.delete_comment(comment, user.id, utcnow())
    published = [events.comment_deleted(comment.stream_id, [comment.id])]
    if unpinned:
        published.append(events.chat_updated(comment.stream_id))
    await publish_to_stream(info.context.broker, comment.stream_id, *published)
    return True
