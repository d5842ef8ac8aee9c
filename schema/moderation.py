"""Chat moderation in the schema: roles, moderators, timeouts and bans, blocked terms,
slow mode, comments held for review, the pinned comment and the audit trail."""
from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import strawberry
from strawberry.permission import BasePermission
from strawberry.types import Info

from livecart.schema.scalars import EVENT_CURSOR
from livecart.models import moderation as m
from livecart.models.stream import LiveStream as StreamRow
from livecart.resolvers import moderation as r
from livecart.models.fields import MAX_PAGE
from livecart.schema.cost import list_size
from livecart.schema.facts import caller_dependent
from livecart.schema.engagement import Comment, comment_by_id
from livecart.schema.permissions import IsAuthenticated
from livecart.schema.user import User, user_type


@strawberry.enum(description="A user's part in the chat of a shop's streams.")
class ChatRole(enum.Enum):
    OWNER = "owner"
    MODERATOR = "moderator"
    VIEWER = "viewer"


@strawberry.enum
class RestrictionKind(enum.Enum):
    TIMEOUT = "timeout"
    BAN = "ban"


ModerationActionKind = strawberry.enum(m.ActionKind, name="ModerationActionKind")


class ModeratorOnly(BasePermission):
    """The stream's owner or one of its shop's moderators (models/moderation.py decides);
    anyone else gets null and FORBIDDEN there while the rest of the answer stands."""

    depends_on_caller = True  # schema/facts.py

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.require_user()
        await m.require_moderator(source.model.vendor_id, user.id)
        return True


@strawberry.type(description="A stream's chat settings and its pinned comment.")
class ChatState:
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)
    stream_id: strawberry.ID
    slow_mode_seconds: int = strawberry.field(description="0: off; else the seconds between one viewer's comments.")
    hold_links_for_review: bool = strawberry.field(
        description="Viewers' comments with a link wait for a moderator's approval."
    )
    pinned_comment_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, chat: m.StreamChat) -> "ChatState":
        return cls(
            stream_id=strawberry.ID(str(chat.stream_id)),
            slow_mode_seconds=chat.slow_mode_seconds,
            hold_links_for_review=chat.hold_links,
            pinned_comment_id=chat.pinned_comment_id,
        )

    @strawberry.field(description="Shown on top of the chat; null when none (or it was deleted).")
    async def pinned_comment(self, info: Info) -> Comment | None:
        if self.pinned_comment_id is None:
            return None
        return await comment_by_id(info, self.pinned_comment_id)


async def held_comment_by_id(info: Info, comment_id: int) -> Comment | None:
    """A comment still waiting for approval; None once decided."""
    row = await r.held_comment_row(int(comment_id))
    return Comment.from_model(row) if row else None


async def chat_state(info: Info, stream_id: int) -> ChatState:
    return ChatState.from_model(await r.chat_settings(info, stream_id))


MAX_DELETED_IDS = m.MAX_DELETED_IDS


@strawberry.type(description="Comments that left a stream's chat, and its count after.")
class CommentDeletion:
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)
    stream_id: strawberry.ID
    comment_ids: list[strawberry.ID] = strawberry.field(
        description=f"At most {MAX_DELETED_IDS} a message: a ban that removes more sends several.",
        metadata=list_size(MAX_DELETED_IDS),
    )
    comment_count: int


@strawberry.type(description="A timeout or ban in force on one user in one shop's chats.")
class ChatRestriction:
    model: strawberry.Private[m.ChatRestriction]

    @strawberry.field
    async def user(self, info: Info) -> User:
        return await user_type(info, self.model.user_id)

    @strawberry.field
    def kind(self) -> RestrictionKind:
        return RestrictionKind(self.model.kind.value)

    @strawberry.field
    def reason(self) -> str | None:
        return self.model.reason

    @strawberry.field(description="When a timeout ends; null for a ban.")
    def ends_at(self) -> dt.datetime | None:
        return self.model.ends_at

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return self.model.created_at


