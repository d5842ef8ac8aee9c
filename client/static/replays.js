// "/replays": streams their sellers saved, each with its video; "/replays?replay=<id>[&t=<seconds>]"
// one replay to watch and shop (issue 18): the chat and the products on screen at each moment.

import { GraphQLError, getToken, goToLogin, gql } from "/static/graphql.js";
import { attachVideo } from "/static/video.js";
import { confirmQuantity, newIdempotencyKey } from "/static/commerce.js";
import { $, currentUser, fill, formatDate, formatDuration, formatMoney, h, notify, renderAccount } from "/static/ui.js";

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
    h("a", { class: "button watch-replay", href: `/replays?replay=${encodeURIComponent(saved.id)}` }, "▶ Watch and shop"),
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

// ---------------------------------------------------------------- one replay, shoppable

const REPLAY = `query($id: ID!) {
  savedStream(id: $id) { id title videoUrl durationSeconds vendor { name } }
  replayTimeline(savedStreamId: $id) {
    durationSeconds
    products { fromSeconds toSeconds product { id name price stock imageUrl } }
    deals { fromSeconds toSeconds deal { id price product { id name } } }
    auctions { fromSeconds toSeconds auction { id price closed product { id name } } }
  }
}`;
const BUY_NOW = `mutation($p: ID!, $q: Int!, $k: String) { buyNow(productId: $p, quantity: $q, idempotencyKey: $k) { id total } }`;

// The chat comes by windows around the moment shown (a timeline list holds at most 100 items).
const COMMENTS_AT = `query($id: ID!, $f: Int!, $t: Int!) {
  replayTimeline(savedStreamId: $id, fromSeconds: $f, toSeconds: $t) {
    comments { offsetSeconds comment { id text author { username } } }
  }
}`;
const WINDOW = 30; // seconds each side of the moment
const MAX_SHOWN = 200; // the chat's newest lines up to the moment; older ones leave the page

const replay = { id: null, timeline: null, at: 0, shown: null, comments: [], window: null };

async function loadComments(at) {
  const window = [Math.max(0, at - WINDOW), at + WINDOW];
  replay.window = window;
  const data = await gql(COMMENTS_AT, { id: replay.id, f: window[0], t: window[1] });
  if (replay.window !== window) return; // a later seek asked for another window
  // Kept with what earlier windows brought: the chat reads as history up to the moment shown.
  const known = new Map(replay.comments.map((c) => [c.comment.id, c]));
  for (const c of data.replayTimeline.comments) known.set(c.comment.id, c);
  replay.comments = [...known.values()].sort((a, b) => a.offsetSeconds - b.offsetSeconds || Number(a.comment.id) - Number(b.comment.id));
  renderComments(replay.at);
}

function needsComments(at) {
  const w = replay.window;
  return !w || at < w[0] || (w[0] > 0 && at < w[0] + WINDOW / 3) || at > w[1] - WINDOW / 3;
}

function renderComments(at) {
  fill($("#replay-comments"), replay.comments.filter((c) => c.offsetSeconds <= at).slice(-MAX_SHOWN).map((c) =>
    h("li", { class: "comment", dataset: { commentId: c.comment.id, offset: c.offsetSeconds } },
      h("span", { class: "muted small" }, formatDuration(c.offsetSeconds)), " ",
      h("span", { class: "author" }, c.comment.author.username), " ",
      h("span", { class: "text" }, c.comment.text))));
  const list = $("#replay-comments");
  list.scrollTop = list.scrollHeight;
}

function within(span, t) {
  return span.fromSeconds <= t && (t < span.toSeconds || span.toSeconds === replay.timeline.durationSeconds);
}

async function buyFromReplay(product, button) {
  if (!getToken()) {
    goToLogin();
    return;
  }
  const answer = await confirmQuantity(product);
  if (!answer) return;
  button.disabled = true;
  try {
    const data = await gql(BUY_NOW, { p: product.id, q: answer.quantity, k: newIdempotencyKey() });
    notify(`Ordered ${product.name}: ${formatMoney(data.buyNow.total)}. Thank you!`, "success");
  } catch (err) {
    if (err instanceof GraphQLError && err.code === "UNAUTHENTICATED") goToLogin(err);
    else notify(err.message, "error");
  } finally {
    button.disabled = false;
  }
}

