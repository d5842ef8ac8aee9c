"""Viewers, reactions and chat in the schema."""
from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from livecart.schema.scalars import EVENT_CURSOR
from livecart.models import engagement as m
from livecart.models.stream import LiveStream as StreamRow
from livecart.resolvers import engagement as r
from livecart.resolvers import moderation as moderation_r
from livecart.schema.cost import list_size
from livecart.schema.facts import caller_dependent
from livecart.schema.permissions import IsAuthenticated
from livecart.schema.user import User, user_type

if TYPE_CHECKING:
    from livecart.schema.moderation import ChatRole


@strawberry.enum
class ReactionKind(enum.Enum):
    LIKE = "like"
    DISLIKE = "dislike"

    @classmethod
    def from_model(cls, interaction_type: m.InteractionType) -> "ReactionKind":
        return cls(m.InteractionType(interaction_type).value)

    def to_model(self) -> m.InteractionType:
        return m.InteractionType(self.value)


@strawberry.type
class Comment:
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)
    id: strawberry.ID
    stream_id: strawberry.ID
    text: str
    created_at: dt.datetime
    held: bool = strawberry.field(
        description="Waiting for a moderator's approval: shown only to its author and the moderators until approved."
    )
    author_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: m.StreamInteraction) -> "Comment":
        return cls(
            id=strawberry.ID(str(row.id)),
            stream_id=strawberry.ID(str(row.stream_id)),
            text=row.comment_text,
            created_at=row.created_at,
            held=row.held_at is not None,
            author_id=row.user_id,
        )

    @strawberry.field
    async def author(self, info: Info) -> User:
        return await user_type(info, self.author_id)

    @strawberry.field(description="The author's role in the chat of the stream's shop (a badge for the owner and moderators).")
    async def author_role(self, info: Info) -> Annotated["ChatRole", strawberry.lazy("livecart.schema.moderation")]:
        from livecart.schema.moderation import ChatRole  # the moderation schema imports this one

        role = await moderation_r.author_role(info, int(self.stream_id), self.author_id)
        return ChatRole(role.value)


async def comment_by_id(info: Info, comment_id: int) -> Comment | None:
    """The comment as the API shows it; None once deleted (or never a comment)."""
    row = await r.comment_row(info, int(comment_id))
    return Comment.from_model(row) if row else None


@strawberry.type
class Viewer:
    id: strawberry.ID
    joined_at: dt.datetime
    user_id: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, session: m.StreamViewer) -> "Viewer":
        return cls(id=strawberry.ID(str(session.id)), joined_at=session.joined_at, user_id=session.user_id)

    @strawberry.field(description="Null for an anonymous viewer.")
    async def user(self, info: Info) -> User | None:
        return await user_type(info, self.user_id) if self.user_id is not None else None


@strawberry.type
class ViewerSession:
    id: strawberry.ID
    stream_id: strawberry.ID
    expires_at: dt.datetime = strawberry.field(description="When the session lapses unless renewed by viewerHeartbeat.")
    viewer_count: int

    @classmethod
    def from_model(cls, session: m.StreamViewer, viewer_count: int) -> "ViewerSession":
        return cls(
            id=strawberry.ID(m.session_public_id(session)),
            stream_id=strawberry.ID(str(session.stream_id)),
            expires_at=session.expires_at,
            viewer_count=viewer_count,
        )


@strawberry.type
class ViewerCount:
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)
    stream_id: strawberry.ID
    count: int

    @classmethod
    def from_model(cls, stream_id: int, count: int) -> "ViewerCount":
        return cls(stream_id=strawberry.ID(str(stream_id)), count=count)


@strawberry.type
class ReactionCounts:
    event_cursor: str | None = strawberry.field(default=None, description=EVENT_CURSOR)
    stream_id: strawberry.ID
    likes: int
    dislikes: int

    @classmethod
    def from_model(cls, stream: StreamRow) -> "ReactionCounts":
        return cls(stream_id=strawberry.ID(str(stream.id)), likes=stream.likes, dislikes=stream.dislikes)