@strawberry.type(description="One entry of the audit trail.")
class ModerationAction:
    model: strawberry.Private[m.ModerationAction]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    def action(self) -> ModerationActionKind:
        return self.model.action

    @strawberry.field(description="Who acted; null if that account is gone.")
    async def actor(self, info: Info) -> User | None:
        return await user_type(info, self.model.actor_id) if self.model.actor_id else None

    @strawberry.field
    async def target_user(self, info: Info) -> User | None:
        return await user_type(info, self.model.target_user_id) if self.model.target_user_id else None

    @strawberry.field
    def stream_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.model.stream_id)) if self.model.stream_id else None

    @strawberry.field
    def comment_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self.model.comment_id)) if self.model.comment_id else None

    @strawberry.field
    def reason(self) -> str | None:
        return self.model.reason

    @strawberry.field(description="What changed: a duration, a setting, the terms.")
    def detail(self) -> str | None:
        return self.model.detail

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return self.model.created_at


@strawberry.type
class ModerationFields:
    """LiveStream's chat-moderation fields, mixed into LiveStream."""

    model: strawberry.Private[StreamRow]

    @strawberry.field(description="Slow mode, review of links and the pinned comment.")
    async def chat(self, info: Info) -> ChatState:
        return await chat_state(info, self.model.id)

    @strawberry.field(description="The caller's role in this stream's chat; null when anonymous.", metadata=caller_dependent())
    async def my_chat_role(self, info: Info) -> ChatRole | None:
        role = await r.my_chat_role(info, self.model)
        return ChatRole(role.value) if role else None

    @strawberry.field(
        description=f"The caller's own comments waiting for approval (the first {MAX_PAGE}).",
        metadata=caller_dependent(list_size(MAX_PAGE)),
    )
    async def my_held_comments(self, info: Info) -> list[Comment]:
        return [Comment.from_model(row) for row in (await r.my_held_comments(info, self.model.id))[:MAX_PAGE]]

    @strawberry.field(
        description=f"Owner and moderators: comments waiting for approval, oldest first (the first {MAX_PAGE}).",
        permission_classes=[ModeratorOnly],
        metadata=list_size(MAX_PAGE),
    )
    async def held_comments(self, info: Info) -> list[Comment] | None:
        return [Comment.from_model(row) for row in await r.held_comments(info, self.model.id)]


@strawberry.type
class ModerationQuery:
    @strawberry.field(
        description=f"Owner and moderators: the shop's moderators (the first {MAX_PAGE} appointed).",
        permission_classes=[IsAuthenticated], metadata=list_size(MAX_PAGE),
    )
    async def moderators(self, info: Info, vendor_id: strawberry.ID) -> list[User]:
        return [User.from_model(u) for u in await r.moderators(info, vendor_id)]

    @strawberry.field(
        description="Owner and moderators: the shop's blocked terms, normalised.",
        permission_classes=[IsAuthenticated], metadata=list_size(m.MAX_BLOCKED_TERMS),
    )
    async def blocked_terms(self, info: Info, vendor_id: strawberry.ID) -> list[str]:
        return await r.blocked_terms(info, vendor_id)

    @strawberry.field(
        description=f"Owner and moderators: timeouts and bans in force, newest first (the first {MAX_PAGE}).",
        permission_classes=[IsAuthenticated], metadata=list_size(MAX_PAGE),
    )
    async def chat_restrictions(self, info: Info, vendor_id: strawberry.ID) -> list[ChatRestriction]:
        return [ChatRestriction(model=row) for row in await r.restrictions(info, vendor_id)]

    @strawberry.field(
        description=f"Owner only: every moderation action, newest first: the first `limit` (1 to {m.MAX_LOG_PAGE}).",
        permission_classes=[IsAuthenticated], metadata=list_size(m.MAX_LOG_PAGE, "limit", 50),
    )
    async def moderation_log(self, info: Info, vendor_id: strawberry.ID, limit: int = 50) -> list[ModerationAction]:
        return [ModerationAction(model=row) for row in await r.moderation_log(info, vendor_id, limit)]


def _stream_out(row: StreamRow):
    from livecart.schema.stream import LiveStream

    return LiveStream(model=row)


