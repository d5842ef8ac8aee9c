"""`python -m bench.video`: live video at 720p, both ways in (issue 14), written to bench/REPORT.md
under "Live video (issue 14)".

For each path a 1280x720, 30 frames/s source publishes one stream for a while:
- WHIP: client/whip.py (aiortc, VP8 and Opus as a browser sends) to `livecart serve`, which
  transcodes with PyAV to H.264/AAC HLS;
- RTMP: ffmpeg (libx264 veryfast, key frame each second, AAC) to nginx with libnginx-mod-rtmp and
  the configuration of `livecart ingest-config nginx`, which remuxes to HLS without re-encoding.

Glass to glass: each source picture carries the wall clock at the moment it is made, as 40
black-or-white blocks (milliseconds, binary), big enough to survive compression. Headless
Chromium plays the live page as a viewer does (hls.js, the page's own settings), and for each
frame it presents (requestVideoFrameCallback) reads the blocks back from a canvas and takes
Date.now() minus the clock: capture to display, one machine, one clock. Server CPU: the serving
processes' user+system time over the measured window (/proc), in % of one core: livecart for
WHIP (it transcodes), nginx's processes plus livecart (hooks only) for RTMP. The sources' own
encoding (a browser's or OBS's work) is not counted.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from bench import machine
from livecart.client.livecart_client import LivecartClient
from livecart.client.whip import WhipPublisher

HERE = pathlib.Path(__file__).resolve().parent
LIVECART = str(pathlib.Path(sys.executable).with_name("livecart"))
WIDTH, HEIGHT, FPS = 1280, 720, 30
BITS, BLOCK, PER_ROW = 40, 32, 20
SECRET = "bench-ingest-secret-0123456789"
SECTION = "## Live video (issue 14)"


# ---------------------------------------------------------------- the burned-in clock

def paint_clock(picture: np.ndarray, now_ms: int | None = None) -> None:
    """Milliseconds since the epoch (low 40 bits) as white (1) or black (0) blocks, top left."""
    value = (int(time.time() * 1000) if now_ms is None else now_ms) & ((1 << BITS) - 1)
    for bit in range(BITS):
        row, col = divmod(bit, PER_ROW)
        y, x = 8 + row * BLOCK, 8 + col * BLOCK
        picture[y:y + BLOCK, x:x + BLOCK] = 255 if value >> (BITS - 1 - bit) & 1 else 0


READER = """([bits, block, perRow, seconds]) => new Promise((resolve) => {
  const v = document.querySelector('#video');
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const samples = [];
  const end = performance.now() + seconds * 1000;
  function frame() {
    const shown = Date.now();
    if (v.videoWidth) {
      canvas.width = v.videoWidth; canvas.height = v.videoHeight;
      ctx.drawImage(v, 0, 0);
      let value = 0;
      for (let bit = 0; bit < bits; bit++) {
        const row = Math.floor(bit / perRow), col = bit % perRow;
        const x = Math.round((8 + col * block + block / 2) * v.videoWidth / 1280);
        const y = Math.round((8 + row * block + block / 2) * v.videoHeight / 720);
        const p = ctx.getImageData(x, y, 1, 1).data;
        value = value * 2 + ((p[0] + p[1] + p[2]) / 3 > 128 ? 1 : 0);
      }
      const latency = (shown % 2 ** bits) - value;
      if (latency > 0 && latency < 60000) samples.push(latency);
    }
    if (performance.now() < end) v.requestVideoFrameCallback(frame);
  }
  v.requestVideoFrameCallback(frame);
  setTimeout(() => resolve(samples), seconds * 1000);  // frames or none (a stalled player reads nothing)
})"""


# ---------------------------------------------------------------- processes and CPU

def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (of every thread)
    return total / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_http(url: str, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---------------------------------------------------------------- one measurement

async def new_stream(base: str) -> dict:
    async with LivecartClient(base) as client:
        await client.register(f"bench{int(time.time() * 1000)}", "bench password")
        await client.execute('mutation { becomeVendor(name: "Bench") { id } }')
        return (await client.execute('mutation { createStream(title: "720p") { id streamKey playbackUrl } }'))["createStream"]


# The live page plays HLS natively where the browser can (Chromium does, since 2025), else with
# hls.js: the second viewer is told the browser cannot, to measure the hls.js path too.
NO_NATIVE_HLS = (
    "HTMLMediaElement.prototype.canPlayType = ((original) => function (type) {"
    " return /mpegurl/i.test(type) ? '' : original.call(this, type); })(HTMLMediaElement.prototype.canPlayType);"
)


async def watch(base: str, stream_id: str, warmup: float, seconds: float, native: bool = True) -> list[float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            # nginx serves the HLS from another origin (with CORS): pictures read from a canvas need
            # the video fetched as CORS, else the canvas is tainted and reads nothing.
            await page.add_init_script(
                "document.addEventListener('DOMContentLoaded', () => { const v = document.querySelector('#video');"
                " if (v) v.crossOrigin = 'anonymous'; });"
            )
            if not native:
                await page.add_init_script(NO_NATIVE_HLS)
            await page.goto(f"{base}/live/{stream_id}")
            print(f"video: watching {base}/live/{stream_id}", flush=True)
            await page.wait_for_function(
                "() => { const v = document.querySelector('#video'); return v.videoWidth > 0 && v.currentTime > 1; }",
                timeout=120_000,
            )
            print("video: playing", flush=True)
            await asyncio.sleep(warmup)
            return await page.evaluate(READER, [BITS, BLOCK, PER_ROW, seconds])
        finally:
            await browser.close()


def summary(samples: list[float], cpu: float, seconds: float) -> dict:
    ordered = sorted(samples)
    return {
        "frames": len(ordered),
        "p50": statistics.median(ordered) / 1000 if ordered else float("nan"),
        "p95": ordered[int(len(ordered) * 0.95)] / 1000 if ordered else float("nan"),
        "min": ordered[0] / 1000 if ordered else float("nan"),
        "cpu": 100 * cpu / seconds,
    }


async def whip_path(args, workdir: pathlib.Path) -> dict:
    port = args.port_base
    env = {**os.environ, "DATABASE_URL": f"sqlite://{workdir}/whip.sqlite3", "MEDIA_DIR": str(workdir / "whip-media"),
           "PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}", "RATE_LIMITS": "off"}
    server = subprocess.Popen([LIVECART, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz")
        stream = await new_stream(base)
        paint = lambda count, picture: paint_clock(picture)  # noqa: E731 - the clock at capture
        async with WhipPublisher(base, stream["streamKey"], width=WIDTH, height=HEIGHT, fps=FPS, paint=paint):
            viewer = asyncio.ensure_future(asyncio.wait_for(watch(base, stream["id"], args.warmup, args.seconds), 300))
            await asyncio.sleep(args.warmup + 8)  # the player has started by then
            before, started = cpu_seconds([server.pid]), time.monotonic()
            samples = await viewer
            cpu, elapsed = cpu_seconds([server.pid]) - before, time.monotonic() - started
            with_hls_js = await asyncio.wait_for(watch(base, stream["id"], args.warmup, args.seconds, native=False), 300)
        return summary(samples, cpu, elapsed), summary(with_hls_js, cpu, elapsed)
    finally:
        stop(server)


def rtmp_source(url: str, stop_event: threading.Event) -> subprocess.Popen:
    """ffmpeg encoding raw pictures that carry the clock of the moment each is made."""
    encoder = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}",
         "-r", str(FPS), "-i", "-", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", str(FPS), "-pix_fmt", "yuv420p",
         "-b:v", "2500k", "-c:a", "aac", "-f", "flv", url],
        stdin=subprocess.PIPE,
    )
    base = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    base[:, :, 2] = np.linspace(0, 255, WIDTH, dtype=np.uint8)[None, :]

    def feed() -> None:
        start, count = time.monotonic(), 0
        while not stop_event.is_set():
            time.sleep(max(0.0, start + count / FPS - time.monotonic()))
            picture = np.roll(base, count * 4, axis=1)
            paint_clock(picture)
            try:
                encoder.stdin.write(picture.tobytes())
            except (BrokenPipeError, ValueError):
                return
            count += 1
        encoder.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    return encoder


async def rtmp_path(args, workdir: pathlib.Path) -> dict:
    port, rtmp_port, http_port = args.port_base + 1, args.port_base + 2, args.port_base + 3
    media = pathlib.Path(tempfile.mkdtemp(prefix="livecart-bench-media-"))
    os.chmod(media, 0o777)  # nginx's workers write the segments
    run = workdir / "nginx"
    run.mkdir(exist_ok=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite://{workdir}/rtmp.sqlite3", "MEDIA_DIR": str(media),
           "PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}", "RATE_LIMITS": "off",
           "INGEST_SECRET": SECRET, "INGEST_URL": f"rtmp://127.0.0.1:{rtmp_port}/live",
           "PLAYBACK_URL_TEMPLATE": f"http://127.0.0.1:{http_port}/hls/{{playback_id}}.m3u8"}
    config = subprocess.run([LIVECART, "ingest-config", "nginx", "--http-listen", f"127.0.0.1:{http_port}",
                             "--run-dir", str(run)], env=env, capture_output=True, text=True, check=True).stdout
    (workdir / "nginx.conf").write_text(config)
    server = subprocess.Popen([LIVECART, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(workdir / "nginx.conf"),
                              "-e", str(run / "error.log"), "-g", "daemon off;"])
    base = f"http://127.0.0.1:{port}"
    stop_event = threading.Event()
    encoder = None
    try:
        wait_http(f"{base}/healthz")
        stream = await new_stream(base)
        encoder = rtmp_source(f"rtmp://127.0.0.1:{rtmp_port}/live/{stream['streamKey']}", stop_event)
        viewer = asyncio.ensure_future(asyncio.wait_for(watch(base, stream["id"], args.warmup, args.seconds), 300))
        await asyncio.sleep(args.warmup + 8)
        serving = [server.pid, nginx.pid, *children_of(nginx.pid)]
        before, started = cpu_seconds(serving), time.monotonic()
        samples = await viewer
        cpu, elapsed = cpu_seconds(serving) - before, time.monotonic() - started
        with_hls_js = await asyncio.wait_for(watch(base, stream["id"], args.warmup, args.seconds, native=False), 300)
        return summary(samples, cpu, elapsed), summary(with_hls_js, cpu, elapsed)
    finally:
        stop_event.set()
        if encoder is not None:
            try:
                encoder.wait(10)
            except subprocess.TimeoutExpired:
                encoder.kill()
        stop(nginx)
        stop(server)
        shutil.rmtree(media, ignore_errors=True)


# ---------------------------------------------------------------- the report

def section(results: dict[str, dict], args) -> str:
    rows = "\n".join(
        f"| {name} | {r['p50']:.2f} s | {r['p95']:.2f} s | {r['min']:.2f} s | {r['frames']} | {r['cpu']:.1f} % |"
        for name, r in results.items()
    )
    return f"""{SECTION}

