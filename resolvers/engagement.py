"""Viewers, reactions and chat: thin resolvers and the DataLoader batch functions."""
from __future__ import annotations

from collections.abc import Sequence

from strawberry.types import Info

from models.engagement import InteractionType, StreamInteraction


async def load_comments(keys: Sequence[int]) -> list[StreamInteraction | None]:
    """Comments by id; a deleted comment, or another kind of interaction, is None."""
    rows = {
        row.id: row
        for row in await StreamInteraction.filter(
            id__in=set(keys), interaction_type=InteractionType.COMMENT, deleted_at__isnull=True
        )
    }
    return [rows.get(key) for key in keys]


async def comment_row(info: Info, comment_id: int) -> StreamInteraction | None:
    return await info.context.loader(load_comments).load(comment_id)
