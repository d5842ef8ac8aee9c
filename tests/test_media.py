"""Live video (issue 14): WHIP from a publisher like a browser's, nginx-rtmp's hooks, the HLS and
recording files, and RTMP end to end through a real nginx with ffmpeg's test pattern.

The WHIP tests publish with client/whip.py (aiortc, as a browser would: VP8 and Opus) to the app
served on a real port; livecart transcodes with PyAV. The nginx test runs Debian's nginx with
libnginx-mod-rtmp and ffmpeg (.ci/run installs them) with `livecart ingest-config nginx`.
"""
from __future__ import annotations

import asyncio
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import aiohttp
import av
import pytest

from livecart.client.livecart_client import LivecartClient
from livecart.client.whip import WhipError, WhipPublisher
from livecart.server.app import create_app
from tests.processes import Ports, stop
from tests.realtime_support import VIEWERS, base_url, next_of, pump
from tests.support import GraphQLClient, make_vendor

PORTS = Ports(19200, 19299)  # nginx's RTMP and HTTP ports
SECRET = "test-ingest-secret-0123456789"
LIVECART = str(pathlib.Path(sys.executable).with_name("livecart"))
RTMP_MODULE = pathlib.Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
MEDIA_WAIT = 30.0  # the machine is shared: a first segment may take a while, a missing one fails

CREATE = 'mutation { createStream(title: "On air") { id streamKey playbackUrl status broadcasting } }'
STREAM = "query($i: ID!) { stream(id: $i) { status broadcasting playbackUrl media { width height bitrateKbps } } }"
END = "mutation($i: ID!, $a: EndStreamAction!) { endStream(id: $i, action: $a) { savedStream { videoUrl } } }"
UPDATES = "subscription($s: ID!) { streamUpdated(streamId: $s) { status broadcasting } }"