`python -m bench.video` ({time.strftime('%Y-%m-%d')}, {machine.cpu_model()}, {os.cpu_count()} cores): one
{WIDTH}x{HEIGHT} stream at {FPS} frames/s per path, {args.seconds:.0f} s measured after {args.warmup:.0f} s of playing.
Glass to glass is capture (the clock burned into each source picture) to display (the frame the
viewer's Chromium presents, read back from the picture): one machine, one clock. Server CPU is
the serving processes' time over the same window, in % of one core.

| path | glass to glass, median | p95 | best | frames read | server CPU per stream |
| --- | --- | --- | --- | --- | --- |
{rows}

- WHIP (browser to livecart): livecart receives VP8/Opus with aiortc and transcodes to H.264/AAC with
  PyAV (libx264 ultrafast, zerolatency, 2.5 Mbit/s at 720p) in 1 s segments: that encoding is the CPU figure, about what one
  core can give to one 720p stream here, so one livecart process serves a few browser publishers at most.
  Put more publishers on more processes, or have them publish with RTMP or WHIP to a media server.
- RTMP (OBS or ffmpeg to nginx-rtmp): H.264/AAC is remuxed, not re-encoded: nginx's CPU per stream is small,
  and livecart only answers the hooks.
- Most of the latency is HLS itself: 1 s segments, the segment being written, and how far behind the
  live edge the player holds: the live page plays HLS natively where the browser can (Chromium 156
  does, and holds back further), else with hls.js set 2 segments behind (liveSyncDurationCount 2).
  The CPU column is the same stream's, measured once. WebRTC playback would cut the latency below a
  second; HLS is what a CDN can carry to many viewers.
- The sources' own encoding (a browser's, OBS's) runs on the same 2-core machine here and competes
  with the server: on separate machines the figures can only be better.
"""


def write_section(text: str, out: pathlib.Path) -> None:
    report = out.read_text() if out.exists() else ""
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    report = pattern.sub(lambda _: text + "\n", report) if pattern.search(report) else report.rstrip() + "\n\n" + text
    out.write_text(report)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.video", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per path")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--port-base", type=int, default=19390)
    parser.add_argument("--paths", default="whip,rtmp")
    parser.add_argument("--out", default=str(HERE / "REPORT.md"))
    args = parser.parse_args(argv)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="livecart-bench-video-"))
    results = {}
    try:
        if "whip" in args.paths:
            native, hls_js = await whip_path(args, workdir)
            results["WHIP (VP8/Opus) into livecart, transcoded; Chromium's own HLS"] = native
            results["WHIP, the same stream; hls.js"] = hls_js
            print("whip", results, flush=True)
        if "rtmp" in args.paths:
            native, hls_js = await rtmp_path(args, workdir)
            results["RTMP (ffmpeg, H.264/AAC) through nginx-rtmp, remuxed; Chromium's own HLS"] = native
            results["RTMP, the same stream; hls.js"] = hls_js
            print("rtmp", results, flush=True)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)
    text = section(results, args)
    print(text)
    write_section(text, pathlib.Path(args.out))


if __name__ == "__main__":
    asyncio.run(main())
