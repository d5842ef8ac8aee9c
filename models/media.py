"""Live video: stream keys, who is publishing, and a stream's media files on disk.

A stream's media live under MEDIA_DIR by its public playback id, never by its key:
`hls/<playback id>.m3u8` and `hls/<playback id>-<n>.ts` (the layout nginx-rtmp writes with
`hls_nested off`, and the one livecart's own WHIP path writes too), and the replay
`recordings/<playback id>.mp4`. Every segment is kept while the stream runs: they are the
recording, on disk as it goes, so a restarted process loses nothing already received. Paths are
built only from playback ids read from the database (hex, checked again here), never from input.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pathlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from livecart.models import events, outbox
from livecart.models.errors import DomainError, ErrorCode, conflict
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models.clock import utcnow

log = logging.getLogger("livecart.media")

PLAYBACK_ID = re.compile(r"[0-9a-f]{8,32}")
STREAM_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
SEGMENT = re.compile(r"(?P<pid>[0-9a-f]{8,32})-(?P<n>\d{1,9})\.ts")


def new_stream_key() -> str:
    return secrets.token_urlsafe(32)


# ---------------------------------------------------------------- publishing


def refused(message: str) -> DomainError:
    """A publish that may not go ahead (unknown or rotated key, ended stream)."""
    return DomainError(ErrorCode.FORBIDDEN, message)


async def start_publish(stream_key: str, publisher: str, *, starts_stream: bool) -> tuple[LiveStream, bool]:
    """Media starts arriving with this key: (the stream, whether its status or broadcasting changed).

    Refused (FORBIDDEN) for a key no stream has (a rotated key included) and for an ENDED stream;
    CONFLICT while another publisher sends this stream's media. The same publisher again (a
    duplicated hook) changes nothing. A SCHEDULED stream goes LIVE as startStream does, unless
    starts_stream is off.
    """
    if not STREAM_KEY.fullmatch(stream_key or ""):
        raise refused("Unknown stream key.")
    async with outbox.transaction():
        stream = await LiveStream.filter(stream_key=stream_key).select_for_update(no_key=True).first()
        if stream is None:
            raise refused("Unknown stream key.")
        if stream.status == StreamStatus.ENDED:
            raise refused("This stream has ended; create a new one to go live again.")
        if stream.broadcasting and stream.publisher != publisher:
            raise conflict("Another publisher is already sending this stream's video.")
        if stream.broadcasting:
            return stream, False
        changes = {"broadcasting": True, "publisher": publisher}
        if stream.status == StreamStatus.SCHEDULED and starts_stream:
            changes.update(status=StreamStatus.LIVE, started_at=utcnow())
        await LiveStream.filter(id=stream.id).update(**changes)
        await outbox.append(stream.id, events.stream_updated(stream.id))  # streamUpdated's `broadcasting`, and status
        for name, value in changes.items():
            setattr(stream, name, value)
    return stream, True


async def stop_publish(publisher: str) -> LiveStream | None:
    """Media stopped arriving from this publisher: the stream it was sending, if it still was.

    A publish-done that is late (after another publish took over) or repeated changes nothing."""
    async with outbox.transaction():
        stream = await LiveStream.filter(publisher=publisher).select_for_update(no_key=True).first()
        if stream is None:
            return None
        await LiveStream.filter(id=stream.id, publisher=publisher).update(broadcasting=False, publisher=None)
        await outbox.append(stream.id, events.stream_updated(stream.id))
    stream.broadcasting, stream.publisher = False, None
    return stream


async def stream_of_publish_name(name: str) -> LiveStream | None:
    """The stream a media server names by key (before its rename) or by playback id (after)."""
    if PLAYBACK_ID.fullmatch(name or ""):  # 8-32 hex digits; a key is 43 characters
        return await LiveStream.get_or_none(playback_id=name)
    if STREAM_KEY.fullmatch(name or ""):
        return await LiveStream.get_or_none(stream_key=name)
    return None


async def may_go_on(publisher: str) -> bool:
    """Whether this publisher may keep sending: its stream has not ended meanwhile."""
    return await LiveStream.filter(publisher=publisher).exclude(status=StreamStatus.ENDED).exists()


async def rotate_stream_key(stream: LiveStream) -> LiveStream:
    """A new secret key; the old one is refused from now on (a publish already under way goes on)."""
    key = new_stream_key()
    await LiveStream.filter(id=stream.id).update(stream_key=key)
    stream.stream_key = key
    return stream


async def clear_broadcasting(prefix: str) -> list[int]:
    """Streams still marked as broadcasting from publish sessions of a kind this process held and
    lost (its WHIP sessions, at start-up): they are not broadcasting any more."""
    async with outbox.transaction():
        ids = sorted(row.id for row in await LiveStream.filter(broadcasting=True, publisher__startswith=prefix))
        if ids:
            await LiveStream.filter(id__in=ids).update(broadcasting=False, publisher=None)
        for stream_id in ids:  # in id order, as every change that logs on several streams
            await outbox.append(stream_id, events.stream_updated(stream_id))
    return ids


# ---------------------------------------------------------------- publishers held by this process

# Publishers this process feeds (WHIP sessions), by stream id: ending a stream stops them first, so
# the recording is assembled from every segment they wrote. Another process's stop themselves when
# they see the stream ENDED.
_local_publishers: dict[int, Callable[[], Awaitable[None]]] = {}


def hold_publisher(stream_id: int, stop: Callable[[], Awaitable[None]]) -> None:
    _local_publishers[stream_id] = stop


def release_publisher(stream_id: int, stop: Callable[[], Awaitable[None]]) -> None:
    if _local_publishers.get(stream_id) == stop:  # bound methods: equal, never identical
        del _local_publishers[stream_id]


async def stop_local_publisher(stream_id: int) -> None:
    stop = _local_publishers.get(stream_id)
    if stop is not None:
        await stop()


# ---------------------------------------------------------------- files


@dataclasses.dataclass(frozen=True)
class MediaFiles:
    """Where one stream's media are: built from the playback id stored with the stream."""

    root: pathlib.Path
    playback_id: str

    def __post_init__(self) -> None:
        if not PLAYBACK_ID.fullmatch(self.playback_id):
            raise ValueError("not a playback id")

    @classmethod
    def of(cls, media_dir: str, playback_id: str) -> "MediaFiles":
        return cls(pathlib.Path(media_dir), playback_id)

    @property
    def hls_dir(self) -> pathlib.Path:
        return self.root / "hls"

    @property
    def playlist(self) -> pathlib.Path:
        return self.hls_dir / f"{self.playback_id}.m3u8"

    @property
    def recording(self) -> pathlib.Path:
        return self.root / "recordings" / f"{self.playback_id}.mp4"

    def segment_pattern(self) -> str:
        return str(self.hls_dir / f"{self.playback_id}-%d.ts")

    def segments(self) -> list[pathlib.Path]:
        """Every segment written so far, in order."""
        found = []
        if self.hls_dir.is_dir():
            for entry in os.scandir(self.hls_dir):
                match = SEGMENT.fullmatch(entry.name)
                if match and match["pid"] == self.playback_id:
                    found.append((int(match["n"]), pathlib.Path(entry.path)))
        return [path for _, path in sorted(found)]

    def next_segment_number(self) -> int:
        segments = self.segments()
        return int(SEGMENT.fullmatch(segments[-1].name)["n"]) + 1 if segments else 0

    def delete(self) -> int:
        """Removes the stream's playlist, segments and recording; how many files went."""
        removed = 0
        for path in [*self.segments(), self.playlist, self.recording]:
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    width: int
    height: int
    bitrate_kbps: int
    seconds_since_segment: float