@strawberry.type
class EngagementFields:
    """LiveStream's viewer-side fields (counts, reactions, comments), mixed into LiveStream.

    The counters come from the stream row itself; what varies by caller or needs other
    rows goes through per-request DataLoaders, so a list of streams costs a constant
    number of statements.
    """

    model: strawberry.Private[StreamRow]

    @strawberry.field(description="Viewer sessions active now.")
    async def viewer_count(self, info: Info) -> int:
        return await r.viewer_count(info, self.model.id)

    @strawberry.field
    def likes(self) -> int:
        return self.model.likes

    @strawberry.field
    def dislikes(self) -> int:
        return self.model.dislikes

    @strawberry.field
    def comment_count(self) -> int:
        return self.model.comment_count

    @strawberry.field(description="The caller's own reaction; null when none or anonymous.", metadata=caller_dependent())
    async def my_reaction(self, info: Info) -> ReactionKind | None:
        kind = await r.my_reaction(info, self.model.id)
        return ReactionKind.from_model(kind) if kind else None

    @strawberry.field(
        description=f"Up to `limit` (1 to {m.MAX_COMMENTS_PAGE}) comments older than `before` (the newest when null), oldest first.",
        metadata=list_size(m.MAX_COMMENTS_PAGE, "limit", 50),
    )
    async def comments(self, info: Info, limit: int = 50, before: strawberry.ID | None = None) -> list[Comment]:
        return [Comment.from_model(row) for row in await r.comments(info, self.model.id, limit, before)]


def _session_out(pair: tuple[m.StreamViewer, int]) -> ViewerSession:
    session, count = pair
    return ViewerSession.from_model(session, count)


@strawberry.type
class EngagementMutation:
    @strawberry.mutation(
        description=(
            "Anonymous callers may join; the session lapses at expiresAt unless renewed. A viewer is a person: "
            "a user already watching (another tab), or the same browserId when anonymous, gets the same "
            "session back and counts once; it ends when each tab has left."
        )
    )
    async def join_stream(
        self,
        info: Info,
        stream_id: strawberry.ID,
        browser_id: Annotated[
            str | None, strawberry.argument(description="An anonymous browser's own random id (8-64 of A-Z a-z 0-9 - _).")
        ] = None,
    ) -> ViewerSession:
        return _session_out(await r.join_stream(info, stream_id, browser_id))

    @strawberry.mutation
    async def viewer_heartbeat(self, info: Info, session_id: strawberry.ID) -> ViewerSession:
        return _session_out(await r.viewer_heartbeat(info, session_id))

    @strawberry.mutation(description="True when this call ended the session; false when it had already ended.")
    async def leave_stream(self, info: Info, session_id: strawberry.ID) -> bool:
        return await r.leave_stream(info, session_id)

    @strawberry.mutation(
        description="Sets the caller's one reaction to the stream, replacing the other kind.",
        permission_classes=[IsAuthenticated],
    )
    async def react(self, info: Info, stream_id: strawberry.ID, kind: ReactionKind) -> ReactionCounts:
        return ReactionCounts.from_model(await r.react(info, stream_id, kind.to_model()))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def clear_reaction(self, info: Info, stream_id: strawberry.ID) -> ReactionCounts:
        return ReactionCounts.from_model(await r.react(info, stream_id, None))

    @strawberry.mutation(permission_classes=[IsAuthenticated])
    async def post_comment(self, info: Info, stream_id: strawberry.ID, text: str) -> Comment:
        return Comment.from_model(await r.post_comment(info, stream_id, text))

    # No permission class: an anonymous caller's loginUrl returns to the comment's stream,
    # which only the resolver knows after looking the comment up.
    @strawberry.mutation(description="The comment's author or the stream's owner.")
    async def delete_comment(self, info: Info, id: strawberry.ID) -> bool:
        return await r.delete_comment(info, id)
