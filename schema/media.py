"""Live video in the schema: whether media arrive, and what the owner sees of them."""
from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from livecart.resolvers import media as r
from livecart.schema.commerce import OwnerOnly


@strawberry.type(description="The video arriving now, as its newest segment carries it.")
class MediaStatus:
    width: int
    height: int
    bitrate_kbps: int = strawberry.field(description="Kilobits per second of the newest segment.")
    seconds_since_segment: float = strawberry.field(description="How long ago the newest segment was written.")


@strawberry.type
class MediaFields:
    """LiveStream's live-video fields, mixed into LiveStream."""

    model: strawberry.Private[Any]

    @strawberry.field(
        description="Whether media are arriving now (from a browser or broadcasting software); "
        "pushed through streamUpdated when they start and stop."
    )
    def broadcasting(self) -> bool:
        return bool(self.model.broadcasting)

    @strawberry.field(
        description="Owner only: resolution and bitrate of the media arriving; null while none arrive.",
        permission_classes=[OwnerOnly],
    )
    async def media(self, info: Info) -> MediaStatus | None:
        found = await r.media_status(info, self.model)
        if found is None:
            return None
        return MediaStatus(
            width=found.width, height=found.height, bitrate_kbps=found.bitrate_kbps,
            seconds_since_segment=round(found.seconds_since_segment, 1),
        )
