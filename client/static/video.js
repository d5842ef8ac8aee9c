// The video area: plays a stream's playbackUrl with the browser's own HLS
// support, and shows a clear placeholder whenever there is nothing to play.

const HLS_TYPE = "application/vnd.apple.mpegurl";
// While live with no video yet, look again now and then: the broadcaster may start publishing.
const RETRY_MS = 15000;

export function attachVideo(video, placeholder, message) {
  let retryTimer = null;
  const controller = { url: null, status: null, update };

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
    video.removeAttribute("src");
    video.load();
  }

  function play(url, live) {
    // A live page's <video> has autoplay (muted); a replay waits for its play button.
    video.src = url;
    video.controls = true;
    if (live) showPlaceholder("Connecting to the video…");
    else showVideo(); // its own controls start it; an error brings the placeholder back
  }

  video.addEventListener("loadeddata", showVideo);
  video.addEventListener("playing", showVideo);
  video.addEventListener("error", () => {
    if (!controller.url) return;
    if (controller.status === "LIVE") {
      showPlaceholder("No video is being published yet. The seller may still be setting up; this page keeps looking.");
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => update(controller.url, controller.status, true), RETRY_MS);
    } else {
      showPlaceholder("The video is not available.");
    }
  });

  function update(url, status, force = false) {
    if (!force && url === controller.url && status === controller.status) return;
    controller.url = url;
    controller.status = status;
    clearTimeout(retryTimer);
    if (status === "SCHEDULED") {
      stop();
      showPlaceholder("The stream has not started yet.");
    } else if (!url) {
      stop();
      showPlaceholder(status === "ENDED" ? "This stream has ended and was not kept as a replay." : "No video is published for this stream.");
    } else if (status === "LIVE" && url.includes(".m3u8") && !video.canPlayType(HLS_TYPE)) {
      stop();
      showPlaceholder(`This browser cannot play live video (HLS). Open ${url} in a video player.`);
    } else {
      play(url, status === "LIVE");
    }
  }

  return controller;
}
