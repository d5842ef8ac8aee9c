// The seller's view of one stream: broadcast details, Go Live, live figures
// from streamStats, comments (with delete), viewers, orders, the featured
// product, and End Stream with Save or Delete.

import { LiveSocket, goToLogin, gql } from "/static/graphql.js";
import { ownerModeration } from "/static/moderation.js";
import { cameraReady, publishCamera, publishing, setupCamera, showCameraError, stopPublishing, watchMediaStatus } from "/static/media.js";
import { startSellerCommerce } from "/static/commerce.js";
import { $, CommentFeed, fill, showConnection, formatDuration, formatMoney, formatTime, h, notify, runningClock } from "/static/ui.js";

const STATS_FIELDS = "streamId durationSeconds viewerCount uniqueViewers peakViewers likes dislikes comments orders itemsSold revenue";
const ORDER_FIELDS = "id orderId quantity amount createdAt product { id name } buyer { id username }";
const COMMENT_FIELDS = "id text createdAt authorRole author { id username }";
const VIEWER_FIELDS = "id joinedAt user { id username }";

const STREAM = `query($id: ID!) {
  stream(id: $id) {
    id title status durationSeconds playbackUrl streamKey broadcasting
    vendor { id }
    featuredProducts(first: 100) { id }
    stats { ${STATS_FIELDS} }
    activeViewers { ${VIEWER_FIELDS} }
    orders { ${ORDER_FIELDS} }
    comments(limit: 50) { ${COMMENT_FIELDS} }
  }
}`;
const ACTIVE_VIEWERS = `query($id: ID!) { stream(id: $id) { activeViewers { ${VIEWER_FIELDS} } } }`;
const STATS = `query($id: ID!) { stream(id: $id) { stats { ${STATS_FIELDS} } } }`;
const START = `mutation($id: ID!) { startStream(id: $id) { id status durationSeconds } }`;
const FEATURE = `mutation($s: ID!, $p: ID!) { featureProduct(streamId: $s, productId: $p) { id featuredProducts(first: 100) { id } } }`;
const DELETE_COMMENT = `mutation($id: ID!) { deleteComment(id: $id) }`;
const END = `mutation($id: ID!, $a: EndStreamAction!) {
  endStream(id: $id, action: $a) { stream { id status } savedStream { id videoUrl } stats { ${STATS_FIELDS} } }
}`;

const SUB_STATS = `subscription($s: ID!, $after: String) { streamStats(streamId: $s, after: $after) { eventCursor ${STATS_FIELDS} } }`;
const SUB_COMMENTS = `subscription($s: ID!, $after: String) { commentAdded(streamId: $s, after: $after) { eventCursor ${COMMENT_FIELDS} } }`;
const SUB_ORDERS = `subscription($s: ID!, $after: String) { orderPlaced(streamId: $s, after: $after) { eventCursor ${ORDER_FIELDS} } }`;
const SUB_VIEWERS = `subscription($s: ID!, $after: String) { viewerCount(streamId: $s, after: $after) { eventCursor count } }`;
const SUB_STREAM = `subscription($s: ID!, $after: String) { streamUpdated(streamId: $s, after: $after) { eventCursor id status durationSeconds broadcasting featuredProducts(first: 100) { id } } }`;
const ROTATE_KEY = `mutation($id: ID!) { rotateStreamKey(id: $id) { id streamKey } }`;

const MAX_FEED = 200;

const dash = {
  id: null,
  status: null,
  streamKey: null, // rotateStreamKey replaces it
  seller: null,
  clock: null,
  socket: null,
  comments: null, // CommentFeed
  orders: new Map(),
  viewersTimer: null,
};

// ---------------------------------------------------------------- figures

const STAT_CELLS = [
  ["viewerCount", "#stat-viewers", String],
  ["uniqueViewers", "#stat-unique", String],
  ["peakViewers", "#stat-peak", String],
  ["likes", "#stat-likes", String],
  ["dislikes", "#stat-dislikes", String],
  ["comments", "#stat-comments", String],
  ["orders", "#stat-orders", String],
  ["itemsSold", "#stat-items", String],
  ["revenue", "#stat-revenue", formatMoney],
];