@strawberry.type
class ModerationMutation:
    @strawberry.mutation(description="Owner only: the user may moderate the chat of the shop's streams.", permission_classes=[IsAuthenticated])
    async def add_moderator(self, info: Info, vendor_id: strawberry.ID, user_id: strawberry.ID) -> User:
        return User.from_model(await r.add_moderator(info, vendor_id, user_id))

    @strawberry.mutation(description="Owner only: true when the user was a moderator.", permission_classes=[IsAuthenticated])
    async def remove_moderator(self, info: Info, vendor_id: strawberry.ID, user_id: strawberry.ID) -> bool:
        return await r.remove_moderator(info, vendor_id, user_id)

    @strawberry.mutation(
        description="Owner and moderators: no comments or reactions on the shop's streams for 1 second to 14 days.",
        permission_classes=[IsAuthenticated],
    )
    async def timeout_user(
        self, info: Info, vendor_id: strawberry.ID, user_id: strawberry.ID, duration_seconds: int,
        reason: str | None = None,
    ) -> ChatRestriction:
        return ChatRestriction(model=await r.timeout_user(info, vendor_id, user_id, duration_seconds, reason))

    @strawberry.mutation(
        description="Owner and moderators: no comments or reactions on the shop's streams until lifted; "
        "removeComments also removes the user's comments from its live streams.",
        permission_classes=[IsAuthenticated],
    )
    async def ban_user(
        self, info: Info, vendor_id: strawberry.ID, user_id: strawberry.ID, reason: str | None = None,
        remove_comments: bool = False,
    ) -> ChatRestriction:
        return ChatRestriction(model=await r.ban_user(info, vendor_id, user_id, reason, remove_comments))

    @strawberry.mutation(description="Owner and moderators: ends a timeout or ban; true when there was one.", permission_classes=[IsAuthenticated])
    async def lift_restriction(self, info: Info, vendor_id: strawberry.ID, user_id: strawberry.ID) -> bool:
        return await r.lift_restriction(info, vendor_id, user_id)

    @strawberry.mutation(
        description="Owner and moderators: whole words refused in the shop's chats (at most 1,000 terms of 100 "
        "characters); returns the list after.",
        permission_classes=[IsAuthenticated],
        metadata=list_size(m.MAX_BLOCKED_TERMS),
    )
    async def add_blocked_terms(self, info: Info, vendor_id: strawberry.ID, terms: list[str]) -> list[str]:
        return await r.add_blocked_terms(info, vendor_id, terms)

    @strawberry.mutation(
        description="Owner and moderators: returns the list after.",
        permission_classes=[IsAuthenticated], metadata=list_size(m.MAX_BLOCKED_TERMS),
    )
    async def remove_blocked_terms(self, info: Info, vendor_id: strawberry.ID, terms: list[str]) -> list[str]:
        return await r.remove_blocked_terms(info, vendor_id, terms)

    @strawberry.mutation(
        description="Owner and moderators: 0 turns slow mode off, else 3 to 120 seconds between one viewer's comments.",
        permission_classes=[IsAuthenticated],
    )
    async def set_slow_mode(self, info: Info, stream_id: strawberry.ID, seconds: int) -> ChatState:
        stream = await r.set_slow_mode(info, stream_id, seconds)
        return await chat_state(info, stream.id)

    @strawberry.mutation(
        description="Owner and moderators: viewers' comments with a link wait for approval.",
        permission_classes=[IsAuthenticated],
    )
    async def set_hold_links_for_review(self, info: Info, stream_id: strawberry.ID, enabled: bool) -> ChatState:
        stream = await r.set_hold_links(info, stream_id, enabled)
        return await chat_state(info, stream.id)

    @strawberry.mutation(description="Owner and moderators: the one comment shown on top of the stream's chat.", permission_classes=[IsAuthenticated])
    async def pin_comment(self, info: Info, id: strawberry.ID) -> ChatState:
        stream = await r.pin_comment(info, id)
        return await chat_state(info, stream.id)

    @strawberry.mutation(description="Owner and moderators: true when a comment was pinned.", permission_classes=[IsAuthenticated])
    async def unpin_comment(self, info: Info, stream_id: strawberry.ID) -> bool:
        return await r.unpin_comment(info, stream_id)

    @strawberry.mutation(description="Owner and moderators: a held comment shows to everyone.", permission_classes=[IsAuthenticated])
    async def approve_comment(self, info: Info, id: strawberry.ID) -> Comment:
        return Comment.from_model(await r.approve_comment(info, id))

    @strawberry.mutation(description="Owner and moderators: a held comment is discarded.", permission_classes=[IsAuthenticated])
    async def reject_comment(self, info: Info, id: strawberry.ID) -> bool:
        return await r.reject_comment(info, id)
