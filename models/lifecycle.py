"""A stream's end: above the stream, its figures and its viewers' sessions, which it closes
together in one transaction (so models/stream.py need not import what imports it)."""
from __future__ import annotations


from livecart.models import outbox
from livecart.models.clock import utcnow
from livecart.models.engagement import close_sessions_of_stream
from livecart.models.errors import bad_input, conflict
from livecart.models.figures import StreamFigures
from livecart.models.stream import LiveStream, SavedStream, StreamStatus, check_video_url
from livecart.models import events


async def end_stream(stream: LiveStream, *, save: bool, video_url: str | None, recording_url: str):
    """LIVE or SCHEDULED to ENDED in one transaction: viewer sessions closed, final figures
    taken and, with save, the replay kept (video_url, else recording_url).

    Returns (stream, saved stream or None, final figures).
    """
    if video_url is not None and not save:
        raise bad_input("videoUrl", "only a saved stream keeps a video")
    video_url = check_video_url(video_url) if video_url is not None else recording_url
    now = utcnow()
    async with outbox.transaction():
        # The status check and the change are one statement: of two concurrent ends, one wins.
        ended = await LiveStream.filter(
            id=stream.id, status__in=(StreamStatus.SCHEDULED, StreamStatus.LIVE)
        ).update(status=StreamStatus.ENDED, ended_at=now)
        if not ended:
            raise conflict("This stream has already ended.")
        await close_sessions_of_stream(stream.id, now)
        stream = await LiveStream.get(id=stream.id)
        figures = StreamFigures.of(stream, now)
        saved = None
        if save:
            saved = await SavedStream.create(
                stream_id=stream.id,
                vendor_id=stream.vendor_id,
                title=stream.title,
                video_url=video_url,
                duration_seconds=figures.duration_seconds,
                stats=figures.to_json(),
                streamed_at=stream.started_at or now,
            )
        await outbox.append(stream.id, events.stream_updated(stream.id), events.viewers_changed(stream.id))
    return stream, saved, figures