def probe(files: MediaFiles) -> MediaInfo | None:
    """What the newest complete segment carries: resolution and bitrate (None before any)."""
    import av

    segments = files.segments()
    for path in reversed(segments[-2:]):  # the newest may still be being written
        try:
            with av.open(str(path)) as container:
                video = container.streams.video[0]
                duration = float(container.duration or 0) / 1_000_000
                if duration <= 0 or not video.codec_context.width:
                    continue
                return MediaInfo(
                    width=video.codec_context.width,
                    height=video.codec_context.height,
                    bitrate_kbps=int(path.stat().st_size * 8 / duration / 1000),
                    seconds_since_segment=max(0.0, time.time() - path.stat().st_mtime),
                )
        except (av.error.FFmpegError, IndexError, OSError):
            continue
    return None


def assemble_recording(files: MediaFiles) -> pathlib.Path | None:
    """Every segment remuxed (no re-encoding) into one MP4 with its index first, so a player can
    seek at once. Timestamps start at 0; a gap where the publisher reconnected is closed up. A
    truncated last segment (its publisher still sending) ends the recording where it breaks.
    None when nothing was recorded."""
    import av

    segments = files.segments()
    if not segments:
        return None
    files.recording.parent.mkdir(parents=True, exist_ok=True)
    partial = files.recording.with_name(f".{files.playback_id}.mp4.part")
    written = 0
    # One clock for both kinds (MPEG-TS counts both in 1/90000 s): audio stays in step with video.
    shift: int | None = None
    latest = 0
    last: dict[str, int] = {}
    with av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        outputs: dict[str, object] = {}
        for path in segments:
            try:
                container = av.open(str(path))
            except (av.error.FFmpegError, OSError) as exc:
                log.warning("recording %s: skipped %s (%s)", files.playback_id, path.name, exc)
                continue
            with container:
                kinds = {}
                for stream in container.streams:
                    if stream.type in ("video", "audio") and stream.type not in kinds:
                        kinds[stream.type] = stream
                        if stream.type not in outputs and not last:
                            outputs[stream.type] = output.add_stream_from_template(stream)
                segment_start = True
                try:
                    for packet in container.demux(*kinds.values()):
                        kind = packet.stream.type
                        if packet.dts is None or kind not in outputs:
                            continue
                        if segment_start:
                            segment_start = False
                            if shift is None:
                                shift = -packet.dts
                            elif packet.dts + shift < latest - 90_000:  # a new publish restarted the clock
                                shift = latest + 3_000 - packet.dts
                        dts = packet.dts + shift
                        if dts < 0 or (kind in last and dts <= last[kind]):
                            continue
                        packet.pts = (packet.pts + shift) if packet.pts is not None else dts
                        packet.dts = dts
                        last[kind] = dts
                        latest = max(latest, dts)
                        packet.stream = outputs[kind]
                        output.mux(packet)
                        written += 1
                except av.error.FFmpegError as exc:
                    log.warning("recording %s: %s ends early (%s)", files.playback_id, path.name, exc)
                    break
    if written == 0:
        partial.unlink(missing_ok=True)
        return None
    os.replace(partial, files.recording)
    return files.recording


async def finish_media(media_dir: str, stream: LiveStream, *, save: bool) -> None:
    """After a stream ended: its publisher in this process stopped, then with save its segments
    remuxed into the recording, else every media file of it removed."""
    await stop_local_publisher(stream.id)
    files = MediaFiles.of(media_dir, stream.playback_id)
    if save:
        path = await asyncio.to_thread(assemble_recording, files)
        log.info("stream %s: recording %s", stream.id, path or "has no media")
    else:
        removed = await asyncio.to_thread(files.delete)
        log.info("stream %s: %d media files removed", stream.id, removed)
