"""A WHIP publisher in Python (aiortc), as a browser publishes: the tests and bench/ use it, and it
goes live from a script with a stream key.

    async with WhipPublisher("http://127.0.0.1:8000", stream_key) as publisher:
        await asyncio.sleep(10)        # a test pattern with a tone, 320x240 at 30 frames/s

`paint(frame_number, array)` may draw on each picture (an RGB numpy array) before it is sent.
"""
from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections.abc import Callable

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription


class PatternTrack(MediaStreamTrack):
    """Moving colour bars at a steady frame rate."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30,
                 paint: Callable[[int, np.ndarray], None] | None = None) -> None:
        super().__init__()
        self.width, self.height, self.fps, self.paint = width, height, fps, paint
        self.count = 0
        self.start: float | None = None
        bars = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                         [255, 0, 255], [255, 0, 0], [0, 0, 255], [0, 0, 0]], dtype=np.uint8)
        self.base = np.repeat(bars, math.ceil(width / 8), axis=0)[:width][None, :, :].repeat(height, axis=0)

    async def recv(self) -> av.VideoFrame:
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.count / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        picture = np.roll(self.base, self.count * 4, axis=1)
        if self.paint is not None:
            picture = picture.copy()
            self.paint(self.count, picture)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts, frame.time_base = self.count * 3000, fractions.Fraction(1, 90000)
        self.count += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A 440 Hz tone in 20 ms frames."""

    kind = "audio"

    def __init__(self, rate: int = 48000) -> None:
        super().__init__()
        self.rate, self.samples = rate, rate // 50
        self.sent = 0
        self.start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.sent / self.rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t = (np.arange(self.samples) + self.sent) / self.rate
        wave = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]).T.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.sent, fractions.Fraction(1, self.rate)
        self.sent += self.samples
        return frame


class WhipError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text.strip()}")
        self.status, self.text = status, text


class WhipPublisher:
    """Publishes a pattern and a tone to base_url's /whip with the stream key; DELETEs on exit."""

    def __init__(self, base_url: str, stream_key: str, *, width: int = 320, height: int = 240, fps: int = 30,
                 paint: Callable[[int, np.ndarray], None] | None = None, audio: bool = True) -> None:
        self.base_url, self.stream_key = base_url.rstrip("/"), stream_key
        self.video = PatternTrack(width, height, fps, paint)
        self.audio = ToneTrack() if audio else None
        self.pc: RTCPeerConnection | None = None
        self.location: str | None = None

    async def start(self) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver(self.video, direction="sendonly")
        if self.audio is not None:
            self.pc.addTransceiver(self.audio, direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{self.base_url}/whip", data=self.pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {self.stream_key}"},
            ) as response:
                text = await response.text()
                if response.status != 201:
                    await self.pc.close()
                    raise WhipError(response.status, text)
                self.location = response.headers["Location"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))

    async def stop(self) -> None:
        if self.location is not None:
            async with aiohttp.ClientSession() as http:
                async with http.delete(f"{self.base_url}{self.location}") as response:
                    await response.read()
            self.location = None
        if self.pc is not None:
            await self.pc.close()

    async def __aenter__(self) -> "WhipPublisher":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()