@pytest.fixture
def media_dir() -> Iterator[pathlib.Path]:
    """MEDIA_DIR, outside pytest's private tmp folder: nginx's workers (nobody, when the tests run
    as root) must reach it to write the segments."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="livecart-media-"))
    if os.geteuid() == 0:
        os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def client(aiohttp_client, settings, media_dir) -> GraphQLClient:
    app = create_app(settings.replace(media_dir=str(media_dir), ingest_secret=SECRET))
    return GraphQLClient(await aiohttp_client(app))


async def seller_stream(client: GraphQLClient):
    seller = await make_vendor(client, products=0)
    stream = (await client.data(CREATE, token=seller.token))["createStream"]
    return seller, stream


def playback_id(stream: dict) -> str:
    return re.search(r"/hls/([0-9a-f]+)\.m3u8$", stream["playbackUrl"])[1]


def files_under(folder: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def until_async(probe, what: str, timeout: float = MEDIA_WAIT):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def fetch(url: str, **headers: str) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as response:
            return response.status, dict(response.headers), await response.read()


def video_duration(path: pathlib.Path) -> float:
    with av.open(str(path)) as container:
        return float(container.duration) / 1_000_000


# ---------------------------------------------------------------- WHIP


async def test_whip_publish_goes_live_plays_and_saves_a_seekable_recording(client, media_dir):
    seller, stream = await seller_stream(client)
    base, key, pid = base_url(client), stream["streamKey"], playback_id(stream)
    assert stream["status"] == "SCHEDULED" and stream["broadcasting"] is False
    assert key not in stream["playbackUrl"]
    viewer = LivecartClient(base)
    connection = await viewer.connect()
    updates = pump(await connection.start(UPDATES, {"s": stream["id"]}))
    await next_of(await connection.start(VIEWERS, {"s": stream["id"]}))  # the process now follows the stream

    publisher = WhipPublisher(base, key)
    await publisher.start()
    try:
        # Media arriving made it LIVE, with no mutation, and said so to subscribers.
        assert (await asyncio.wait_for(updates.get(), 10))["streamUpdated"] == {"status": "LIVE", "broadcasting": True}
        with pytest.raises(WhipError) as second:
            async with WhipPublisher(base, key):
                pass
        assert second.value.status == 409

        async def playlist():
            # Three segments: one may be long where the publisher's frames paused (a segment ends at
            # the first key frame after a second of frames *received*), and the playlist says so.
            status, headers, body = await fetch(stream["playbackUrl"].replace("http://127.0.0.1:8000", base))
            return (headers, body.decode()) if status == 200 and body.count(b".ts") >= 3 else None

        headers, text = await until_async(playlist, "the HLS playlist")
        assert headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
        assert headers["Cache-Control"] == "no-cache"
        durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+)", text)]
        assert statistics.median(durations) <= 2.0, text  # short segments: a player is seconds behind
        assert int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", text)[1]) >= max(durations) - 0.5, text  # a valid playlist
        segment = re.search(r"^(\S+\.ts)$", text, re.M)[1]
        status, seg_headers, body = await fetch(f"{base}/hls/{segment}")
        assert status == 200 and seg_headers["Content-Type"] == "video/mp2t" and "immutable" in seg_headers["Cache-Control"]
        assert key not in text and all(key not in name for name in files_under(media_dir))

        async def media():
            data = await client.data(STREAM, {"i": stream["id"]}, token=seller.token)
            return data["stream"]["media"]

        info = await until_async(media, "the media status")
        assert (info["width"], info["height"]) == (320, 240) and info["bitrateKbps"] > 0
        await until_async(lambda: asyncio.sleep(0.2, len(list((media_dir / "hls").glob("*.ts"))) >= 3), "three segments")
    finally:
        await publisher.stop()
    assert (await asyncio.wait_for(updates.get(), 10))["streamUpdated"] == {"status": "LIVE", "broadcasting": False}

    saved = (await client.data(END, {"i": stream["id"], "a": "SAVE"}, token=seller.token))["endStream"]["savedStream"]
    assert saved["videoUrl"].endswith(f"/recordings/{pid}.mp4")
    status, headers, body = await fetch(f"{base}/recordings/{pid}.mp4")
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    recording = media_dir / "recordings" / f"{pid}.mp4"
    assert recording.read_bytes() == body and video_duration(recording) > 1.0
    assert body.find(b"moov") < body.find(b"mdat")  # the index first: a player seeks before it has it all
    status, headers, part = await fetch(f"{base}/recordings/{pid}.mp4", Range="bytes=1000-1999")
    assert status == 206 and part == body[1000:2000]
    await viewer.close()


async def test_whip_refusals_change_nothing(client, media_dir):
    seller, stream = await seller_stream(client)
    base, key = base_url(client), stream["streamKey"]
    offer = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nthis is no sdp\r\n"

    async def post(body: str, content_type="application/sdp", token: str | None = key):
        headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token else {})}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/whip", data=body, headers=headers) as response:
                return response.status, await response.text()

    assert (await post(offer, token=None))[0] == 401
    assert (await post(offer, token="x" * 43))[0] == 403
    assert (await post(offer, content_type="text/plain"))[0] == 415
    status, text = await post("hello")
    assert status == 400 and "Malformed offer" in text
    status, text = await post(offer)
    assert status == 400 and "Malformed offer" in text
    data = await client.data(STREAM, {"i": stream["id"]}, token=seller.token)
    assert (data["stream"]["status"], data["stream"]["broadcasting"]) == ("SCHEDULED", False)
    assert files_under(media_dir) == []

    # A rotated key is refused from then on; the new one is the owner's only.
    rotated = await client.data(
        "mutation($i: ID!) { rotateStreamKey(id: $i) { streamKey } }", {"i": stream["id"]}, token=seller.token
    )
    new_key = rotated["rotateStreamKey"]["streamKey"]
    assert new_key != key
    with pytest.raises(WhipError) as old:
        async with WhipPublisher(base, key):
            pass
    assert old.value.status == 403
    other = await make_vendor(client, "other", products=0)
    error = await client.error("mutation($i: ID!) { rotateStreamKey(id: $i) { streamKey } }", {"i": stream["id"]}, token=other.token)
    assert error["extensions"]["code"] == "FORBIDDEN"

    # An ended stream's key is refused.
    await client.data(END, {"i": stream["id"], "a": "DELETE"}, token=seller.token)
    with pytest.raises(WhipError) as ended:
        async with WhipPublisher(base, new_key):
            pass
    assert ended.value.status == 403
    assert files_under(media_dir) == []


async def test_delete_removes_the_media_files(client, media_dir):
    seller, stream = await seller_stream(client)
    async with WhipPublisher(base_url(client), stream["streamKey"]):
        await until_async(lambda: asyncio.sleep(0.2, list((media_dir / "hls").glob("*.ts"))), "a segment")
    assert files_under(media_dir)
    await client.data(END, {"i": stream["id"], "a": "DELETE"}, token=seller.token)
    assert files_under(media_dir) == []
    status, _, _ = await fetch(f"{base_url(client)}/hls/{playback_id(stream)}.m3u8")
    assert status == 404


# ---------------------------------------------------------------- nginx-rtmp's hooks


async def hook(client: GraphQLClient, which: str, secret: str | None = SECRET, **fields: str):
    query = f"?secret={secret}" if secret is not None else ""
    response = await client.http.post(f"/ingest/{which}{query}", data=fields, allow_redirects=False)
    return response.status, response.headers.get("Location")


async def test_hooks_need_the_secret_and_are_idempotent(client, media_dir):
    seller, stream = await seller_stream(client)
    key, pid = stream["streamKey"], playback_id(stream)

    async def state():
        data = await client.data(STREAM, {"i": stream["id"]}, token=seller.token)
        return data["stream"]["status"], data["stream"]["broadcasting"]

    publish = {"call": "publish", "app": "live", "name": key, "clientid": "7", "addr": "127.0.0.1"}
    assert (await hook(client, "on_publish", None, **publish))[0] == 403
    assert (await hook(client, "on_publish", "wrong-secret-wrong-secret", **publish))[0] == 403
    assert await state() == ("SCHEDULED", False)
    assert (await hook(client, "on_publish", **{**publish, "name": "../../etc/passwd"}))[0] == 400
    assert (await hook(client, "on_publish", **{k: v for k, v in publish.items() if k != "clientid"}))[0] == 400
    response = await client.http.post(f"/ingest/on_publish?secret={SECRET}", data=b"\xff", headers={"Content-Type": "text/plain"})
    assert response.status == 400
    assert (await hook(client, "on_publish", **{**publish, "name": "y" * 43}))[0] == 403
    assert await state() == ("SCHEDULED", False)

    # The key's stream goes LIVE; nginx is told to rename the stream to the playback id.
    assert await hook(client, "on_publish", **publish) == (302, pid)
    assert await state() == ("LIVE", True)
    assert await hook(client, "on_publish", **publish) == (302, pid)  # a duplicate: nothing more
    assert (await hook(client, "on_publish", **{**publish, "clientid": "8"}))[0] == 409  # a second publisher
    assert (await hook(client, "on_update", **{**publish, "call": "update_publish"}))[0] == 200
    assert (await hook(client, "on_publish_done", **{**publish, "call": "publish_done", "clientid": "8", "name": pid}))[0] == 200
    assert await state() == ("LIVE", True)  # the refused one's done changes nothing
    assert (await hook(client, "on_publish_done", **{**publish, "call": "publish_done", "name": pid}))[0] == 200
    assert await state() == ("LIVE", False)
    assert (await hook(client, "on_publish_done", **{**publish, "call": "publish_done", "name": pid}))[0] == 200
    assert await state() == ("LIVE", False)

    # Publishing again, then the stream ends: nginx's next update drops the publisher; a late
    # publish-done changes nothing, and the key is refused from then on.
    assert await hook(client, "on_publish", **{**publish, "clientid": "9"}) == (302, pid)
    await client.data(END, {"i": stream["id"], "a": "SAVE"}, token=seller.token)
    assert (await hook(client, "on_update", **{**publish, "call": "update_publish", "clientid": "9"}))[0] == 403
    assert (await hook(client, "on_publish_done", **{**publish, "call": "publish_done", "clientid": "9", "name": pid}))[0] == 200
    assert (await hook(client, "on_publish", **publish))[0] == 403
    assert (await hook(client, "on_record_done", **{**publish, "call": "record_done", "path": "/etc/passwd"}))[0] == 200
    assert (await state())[0] == "ENDED"
    assert files_under(media_dir) == []


async def test_publishing_can_leave_the_status_to_the_seller(aiohttp_client, settings, media_dir):
    app = create_app(settings.replace(media_dir=str(media_dir), ingest_secret=SECRET, publish_starts_stream=False))
    client = GraphQLClient(await aiohttp_client(app))
    seller, stream = await seller_stream(client)
    publish = {"call": "publish", "name": stream["streamKey"], "clientid": "1"}
    assert (await hook(client, "on_publish", **publish))[0] == 302
    data = await client.data(STREAM, {"i": stream["id"]}, token=seller.token)
    assert (data["stream"]["status"], data["stream"]["broadcasting"]) == ("SCHEDULED", True)


def test_ingest_config_needs_the_secret(tmp_path):
    env = {**os.environ, "MEDIA_DIR": str(tmp_path), "INGEST_SECRET": ""}
    done = subprocess.run([LIVECART, "ingest-config", "nginx"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "INGEST_SECRET" in done.stderr


# ---------------------------------------------------------------- RTMP through nginx, end to end

NGINX_MISSING = not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")) or not RTMP_MODULE.exists() \
    or not shutil.which("ffmpeg") or not shutil.which("ffprobe")


@pytest.mark.skipif(NGINX_MISSING, reason="needs nginx, libnginx-mod-rtmp and ffmpeg (apt-get install; .ci/run does)")
async def test_rtmp_through_nginx_end_to_end(client, media_dir, tmp_path):
    seller, stream = await seller_stream(client)
    key, pid, base = stream["streamKey"], playback_id(stream), base_url(client)
    rtmp_port, http_port = PORTS.take(), PORTS.take()
    run = tmp_path / "nginx"
    run.mkdir()
    env = {
        **os.environ, "INGEST_SECRET": SECRET, "MEDIA_DIR": str(media_dir),
        "INGEST_URL": f"rtmp://127.0.0.1:{rtmp_port}/live",
    }
    config = subprocess.run(
        [LIVECART, "ingest-config", "nginx", "--http-listen", f"127.0.0.1:{http_port}", "--hooks-url", base,
         "--run-dir", str(run)],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    (tmp_path / "nginx.conf").write_text(config)
    nginx = subprocess.Popen(
        [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(tmp_path / "nginx.conf"), "-e", str(run / "error.log"),
         "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    hls_url = f"http://127.0.0.1:{http_port}/hls/{pid}.m3u8"  # what PLAYBACK_URL_TEMPLATE names in production

    def ffmpeg(name: str, seconds: int) -> list[str]:
        return ["ffmpeg", "-nostdin", "-loglevel", "error", "-re",
                "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
                "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{name}"]

    async def state():
        data = await client.data(STREAM, {"i": stream["id"]}, token=seller.token)
        return data["stream"]["status"], data["stream"]["broadcasting"]

    try:
        await until_async(lambda: asyncio.sleep(0, (run / "nginx.pid").exists()), "nginx")
        # A wrong key: nginx refuses the publish on livecart's word, nothing is written.
        wrong = await asyncio.create_subprocess_exec(*ffmpeg("not-a-key-" + "x" * 33, 2), stderr=asyncio.subprocess.DEVNULL)
        assert await asyncio.wait_for(wrong.wait(), 60) != 0
        assert files_under(media_dir) == [] and await state() == ("SCHEDULED", False)

        published_seconds = 5
        publisher = await asyncio.create_subprocess_exec(*ffmpeg(key, published_seconds))
        try:
            await until_async(lambda: _is_live(state), "LIVE with no mutation")

            async def playlist():
                status, headers, body = await fetch(hls_url)
                return (headers, body.decode()) if status == 200 and b".ts" in body else None

            headers, text = await until_async(playlist, "nginx's HLS playlist")
            assert headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
            assert key not in hls_url and key not in text
            assert all(float(d) <= 2.0 for d in re.findall(r"#EXTINF:([\d.]+)", text))
            assert all(key not in name for name in files_under(media_dir))
            assert await asyncio.wait_for(publisher.wait(), 60) == 0
        finally:
            if publisher.returncode is None:
                publisher.kill()
        # publish-done: broadcasting turns false by itself.
        await until_async(lambda: _equals(state, ("LIVE", False)), "broadcasting false")
        saved = (await client.data(END, {"i": stream["id"], "a": "SAVE"}, token=seller.token))["endStream"]["savedStream"]
        assert saved["videoUrl"].endswith(f"/recordings/{pid}.mp4")
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             str(media_dir / "recordings" / f"{pid}.mp4")], capture_output=True, text=True, timeout=60, check=True,
        )
        assert abs(float(probe.stdout) - published_seconds) <= 1.0, probe.stdout
    finally:
        stop(nginx)


async def _is_live(state) -> bool:
    return await state() == ("LIVE", True)


async def _equals(state, wanted) -> bool:
    return await state() == wanted


def test_live_video_settings_are_checked():
    from livecart.server.settings import Settings, SettingsError

    for env, name in (({"INGEST_SECRET": "short"}, "INGEST_SECRET"), ({"PUBLISH_STARTS_STREAM": "maybe"}, "PUBLISH_STARTS_STREAM"),
                      ({"MEDIA_DIR": "  "}, "MEDIA_DIR")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env(env)
    assert Settings.from_env({"INGEST_URL": "rtmp://example.test/live"}).ingest_port() == 1935
