"""Go live from a browser: WHIP (RFC 9725) served by livecart with aiortc, nothing to install.

The browser POSTs its SDP offer to /whip with `Authorization: Bearer <stream key>`; livecart
answers 201 with the SDP answer and a `Location` (/whip/sessions/<id>) the browser DELETEs when it
stops. What arrives is what a browser sends (VP8 or H.264 video, Opus audio): HLS cannot carry
Opus nor VP8, so it is transcoded with PyAV (FFmpeg's libraries, in the `av` wheel) to H.264 with
a key frame every second and AAC, and muxed by FFmpeg's HLS muxer into 1 s segments, in a thread
of its own so the event loop never waits on the encoder.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import secrets
import threading
import time

from aiohttp import web

from livecart.models import media
from livecart.models.errors import DomainError, ErrorCode
from livecart.server.appkeys import SETTINGS
from livecart.server.ingest import announce

log = logging.getLogger("livecart.whip")

WHIP_SESSIONS = web.AppKey("whip_sessions", dict)
MAX_OFFER_BYTES = 64 * 1024
SEGMENT_SECONDS = 1
PLAYLIST_SEGMENTS = 6
SESSION_PREFIX = "whip:"
# How often a session looks whether its stream ended on another process (this one's endStream
# stops it at once), as nginx-rtmp's on_update does for RTMP.
CHECK_SECONDS = 5


class Transcoder(threading.Thread):
    """Frames in (from aiortc's decoders), HLS out: H.264 + AAC in SEGMENT_SECONDS segments."""

    def __init__(self, files: media.MediaFiles) -> None:
        super().__init__(name=f"whip-{files.playback_id}", daemon=True)
        self.files = files
        # About a second of frames: an encoder that falls behind drops frames rather than letting
        # the stream lag further and further behind the seller.
        self.frames: queue.Queue = queue.Queue(maxsize=40)
        self.t0 = time.monotonic()
        self.error: Exception | None = None

    def put(self, kind: str, frame) -> None:
        try:
            self.frames.put_nowait((kind, time.monotonic() - self.t0, frame))
        except queue.Full:  # the encoder is behind: drop rather than grow without bound
            pass

    def finish(self) -> None:
        self.frames.put((None, 0.0, None))

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - logged; the session ends, the segments so far stay
            self.error = exc
            log.exception("transcoding %s failed", self.files.playback_id)

    def _run(self) -> None:
        import av

        output = video = audio = None
        resampler = None
        audio_pts = None
        video_pts = -1
        last_key = -1.0
        size = None
        try:
            while True:
                kind, at, frame = self.frames.get()
                if kind is None:
                    break
                if output is None:
                    if kind != "video":
                        continue  # the container starts with the first picture, to know its size
                    size = (frame.width - frame.width % 2, frame.height - frame.height % 2)
                    output, video, audio = self._open(av, size)
                    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000, frame_size=1024)
                if kind == "video":
                    # The browser may lower its resolution under load: the stream keeps its size.
                    picture = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                    # Arrival time, strictly increasing: two frames may arrive in the same millisecond.
                    video_pts = max(int(at * 1000), video_pts + 1)
                    picture.pts = video_pts
                    picture.time_base = fractions.Fraction(1, 1000)
                    if at - last_key >= SEGMENT_SECONDS:  # a key frame each second: segments of 1 s
                        picture.pict_type = av.video.frame.PictureType.I
                        last_key = at
                    for packet in video.encode(picture):
                        output.mux(packet)
                elif audio is not None:
                    if audio_pts is None:
                        audio_pts = int(at * 48000)
                    frame.pts = audio_pts
                    frame.time_base = fractions.Fraction(1, frame.sample_rate)
                    audio_pts += frame.samples * 48000 // frame.sample_rate
                    for chunk in resampler.resample(frame):
                        for packet in audio.encode(chunk):
                            output.mux(packet)
        finally:
            if output is not None:
                for packet in video.encode(None):
                    output.mux(packet)
                if audio is not None:
                    for packet in audio.encode(None):
                        output.mux(packet)
                output.close()

    def _open(self, av, size):
        self.files.hls_dir.mkdir(parents=True, exist_ok=True)
        output = av.open(
            str(self.files.playlist), "w", format="hls",
            options={
                "hls_time": str(SEGMENT_SECONDS),
                "hls_list_size": str(PLAYLIST_SEGMENTS),
                "hls_segment_filename": self.files.segment_pattern(),
                # Continue the numbering of an earlier publish: every segment is part of the recording.
                "start_number": str(self.files.next_segment_number()),
                # Segments appear under their name only when complete.
                "hls_flags": "temp_file+independent_segments+program_date_time",
            },
        )
        # The cheapest preset: this is one encode per publisher on the API's own machine.
        video = output.add_stream("libx264", rate=30, options={"preset": "ultrafast", "tune": "zerolatency"})
        video.width, video.height = size
        video.bit_rate = max(600_000, int(2_500_000 * size[0] * size[1] / (1280 * 720)))  # 2.5 Mbit/s at 720p
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = fractions.Fraction(1, 1000)
        video.codec_context.gop_size = 60
        audio = output.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        return output, video, audio


