// The video area: plays a stream's playbackUrl with the browser's own HLS
// support, else with hls.js (installed by `make install`, served by livecart),
// and shows a clear placeholder whenever there is nothing to play.

const HLS_TYPE = "application/vnd.apple.mpegurl";
const HLS_JS = "/static/vendor/hls.js/dist/hls.light.mjs";
// While live with no video yet, look again now and then: the broadcaster may start publishing.
const RETRY_MS = 15000;
// Media just started: the first segment is a second or two away.
const SOON_MS = 2000;

let hlsModule = null;
function loadHls() {
  hlsModule ??= import(HLS_JS).then((m) => m.default).catch(() => null);
  return hlsModule;
}

export function attachVideo(video, placeholder, message) {
  let retryTimer = null;
  let hls = null; // the hls.js player, where the browser has no HLS of its own
  const controller = { url: null, status: null, broadcasting: undefined, update };

  function showPlaceholder(text) {
    message.textContent = text;
    placeholder.hidden = false;
    video.classList.add("idle");
  }

  function showVideo() {
    placeholder.hidden = true;
    video.classList.remove("idle");
  }

  function stop() {
    clearTimeout(retryTimer);
    hls?.destroy();
    hls = null;
    if (!video.hasAttribute("src")) return; // nothing loaded: nothing to unload
    video.removeAttribute("src");
    video.load();
  }

  function retry(ms) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => update(controller.url, controller.status, { broadcasting: controller.broadcasting, force: true }), ms);
  }

  async function playWithHlsJs(url) {
    const Hls = await loadHls();
    if (url !== controller.url) return; // changed meanwhile
    if (!Hls?.isSupported()) {
      showPlaceholder(`This browser cannot play live video (HLS). Open ${url} in a video player.`);
      return;
    }
    // No worker: the pages' Content-Security-Policy allows scripts from our origin only.
    hls = new Hls({ enableWorker: false, liveSyncDurationCount: 2 });
    hls.on(Hls.Events.ERROR, (event, data) => {
      if (!data.fatal) return;
      hls?.destroy();
      hls = null;
      showPlaceholder("Connecting to the video…");
      retry(SOON_MS);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {}); // muted autoplay; a refusal leaves the controls to the viewer
  }

  function play(url, live) {
    // A live page's <video> has autoplay (muted); a replay waits for its play button.
    video.controls = true;
    if (live && url.includes(".m3u8") && !video.canPlayType(HLS_TYPE)) {
      showPlaceholder("Connecting to the video…");
      playWithHlsJs(url);
      return;
    }
    video.src = url;
    if (live) showPlaceholder("Connecting to the video…");
    else showVideo(); // its own controls start it; an error brings the placeholder back
  }

  video.addEventListener("loadeddata", showVideo);
  video.addEventListener("playing", showVideo);
  video.addEventListener("error", () => {
    if (!controller.url) return;
    if (controller.status === "LIVE") {
      showPlaceholder("No video is being published yet. The seller may still be setting up; this page keeps looking.");
      retry(controller.broadcasting ? SOON_MS : RETRY_MS);
    } else {
      showPlaceholder("The video is not available.");
    }
  });

  /** broadcasting: whether media arrive now (undefined where the caller does not know). */
  function update(url, status, { broadcasting, force = false } = {}) {
    if (!force && url === controller.url && status === controller.status && broadcasting === controller.broadcasting) return;
    controller.url = url;
    controller.status = status;
    controller.broadcasting = broadcasting;
    clearTimeout(retryTimer);
    if (status === "SCHEDULED") {
      stop();
      showPlaceholder("The stream has not started yet.");
    } else if (status === "LIVE" && broadcasting === false) {
      stop();
      showPlaceholder("The seller will be right back: the video comes back here by itself.");
    } else if (!url) {
      stop();
      showPlaceholder(status === "ENDED" ? "This stream has ended and was not kept as a replay." : "No video is published for this stream.");
    } else {
      stop();
      play(url, status === "LIVE");
    }
  }

  return controller;
}
