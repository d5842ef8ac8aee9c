// "/replays": streams their sellers saved, each with its video.

import { gql } from "/static/graphql.js";
import { attachVideo } from "/static/video.js";
import { $, currentUser, fill, formatDate, formatDuration, h, renderAccount } from "/static/ui.js";

const SAVED_STREAMS = `{
  savedStreams { id title videoUrl durationSeconds streamedAt vendor { name } stream { id } }
}`;

function replayElement(saved) {
  const video = h("video", { controls: true, preload: "none", playsinline: true, "aria-label": `Replay: ${saved.title}` });
  const message = h("p", {}, "");
  const placeholder = h("div", { class: "video-placeholder" }, h("div", { class: "placeholder-icon" }, "🎞️"), message);
  const item = h(
    "li",
    { class: "replay card", id: `stream-${saved.stream.id}`, dataset: { savedStreamId: saved.id, streamId: saved.stream.id } },
    h("div", { class: "video-frame" }, video, placeholder),
    h("h2", { class: "title" }, saved.title),
    h("div", { class: "muted" },
      h("span", { class: "vendor" }, saved.vendor.name), " · ",
      `streamed ${formatDate(saved.streamedAt)} · ${formatDuration(saved.durationSeconds)}`),
  );
  const player = attachVideo(video, placeholder, message);
  player.update(saved.videoUrl, "ENDED");
  return item;
}

async function load() {
  try {
    const data = await gql(SAVED_STREAMS);
    fill($("#replays"), data.savedStreams.map(replayElement));
    fill($("#replays-status"), data.savedStreams.length ? "" : "No replays yet: sellers keep a stream by ending it with Save.");
  } catch (err) {
    fill($("#replays-status"), `Could not load the replays: ${err.message}`);
  }
}

currentUser().then(renderAccount);
load().then(() => document.getElementById(location.hash.slice(1))?.scrollIntoView());
