"""Moderation: thin resolvers over models/moderation.py, and their DataLoaders.

Every mutation commits first (in the model), then publishes its events.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strawberry.types import Info

from livecart.models import moderation
from livecart.models.engagement import StreamInteraction
from livecart.models.fields import parse_id
from livecart.models.moderation import ChatRole, StreamChat
from livecart.models.stream import LiveStream
from livecart.models.clock import utcnow
from livecart.models.user import User
from livecart.models import events
from livecart.subscriptions.broker import publish_to_stream

# ---------------------------------------------------------------- loaders


async def load_author_roles(keys: Sequence[tuple[int, int]]) -> list[ChatRole]:
    """Keys are (stream id, user id): the author's role in the chat of the stream's vendor."""
    vendors = dict(await LiveStream.filter(id__in={s for s, _ in keys}).values_list("id", "vendor_id"))
    pairs = {(vendors[s], u) for s, u in keys if s in vendors}
    roles = await moderation.chat_roles(pairs) if pairs else {}
    return [roles.get((vendors.get(s), u), ChatRole.VIEWER) for s, u in keys]


async def load_chats(keys: Sequence[int]) -> list[StreamChat]:
    chats = await moderation.chats_of(keys)
    return [chats[key] for key in keys]


async def load_my_held(keys: Sequence[tuple[Any, int]]) -> list[list[StreamInteraction]]:
    """Keys are (request context, stream id): the caller's own comments awaiting review."""
    user = await keys[0][0].user() if keys else None
    if user is None:
        return [[] for _ in keys]
    held = await moderation.held_comments_of_author([s for _, s in keys], user.id)
    return [held.get(s, []) for _, s in keys]


async def author_role(info: Info, stream_id: int, user_id: int) -> ChatRole:
    return await info.context.loader(load_author_roles).load((stream_id, user_id))


async def chat_settings(info: Info, stream_id: int) -> StreamChat:
    return await info.context.loader(load_chats).load(stream_id)


async def my_held_comments(info: Info, stream_id: int) -> list[StreamInteraction]:
    return await info.context.loader(load_my_held).load((info.context, stream_id))


async def my_chat_role(info: Info, stream: LiveStream) -> ChatRole | None:
    user = await info.context.user()
    if user is None:
        return None
    return await author_role(info, stream.id, user.id)


async def held_comment_row(comment_id: int) -> StreamInteraction | None:
    return await StreamInteraction.get_or_none(id=comment_id, deleted_at__isnull=True, held_at__isnull=False)


async def held_comments(info: Info, stream_id: int) -> list[StreamInteraction]:
    user = await info.context.require_user()
    return await moderation.held_comments(stream_id, user.id)


# ---------------------------------------------------------------- reads


async def _caller(info: Info) -> User:
    return await info.context.require_user()


async def moderators(info: Info, vendor_id: str) -> list[User]:
    return await moderation.moderators(parse_id("vendorId", vendor_id), (await _caller(info)).id)


async def blocked_terms(info: Info, vendor_id: str) -> list[str]:
    return await moderation.blocked_terms(parse_id("vendorId", vendor_id), (await _caller(info)).id)


async def restrictions(info: Info, vendor_id: str):
    return await moderation.restrictions(parse_id("vendorId", vendor_id), (await _caller(info)).id, utcnow())


async def moderation_log(info: Info, vendor_id: str, limit: int):
    return await moderation.moderation_log(parse_id("vendorId", vendor_id), (await _caller(info)).id, limit)


# ---------------------------------------------------------------- actions


async def _chat_updated(info: Info, stream_id: int) -> None:
    await publish_to_stream(info.context.broker, stream_id, events.chat_updated(stream_id))


async def add_moderator(info: Info, vendor_id: str, user_id: str) -> User:
    return await moderation.add_moderator(
        parse_id("vendorId", vendor_id), (await _caller(info)).id, parse_id("userId", user_id)
    )


async def remove_moderator(info: Info, vendor_id: str, user_id: str) -> bool:
    return await moderation.remove_moderator(
        parse_id("vendorId", vendor_id), (await _caller(info)).id, parse_id("userId", user_id)
    )


async def timeout_user(info: Info, vendor_id: str, user_id: str, seconds: int, reason: str | None):
    return await moderation.timeout_user(
        parse_id("vendorId", vendor_id), (await _caller(info)).id, parse_id("userId", user_id), seconds, reason, utcnow()
    )


async def ban_user(info: Info, vendor_id: str, user_id: str, reason: str | None, remove_comments: bool):
    restriction, removed = await moderation.ban_user(
        parse_id("vendorId", vendor_id), (await _caller(info)).id, parse_id("userId", user_id), reason,
        remove_comments, utcnow(),
    )
    for stream_id in sorted(removed):
        # The ban logged each stream's comment_deleted messages (models/moderation.py): these are they.
        await publish_to_stream(info.context.broker, stream_id)
    return restriction


async def lift_restriction(info: Info, vendor_id: str, user_id: str) -> bool:
    return await moderation.lift_restriction(
        parse_id("vendorId", vendor_id), (await _caller(info)).id, parse_id("userId", user_id)
    )


async def add_blocked_terms(info: Info, vendor_id: str, terms: list[str]) -> list[str]:
    return await moderation.add_blocked_terms(parse_id("vendorId", vendor_id), (await _caller(info)).id, terms)


async def remove_blocked_terms(info: Info, vendor_id: str, terms: list[str]) -> list[str]:
    return await moderation.remove_blocked_terms(parse_id("vendorId", vendor_id), (await _caller(info)).id, terms)


async def set_slow_mode(info: Info, stream_id: str, seconds: int) -> LiveStream:
    stream = await moderation.set_slow_mode(parse_id("streamId", stream_id), (await _caller(info)).id, seconds)
    await _chat_updated(info, stream.id)
    return stream


async def set_hold_links(info: Info, stream_id: str, enabled: bool) -> LiveStream:
    stream = await moderation.set_hold_links(parse_id("streamId", stream_id), (await _caller(info)).id, enabled)
    await _chat_updated(info, stream.id)
    return stream


async def pin_comment(info: Info, comment_id: str) -> LiveStream:
    stream = await moderation.pin_comment(parse_id("id", comment_id), (await _caller(info)).id)
    await _chat_updated(info, stream.id)
    return stream


async def unpin_comment(info: Info, stream_id: str) -> bool:
    key = parse_id("streamId", stream_id)
    unpinned = await moderation.unpin_comment(key, (await _caller(info)).id)
    if unpinned:
        await _chat_updated(info, key)
    return unpinned


async def approve_comment(info: Info, comment_id: str) -> StreamInteraction:
    comment = await moderation.approve_comment(parse_id("id", comment_id), (await _caller(info)).id)
    await publish_to_stream(info.context.broker, comment.stream_id, events.comment_added(comment.stream_id, comment.id))
    return comment


async def reject_comment(info: Info, comment_id: str) -> bool:
    comment = await moderation.reject_comment(parse_id("id", comment_id), (await _caller(info)).id, utcnow())
    # The author's page shows it as waiting: the deletion tells it the answer.
    await publish_to_stream(info.context.broker, comment.stream_id, events.comment_deleted(comment.stream_id, [comment.id]))
    return True