function renderStats(stats) {
  if (!stats) return;
  for (const [field, selector, format] of STAT_CELLS) fill($(selector), format(stats[field]));
  dash.clock?.stop();
  dash.clock = runningClock(stats.durationSeconds, (s) => fill($("#stat-duration"), formatDuration(s)), {
    running: dash.status === "LIVE",
  });
}

/** The final figures, as the seed's End Stream modal shows them. */
function finalFigures(stats) {
  const rows = [
    ["⏰ Duration", formatDuration(stats.durationSeconds)],
    ["👥 Viewers", `${stats.uniqueViewers} (peak ${stats.peakViewers})`],
    ["👍 Likes", String(stats.likes)],
    ["💬 Comments", String(stats.comments)],
    ["🛒 Orders", `${stats.orders} (${stats.itemsSold} items)`],
    ["💰 Revenue", formatMoney(stats.revenue)],
  ];
  return rows.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", { class: "final-figure" }, value)));
}

const STATE_NOTES = {
  SCHEDULED: "Not live yet: start publishing from your broadcasting software, then Go Live.",
  LIVE: "You are live: viewers see the stream on its page.",
  ENDED: "This stream has ended; its figures are final.",
};

/** The controls the stream's state allows, and nothing else: Go Live before, End Stream during. */
function renderStatus(status) {
  dash.status = status;
  const badge = $("#manage-status");
  badge.textContent = status;
  badge.className = `badge ${status.toLowerCase()}`;
  $("#go-live").hidden = status !== "SCHEDULED";
  $("#end-stream").hidden = status !== "LIVE";
  fill($("#manage-note"), STATE_NOTES[status] || "");
  $("#connection").hidden = status === "ENDED";
  renderCameraButton();
  if (status === "LIVE" && dash.socket) startSellerCommerce({ streamId: dash.id, socket: dash.socket }).catch(() => {});
}

/** "Send my camera" while LIVE with a camera set up: Go Live does it for a SCHEDULED stream. */
function renderCameraButton() {
  const button = $("#camera-broadcast");
  button.hidden = dash.status !== "LIVE" || !cameraReady();
  button.textContent = publishing() ? "⏹️ Stop sending my camera" : "📡 Send my camera";
}

async function toggleCamera() {
  const button = $("#camera-broadcast");
  button.disabled = true;
  try {
    if (publishing()) await stopPublishing();
    else await publishCamera(dash.streamKey);
  } catch (err) {
    showCameraError(err);
  } finally {
    button.disabled = false;
    renderCameraButton();
  }
}

// ---------------------------------------------------------------- feeds

function trimFeed(map) {
  while (map.size > MAX_FEED) {
    const [oldest, el] = map.entries().next().value;
    el.remove();
    map.delete(oldest);
  }
}

function commentElement(comment) {
  const remove = h("button", { type: "button", class: "link danger delete-comment", "aria-label": `Delete the comment by ${comment.author.username}` }, "Delete");
  const el = h(
    "li",
    { class: "comment", dataset: { commentId: comment.id } },
    h("span", { class: "author" }, comment.author.username), " ",
    h("span", { class: "text" }, comment.text), " ",
    h("time", { class: "muted small" }, formatTime(comment.createdAt)), " ",
    remove, " ", dash.moderation.commentTools(comment),
  );
  remove.addEventListener("click", async () => {
    remove.disabled = true;
    try {
      await gql(DELETE_COMMENT, { id: comment.id });
      dash.comments.remove(comment.id);
    } catch (err) {
      notify(err.message, "error");
      remove.disabled = false;
    }
  });
  return el;
}

function orderElement(order) {
  return h(
    "li",
    { class: "order", dataset: { orderId: order.id } },
    h("span", { class: "buyer" }, order.buyer.username), " bought ",
    h("span", { class: "quantity" }, `${order.quantity} × `),
    h("span", { class: "order-product" }, order.product.name), " · ",
    h("strong", { class: "amount" }, formatMoney(order.amount)), " ",
    h("time", { class: "muted small" }, formatTime(order.createdAt)),
  );
}

/** Orders arrive newest first from the query, and newest on top from the subscription. */
function addOrders(ordersNewestFirst) {
  const list = $("#order-feed");
  for (const order of [...ordersNewestFirst].reverse()) {
    if (dash.orders.has(order.id)) continue;
    const el = orderElement(order);
    dash.orders.set(order.id, el);
    list.prepend(el);
  }
  trimFeed(dash.orders);
}

