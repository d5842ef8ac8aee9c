"""Viewers, reactions and chat in the schema."""
from __future__ import annotations

import datetime as dt
import enum

import strawberry
from strawberry.types import Info

from models import engagement as m
from models.stream import LiveStream as StreamRow
from resolvers import engagement as r
from schema.user import User, user_type


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
    id: strawberry.ID
    stream_id: strawberry.ID
    text: str
    created_at: dt.datetime
    author_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: m.StreamInteraction) -> "Comment":
        return cls(
            id=strawberry.ID(str(row.id)),
            stream_id=strawberry.ID(str(row.stream_id)),
            text=row.comment_text,
            created_at=row.created_at,
            author_id=row.user_id,
        )

    @strawberry.field
    async def author(self, info: Info) -> User:
        return await user_type(info, self.author_id)


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
            id=strawberry.ID(str(session.id)),
            stream_id=strawberry.ID(str(session.stream_id)),
            expires_at=session.expires_at,
            viewer_count=viewer_count,
        )


@strawberry.type
class ViewerCount:
    stream_id: strawberry.ID
    count: int

    @classmethod
    def from_model(cls, stream_id: int, count: int) -> "ViewerCount":
        return cls(stream_id=strawberry.ID(str(stream_id)), count=count)


@strawberry.type
class ReactionCounts:
    stream_id: strawberry.ID
    likes: int
    dislikes: int

    @classmethod
    def from_model(cls, stream: StreamRow) -> "ReactionCounts":
        return cls(stream_id=strawberry.ID(str(stream.id)), likes=stream.likes, dislikes=stream.dislikes)


@strawberry.type
class EngagementFields:
    """LiveStream's viewer-side fields (counts, reactions, comments), mixed into LiveStream."""