/** The moment `t` (seconds from the start): the chat so far, and what was on screen then. */
function showMoment(t) {
  const timeline = replay.timeline;
  const at = Math.max(0, Math.min(timeline.durationSeconds, Math.floor(t)));
  if (replay.shown === at) return;
  replay.shown = at;
  replay.at = at;
  fill($("#replay-at"), formatDuration(at));
  $("#replay-seek").value = String(at);
  renderComments(at);
  if (needsComments(at)) loadComments(at).catch((err) => notify(`Could not load the chat: ${err.message}`, "error"));
  const products = timeline.products.filter((span) => within(span, at)).map(({ product }) => {
    const buy = h("button", { type: "button", class: "primary buy-now", disabled: product.stock <= 0 }, "🛒 Buy Now");
    buy.addEventListener("click", () => buyFromReplay(product, buy));
    return h("li", { class: "product", dataset: { productId: product.id } },
      product.imageUrl ? h("img", { src: product.imageUrl, alt: "", loading: "lazy" }) : null,
      h("div", { class: "product-body" },
        h("strong", { class: "name" }, product.name),
        h("div", { class: "price" }, formatMoney(product.price)),
        h("div", { class: `stock${product.stock <= 0 ? " sold-out" : ""}` }, product.stock <= 0 ? "Sold out" : `${product.stock} left`),
        h("div", { class: "row" }, buy)));
  });
  const moments = [
    ...timeline.deals.filter((span) => within(span, at)).map(({ deal }) =>
      h("li", { class: "muted" }, `⚡ Flash deal on ${deal.product.name} at ${formatMoney(deal.price)} was running`)),
    ...timeline.auctions.filter((span) => within(span, at)).map(({ auction }) =>
      h("li", { class: "muted" }, `🔨 Auction of ${auction.product.name}${auction.price ? ` (${formatMoney(auction.price)})` : ""}`)),
  ];
  fill($("#replay-products"), products.length ? products : h("li", { class: "muted" }, "No product on screen at this moment."), moments);
}

async function showReplay(id, startAt) {
  $("#replays").hidden = true;
  let data;
  try {
    data = await gql(REPLAY, { id });
  } catch (err) {
    fill($("#replays-status"), `Could not load this replay: ${err.message}`);
    return;
  }
  if (!data.savedStream) {
    fill($("#replays-status"), "No such replay.");
    return;
  }
  replay.id = id;
  replay.timeline = data.replayTimeline;
  const saved = data.savedStream;
  fill($("#replays-status"));
  document.title = `${saved.title} · replay · livecart`;
  const video = h("video", { id: "replay-video", controls: true, preload: "metadata", playsinline: true });
  const message = h("p", {}, "");
  const placeholder = h("div", { class: "video-placeholder" }, h("div", { class: "placeholder-icon" }, "🎞️"), message);
  const seek = h("input", { type: "range", id: "replay-seek", min: 0, max: replay.timeline.durationSeconds, value: 0, "aria-label": "Seek" });
  const view = h("section", { class: "replay-view", id: "replay-view", dataset: { savedStreamId: saved.id } },
    h("h2", {}, saved.title, " ", h("span", { class: "muted small" }, `by ${saved.vendor.name}`)),
    h("div", { class: "replay-layout" },
      h("div", { class: "panel" }, h("div", { class: "video-frame" }, video, placeholder),
        h("div", { class: "row" }, seek, h("span", { id: "replay-at" }, "0:00"))),
      h("div", { class: "panel" }, h("h3", {}, "💬 Chat"), h("ol", { class: "comments", id: "replay-comments" })),
      h("div", { class: "panel" }, h("h3", {}, "🛍️ On screen"), h("ul", { class: "products", id: "replay-products" }))));
  $("main").appendChild(view);
  attachVideo(video, placeholder, message).update(saved.videoUrl, "ENDED");
  // The video is the clock when it plays; the slider (and ?t=) seek it, or stand in for it.
  video.addEventListener("timeupdate", () => showMoment(video.currentTime));
  video.addEventListener("seeked", () => showMoment(video.currentTime));
  seek.addEventListener("input", () => {
    const t = Number(seek.value);
    if (video.readyState > 0) video.currentTime = t;
    showMoment(t);
  });
  showMoment(startAt);
  if (startAt) video.addEventListener("loadedmetadata", () => { video.currentTime = startAt; }, { once: true });
  window.livecartReplay = { seek: (t) => { if (video.readyState > 0) video.currentTime = t; showMoment(t); } };
}

currentUser().then(renderAccount);
const params = new URLSearchParams(location.search);
if (params.get("replay")) showReplay(params.get("replay"), Number(params.get("t")) || 0);
else load().then(() => document.getElementById(location.hash.slice(1))?.scrollIntoView());