function renderViewers(viewers) {
  if (!viewers) return;
  fill($("#viewer-list-count"), `(${viewers.length})`);
  fill(
    $("#active-viewers"),
    viewers.map((v) =>
      h("li", { dataset: { viewerId: v.id } },
        v.user ? h("span", { class: "viewer-name" }, v.user.username) : h("span", { class: "muted" }, "anonymous"),
        " ", h("time", { class: "muted small" }, `since ${formatTime(v.joinedAt)}`))),
  );
}

/** The viewer list follows viewerCount changes, at most once a second. */
function refreshViewersSoon() {
  if (dash.viewersTimer) return;
  dash.viewersTimer = setTimeout(async () => {
    dash.viewersTimer = null;
    try {
      const data = await gql(ACTIVE_VIEWERS, { id: dash.id });
      renderViewers(data.stream?.activeViewers);
    } catch (err) {
      // The next change or reconnect tries again.
    }
  }, 1000);
}

// ---------------------------------------------------------------- products

function renderFeatured(featured) {
  const highlighted = featured[0]?.id;
  const offered = new Set(featured.map((p) => p.id));
  fill(
    $("#feature-list"),
    dash.seller.products.map((p) => {
      const button = h("button", { type: "button", class: "feature", disabled: p.id === highlighted, "aria-label": p.id === highlighted ? `${p.name} is featured` : `Feature ${p.name}` }, p.id === highlighted ? "Featured" : "Feature");
      button.addEventListener("click", () => feature(p.id, button));
      return h("li", { dataset: { productId: p.id }, class: p.id === highlighted ? "highlighted" : "" },
        h("span", {}, p.name), offered.has(p.id) ? "" : h("span", { class: "muted small" }, " (not offered yet)"), " ", button);
    }),
  );
}