class WhipSession:
    """One browser publishing: its peer connection, its tracks' readers and its transcoder."""

    def __init__(self, app: web.Application, stream_id: int, files: media.MediaFiles) -> None:
        from aiortc import RTCPeerConnection

        self.app, self.stream_id = app, stream_id
        self.id = secrets.token_urlsafe(18)
        self.publisher = f"{SESSION_PREFIX}{self.id}"
        self.pc = RTCPeerConnection()
        self.transcoder = Transcoder(files)
        self.readers: list[asyncio.Task] = []
        self._stopping: asyncio.Task | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def start(self) -> None:
        self.transcoder.start()
        self.readers.append(asyncio.ensure_future(self._watch()))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                if not await media.may_go_on(self.publisher):
                    log.info("whip session %s: its stream ended elsewhere", self.id)
                    self.stop()
                    return
            except Exception:  # noqa: BLE001 - a database hiccup: look again next time
                log.warning("whip session %s: could not check its stream", self.id, exc_info=True)

    def _on_track(self, track) -> None:
        self.readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                self.transcoder.put(track.kind, await track.recv())
        except MediaStreamError:
            pass

    async def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            await self.stop()

    async def answer(self, offer_sdp: str) -> str:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    def stop(self) -> asyncio.Task:
        """Stops once, whoever asks (DELETE, a dropped connection, the stream's end); awaitable."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        return self._stopping

    async def _stop(self) -> None:
        await self.pc.close()
        for reader in self.readers:
            reader.cancel()
        if self.transcoder.is_alive():
            self.transcoder.finish()
            await asyncio.to_thread(self.transcoder.join)
        self.app[WHIP_SESSIONS].pop(self.id, None)
        media.release_publisher(self.stream_id, self.stop_and_wait)
        stream = await media.stop_publish(self.publisher)
        if stream is not None:
            await announce(self.app, stream.id)
        log.info("whip session %s of stream %s stopped", self.id, self.stream_id)

    async def stop_and_wait(self) -> None:
        await self.stop()


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _problem(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


async def publish(request: web.Request) -> web.Response:
    """POST /whip: an SDP offer in, the answer and the session's Location out."""
    if request.content_type != "application/sdp":
        return _problem(415, "The offer must be sent as application/sdp.")
    if (request.content_length or 0) > MAX_OFFER_BYTES:
        return _problem(413, "The offer is too large.")
    offer = (await request.content.read(MAX_OFFER_BYTES + 1)).decode("utf-8", "replace")
    if len(offer) > MAX_OFFER_BYTES or not offer.startswith("v=0") or "m=video" not in offer:
        return _problem(400, "Malformed offer: an SDP offer with a video section is needed.")
    key = _bearer(request)
    if not key:
        return web.Response(status=401, text="The stream key goes in Authorization: Bearer.\n",
                            headers={"WWW-Authenticate": "Bearer"})
    settings = request.app[SETTINGS]
    stream = await media.stream_of_publish_name(key) if media.STREAM_KEY.fullmatch(key) else None
    if stream is None or stream.stream_key != key:
        log.info("whip publish refused (403): unknown stream key")
        return _problem(403, "Unknown stream key.")
    session = WhipSession(request.app, stream.id, media.MediaFiles.of(settings.media_dir, stream.playback_id))
    try:
        answer = await session.answer(offer)  # nothing is recorded, and nothing changes, before this holds
    except Exception as exc:  # noqa: BLE001 - aiortc's parser raises assorted errors for bad SDP
        log.info("whip offer refused: %s", exc)
        await session.pc.close()
        return _problem(400, "Malformed offer: it could not be negotiated.")
    try:
        stream, changed = await media.start_publish(key, session.publisher, starts_stream=settings.publish_starts_stream)
    except DomainError as exc:
        await session.pc.close()
        status = 409 if exc.code is ErrorCode.CONFLICT else 403
        log.info("whip publish refused (%s): %s", status, exc.message)
        return _problem(status, exc.message)
    session.start()
    request.app[WHIP_SESSIONS][session.id] = session
    media.hold_publisher(stream.id, session.stop_and_wait)
    await announce(request.app, stream.id)
    location = f"/whip/sessions/{session.id}"
    return web.Response(status=201, text=answer, content_type="application/sdp",
                        headers={"Location": location, "ETag": f'"{session.id}"'})


async def unpublish(request: web.Request) -> web.Response:
    """DELETE /whip/sessions/<id>: the browser stopped."""
    session = request.app[WHIP_SESSIONS].get(request.match_info["session"])
    if session is None:
        return _problem(404, "No such session.")
    await session.stop()
    return web.Response(status=200)


async def options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Accept-Post": "application/sdp"})


async def whip_ctx(app: web.Application):
    """Sessions this process holds; at start-up, streams left 'broadcasting' by WHIP sessions of a
    process that stopped without saying so are set right (only the embedded default's one process
    may do that: with several, another may hold them)."""
    app[WHIP_SESSIONS] = {}
    logging.getLogger("aioice").setLevel(logging.WARNING)  # a line per ICE check otherwise
    settings = app[SETTINGS]
    if settings.workers == 1 and not settings.redis_url:
        for stream_id in await media.clear_broadcasting(SESSION_PREFIX):
            await announce(app, stream_id)
    yield
    for session in list(app[WHIP_SESSIONS].values()):
        await session.stop()


def add_whip_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(whip_ctx)
    app.router.add_post("/whip", publish)
    app.router.add_route("OPTIONS", "/whip", options)
    app.router.add_delete(r"/whip/sessions/{session:[A-Za-z0-9_-]{1,64}}", unpublish)
