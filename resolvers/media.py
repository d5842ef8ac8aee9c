"""Live video: the owner's view of the media arriving."""
from __future__ import annotations

import asyncio

from strawberry.types import Info

from livecart.models import media
from livecart.models.stream import LiveStream


async def media_status(info: Info, stream: LiveStream) -> media.MediaInfo | None:
    """What the newest segment carries, while media arrive (read from MEDIA_DIR: the media server
    writes there too)."""
    if not stream.broadcasting:
        return None
    files = media.MediaFiles.of(info.context.settings.media_dir, stream.playback_id)
    return await asyncio.to_thread(media.probe, files)
