// "/": the streams live now, kept live by the liveStreamsChanged subscription (a stream going
// live or ending appears or leaves without a reload); each card follows its own viewer count.

import { LiveSocket, gql } from "/static/graphql.js";
import { $, currentUser, fill, formatDuration, h, renderAccount, showConnection, trackHeaderHeight } from "/static/ui.js";

const STREAM_FIELDS = "id title vendor { name } viewerCount durationSeconds featuredProducts { id imageUrl }";
const LIVE_STREAMS = `{ liveStreams { ${STREAM_FIELDS} } }`;
const SUB_LIVE_STREAMS = `subscription { liveStreamsChanged { ${STREAM_FIELDS} } }`;
const SUB_VIEWERS = `subscription($s: ID!, $after: String) { viewerCount(streamId: $s, after: $after) { eventCursor count } }`;

// A socket runs at most 50 operations; the cards beyond these are shown but not followed.
const FOLLOWED_CARDS = 40;

const cards = new Map(); // stream id -> { el, stopViewers, loadedAt, seconds }
let socket = null;

function viewersText(count) {
  return `${count} watching`;
}

/** The poster frame: the featured product's picture, or a plain one. */
function poster(stream) {
  const image = stream.featuredProducts.find((p) => p.imageUrl)?.imageUrl;
  return h(
    "span",
    { class: "poster" },
    image ? h("img", { src: image, alt: "", loading: "lazy" }) : h("span", { class: "poster-icon", "aria-hidden": "true" }, "🛍️"),
    h("span", { class: "badge live" }, "LIVE"),
    h("span", { class: "viewers-chip" }, h("span", { "aria-hidden": "true" }, "👥 "), h("span", { class: "viewer-number" }, viewersText(stream.viewerCount))),
  );
}

function cardElement(stream) {
  const products = stream.featuredProducts.length;
  return h(
    "li",
    { class: "stream-card", dataset: { streamId: stream.id } },
    h("a", { href: `/live/${encodeURIComponent(stream.id)}`, class: "stream-link" },
      poster(stream),
      h("span", { class: "card-body" }, h("strong", { class: "title" }, stream.title))),
    h("div", { class: "card-body" },
      h("div", { class: "vendor" }, stream.vendor.name),
      h("div", { class: "figures" },
        h("span", { class: "viewers" }, viewersText(stream.viewerCount)), " · ",
        h("span", { class: "duration" }, formatDuration(stream.durationSeconds)), " · ",
        h("span", {}, `${products} product${products === 1 ? "" : "s"}`))),
  );
}

function showViewers(id, count) {
  const card = cards.get(id);
  if (!card) return;
  for (const el of card.el.querySelectorAll(".viewers, .viewer-number")) el.textContent = viewersText(count);
}

/** The list as the server says it is now: new cards in, ended ones out, order as given. */
function render(streams) {
  const wanted = new Set(streams.map((s) => s.id));
  for (const [id, card] of cards) {
    if (wanted.has(id)) continue;
    card.stopViewers?.();
    card.el.remove();
    cards.delete(id);
  }
  const list = $("#streams");
  streams.forEach((stream, index) => {
    let card = cards.get(stream.id);
    if (!card) {
      card = { el: cardElement(stream), stopViewers: null };
      cards.set(stream.id, card);
      if (socket && index < FOLLOWED_CARDS) {
        card.stopViewers = socket.subscribe(SUB_VIEWERS, { s: stream.id }, { next: (d) => showViewers(stream.id, d.viewerCount.count) });
      }
    }
    card.loadedAt = Date.now();
    card.seconds = stream.durationSeconds;
    showViewers(stream.id, stream.viewerCount);
    list.appendChild(card.el); // in the server's order (appending moves an existing card)
  });
  fill($("#streams-status"), streams.length ? "" : "No one is live right now. Sellers go live from the seller dashboard.");
}

function tick() {
  for (const card of cards.values()) {
    card.el.querySelector(".duration").textContent = formatDuration(card.seconds + (Date.now() - card.loadedAt) / 1000);
  }
}

async function start() {
  trackHeaderHeight();
  currentUser().then(renderAccount);
  socket = new LiveSocket({
    onStatus: showConnection,
    // Back after a drop: the subscription starts again with the list as it is now.
    onReconnect: () => gql(LIVE_STREAMS).then((d) => render(d.liveStreams)).catch(() => {}),
  });
  socket.subscribe(SUB_LIVE_STREAMS, {}, {
    next: (d) => render(d.liveStreamsChanged),
    error: (err) => fill($("#streams-status"), `Could not load the streams: ${err.message || err}`),
  });
  setInterval(tick, 1000);
  window.livecart = { socket, cards };
}

start();
