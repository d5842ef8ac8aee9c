// "/": the streams live now, with title, vendor, viewers and a running duration.

import { gql } from "/static/graphql.js";
import { $, currentUser, fill, formatDuration, h, renderAccount } from "/static/ui.js";

const LIVE_STREAMS = `{
  liveStreams { id title vendor { name } viewerCount durationSeconds featuredProducts { id } }
}`;

// The list is a directory, not a live view: refreshing it now and then is enough.
const REFRESH_MS = 15000;
let loadedAt = Date.now();

function card(stream) {
  const duration = h("span", { class: "duration", dataset: { seconds: stream.durationSeconds } }, formatDuration(stream.durationSeconds));
  return h(
    "li",
    { class: "stream-card", dataset: { streamId: stream.id } },
    h("a", { href: `/live/${encodeURIComponent(stream.id)}`, class: "stream-link" },
      h("span", { class: "badge live" }, "LIVE"),
      h("strong", { class: "title" }, stream.title)),
    h("div", { class: "vendor" }, stream.vendor.name),
    h("div", { class: "figures" },
      h("span", { class: "viewers" }, `👥 ${stream.viewerCount} watching`), " · ",
      h("span", {}, "⏰ ", duration), " · ",
      h("span", {}, `🛍️ ${stream.featuredProducts.length} products`)),
  );
}

async function load() {
  try {
    const data = await gql(LIVE_STREAMS);
    loadedAt = Date.now();
    const streams = data.liveStreams;
    fill($("#streams"), streams.map(card));
    fill($("#streams-status"), streams.length ? "" : "No one is live right now. Sellers go live from the seller dashboard.");
  } catch (err) {
    fill($("#streams-status"), `Could not load the streams: ${err.message}`);
  }
}

function tick() {
  const elapsed = (Date.now() - loadedAt) / 1000;
  for (const el of document.querySelectorAll(".duration")) {
    el.textContent = formatDuration(Number(el.dataset.seconds) + elapsed);
  }
}

currentUser().then(renderAccount);
load();
setInterval(load, REFRESH_MS);
setInterval(tick, 1000);