async function feature(productId, button) {
  button.disabled = true;
  try {
    const data = await gql(FEATURE, { s: dash.id, p: productId });
    renderFeatured(data.featureProduct.featuredProducts);
  } catch (err) {
    notify(err.message, "error");
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- actions

async function goLive() {
  $("#go-live").disabled = true;
  try {
    if (cameraReady()) {
      // The camera's media make the stream LIVE (unless the server leaves that to startStream).
      await publishCamera(dash.streamKey);
      if ((await refresh()).status === "LIVE") {
        notify("You are live.", "success");
        return;
      }
    }
    const data = await gql(START, { id: dash.id });
    renderStatus(data.startStream.status);
    notify("You are live.", "success");
    await refresh();
  } catch (err) {
    notify(err.message, "error");
  } finally {
    $("#go-live").disabled = false;
  }
}

async function openEndDialog() {
  const dialog = $("#end-dialog");
  try {
    const data = await gql(STATS, { id: dash.id });
    fill($("#end-stats"), finalFigures(data.stream.stats));
  } catch (err) {
    fill($("#end-stats"), h("p", { class: "error" }, err.message));
  }
  dialog.showModal();
}

async function endStream(action) {
  const buttons = ["#end-save", "#end-delete"].map((s) => $(s));
  for (const b of buttons) b.disabled = true;
  try {
    const data = await gql(END, { id: dash.id, a: action });
    const result = data.endStream;
    await stopPublishing(); // the server has already closed it; this frees the camera's connection
    $("#end-dialog").close();
    // The socket stays: the server completes each subscription with the stream's final state.
    dash.clock?.stop();
    renderStatus(result.stream.status);
    $("#manage").hidden = true;
    $("#end-result").hidden = false;
    fill($("#end-result-title"), result.savedStream ? "Stream saved for on-demand viewing" : "Stream ended (not saved)");
    fill($("#end-result-stats"), finalFigures(result.stats));
    $("#end-result-replays").hidden = !result.savedStream;
    if (result.savedStream) $("#end-result-replays").href = `/replays#stream-${encodeURIComponent(dash.id)}`;
  } catch (err) {
    notify(err.message, "error");
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

function wireBroadcast(stream) {
  const ingest = document.querySelector('meta[name="livecart-ingest-url"]')?.content || "";
  fill($("#ingest-url"), ingest);
  fill($("#playback-url"), stream.playbackUrl || "");
  const key = $("#stream-key");
  dash.streamKey = stream.streamKey;
  $("#show-key").addEventListener("click", () => {
    const hidden = key.dataset.hidden === "true";
    key.dataset.hidden = String(!hidden);
    key.textContent = hidden ? dash.streamKey || "" : "••••••••";
    $("#show-key").textContent = hidden ? "Hide" : "Show";
  });
  $("#copy-key").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(dash.streamKey || "");
      notify("Stream key copied.", "success");
    } catch (err) {
      notify("Copying is not allowed here: use Show and copy it by hand.", "error");
    }
  });
  $("#rotate-key").addEventListener("click", async () => {
    try {
      dash.streamKey = (await gql(ROTATE_KEY, { id: dash.id })).rotateStreamKey.streamKey;
      if (key.dataset.hidden === "false") key.textContent = dash.streamKey;
      notify("New stream key: the old one no longer works. Update your broadcasting software.", "success");
    } catch (err) {
      notify(err.message, "error");
    }
  });
  setupCamera($("#camera-setup"), { onChange: renderCameraButton });
  $("#camera-broadcast").addEventListener("click", toggleCamera);
  $("#go-live").addEventListener("click", goLive);
  $("#end-stream").addEventListener("click", openEndDialog);
  $("#end-save").addEventListener("click", () => endStream("SAVE"));
  $("#end-delete").addEventListener("click", () => endStream("DELETE"));
}

// ---------------------------------------------------------------- loading

/** Loads everything the dashboard shows; also the catch-up after a reconnect. */
async function refresh() {
  const data = await gql(STREAM, { id: dash.id });
  const stream = data.stream;
  renderStatus(stream.status);
  watchMediaStatus(dash.id, stream.broadcasting);
  renderStats(stream.stats);
  renderViewers(stream.activeViewers);
  addOrders(stream.orders || []);
  dash.comments.catchUp(stream.comments);
  renderFeatured(stream.featuredProducts);
  return stream;
}

function subscribe() {
  const socket = new LiveSocket({
    onReconnect: () => refresh().catch(() => {}),
    onStatus: showConnection,
    onLoggedOut: () => goToLogin(),  // the seller's login ended elsewhere: the figures are theirs only
  });
  const vars = { s: dash.id };
  socket.subscribe(SUB_STATS, vars, { next: (d) => renderStats(d.streamStats) });
  socket.subscribe(SUB_COMMENTS, vars, { next: (d) => dash.comments.add([d.commentAdded]) });
  socket.subscribe(SUB_ORDERS, vars, { next: (d) => addOrders([d.orderPlaced]) });
  socket.subscribe(SUB_VIEWERS, vars, { next: refreshViewersSoon });
  socket.subscribe(SUB_STREAM, vars, {
    next: (d) => {
      renderStatus(d.streamUpdated.status);
      renderFeatured(d.streamUpdated.featuredProducts);
      watchMediaStatus(dash.id, d.streamUpdated.broadcasting);
    },
    complete: () => refresh().catch(() => {}), // ended elsewhere: show the final state
  });
  return socket;
}

export async function openDashboard(id, seller) {
  dash.id = id;
  dash.seller = seller;
  // Newest on top, like the orders beside them: what just happened is what the seller sees first.
  dash.comments = new CommentFeed($("#seller-comments"), commentElement, MAX_FEED, { newestFirst: true });
  dash.moderation = ownerModeration({ streamId: id, vendorId: seller.vendor.id, feed: dash.comments });
  let stream;
  try {
    stream = await refresh();
  } catch (err) {
    fill($("#seller-status"), `Could not open stream ${id}: ${err.message}`);
    $("#setup").hidden = false;
    return;
  }
  $("#manage").hidden = false;
  fill($("#manage-title"), stream.title);
  $("#manage-view-link").href = `/live/${encodeURIComponent(stream.id)}`;
  wireBroadcast(stream);
  if (stream.status !== "ENDED") dash.socket = subscribe();
  if (dash.socket) dash.moderation.follow(dash.socket);
  if (stream.status === "LIVE") renderStatus("LIVE");  // with the socket now: the deal and auction controls
  window.livecart = { streamId: id, socket: dash.socket, dash };
}
