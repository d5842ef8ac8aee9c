// "/live/<id>": the viewer page. Video, viewers, duration, reactions, chat and
// featured products; joins and heartbeats by itself, leaves on page close, and
// gets every change pushed over one subscription socket.

import { GraphQLError, LiveSocket, getToken, goToLogin, gql, loginUrl } from "/static/graphql.js";
import { roleBadge, viewerModeration } from "/static/moderation.js";
import { attachVideo } from "/static/video.js";
import { confirmQuantity, newIdempotencyKey, rememberPending, startLiveCommerce, takePending } from "/static/commerce.js";
import {
  $, CommentFeed, currentUser, fill, showConnection, formatDuration, formatMoney, formatTime, h, notify, politeAnnouncer,
  renderAccount, runningClock, trackHeaderHeight,
} from "/static/ui.js";

const streamId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");

const PRODUCT_FIELDS = "id name description price stock imageUrl";
const COMMENT_FIELDS = "id text createdAt held authorRole author { id username }";

const STREAM = `query($id: ID!) {
  stream(id: $id) {
    id title description status durationSeconds playbackUrl broadcasting
    viewerCount likes dislikes commentCount myReaction
    vendor { id name }
    featuredProducts(first: 100) { ${PRODUCT_FIELDS} }
    comments(limit: 50) { ${COMMENT_FIELDS} }
  }
}`;

const JOIN = `mutation($s: ID!, $b: String) { joinStream(streamId: $s, browserId: $b) { id expiresAt viewerCount } }`;
const HEARTBEAT = `mutation($id: ID!) { viewerHeartbeat(sessionId: $id) { id expiresAt viewerCount } }`;
const LEAVE = `mutation($id: ID!) { leaveStream(sessionId: $id) }`;
const REACT = `mutation($s: ID!, $k: ReactionKind!) { react(streamId: $s, kind: $k) { likes dislikes } }`;
const CLEAR_REACTION = `mutation($s: ID!) { clearReaction(streamId: $s) { likes dislikes } }`;
const POST_COMMENT = `mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { ${COMMENT_FIELDS} } }`;
const BUY_NOW = `mutation($p: ID!, $q: Int!, $s: ID, $k: String, $n: Boolean! = false) {
  buyNow(productId: $p, quantity: $q, streamId: $s, idempotencyKey: $k, showMyName: $n) { id total items { quantity product { ${PRODUCT_FIELDS} } } }
}`;
const ADD_TO_CART = `mutation($p: ID!, $s: ID) { addToCart(productId: $p, quantity: 1, streamId: $s) { total items { quantity } } }`;
const CART = `{ cart { total items { quantity } } }`;
const CHECKOUT = `mutation { checkout { id total } }`;

const SUB_COMMENTS = `subscription($s: ID!, $after: String) { commentAdded(streamId: $s, after: $after) { eventCursor ${COMMENT_FIELDS} } }`;
const SUB_VIEWERS = `subscription($s: ID!, $after: String) { viewerCount(streamId: $s, after: $after) { eventCursor count } }`;
const SUB_REACTIONS = `subscription($s: ID!, $after: String) { reactionsChanged(streamId: $s, after: $after) { eventCursor likes dislikes } }`;
const SUB_STREAM = `subscription($s: ID!, $after: String) {
  streamUpdated(streamId: $s, after: $after) { eventCursor id status durationSeconds playbackUrl broadcasting featuredProducts(first: 100) { ${PRODUCT_FIELDS} } }
}`;

// Keeps the chat light on a long stream: older lines leave the page, not the server.
const MAX_COMMENTS_SHOWN = 300;

const state = {
  stream: null,
  myReaction: null,
  feed: null, // CommentFeed
  commentCount: null,
  clock: null,
  session: null, // {id, expiresAt}
  joining: false,
  heartbeatTimer: null,
  video: null,
  socket: null,
  user: null,
  products: null, // as shown, the featured one first
  announce: null, // the chat's polite live region
};

const loggedIn = () => Boolean(getToken());

/**
 * This browser's own random id, kept across its tabs: an anonymous viewer's tabs are one viewer
 * (a logged-in viewer is counted by user). Not a secret and nothing else.
 */
function browserId() {
  const KEY = "livecart.browser";
  let id = localStorage.getItem(KEY);
  if (!id) {
    id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(KEY, id);
  }
  return id;
}
// Read (or made) as the script first runs, before the page's load event, rather than when the
// page first joins after loading the stream: a second tab opened in between would find no id yet
// and make its own, and a guest's two tabs would count as two viewers.
const BROWSER_ID = browserId();

// ---------------------------------------------------------------- rendering

function renderHeader(stream) {
  document.title = `${stream.title} · livecart`;
  fill($("#stream-title"), stream.title);
  fill($("#stream-vendor"), `by ${stream.vendor.name}`);
  fill($("#stream-description"), stream.description ? `· ${stream.description}` : "");
  renderStatus(stream.status, stream.durationSeconds);
}

function renderStatus(status, durationSeconds) {
  const badge = $("#stream-status");
  badge.textContent = status === "LIVE" ? "LIVE" : status === "ENDED" ? "ENDED" : "SCHEDULED";
  badge.className = `badge ${status.toLowerCase()}`;
  $("#live-layout").dataset.status = status;
  state.clock?.stop();
  state.clock = runningClock(durationSeconds, (s) => fill($("#duration"), formatDuration(s)), {
    running: status === "LIVE",
  });
  renderStage(status);
}

/**
 * What the page offers in each state, so nothing on it contradicts the stream's badge: before
 * Go Live and after the end there is no chat box and no "watching"; an ended stream's page is
 * its replay (if kept) and a shop.
 */
function renderStage(status) {
  const ended = status === "ENDED";
  const live = status === "LIVE";
  $("#ended-banner").hidden = !ended;
  // After the end the socket has nothing more to say: its badge would only contradict ENDED.
  $("#connection").hidden = ended;
  const replay = ended && Boolean(state.stream?.playbackUrl);
  $("#replay-link").hidden = !replay;
  $("#replay-link").href = `/replays#stream-${encodeURIComponent(streamId)}`;
  fill($("#ended-detail"), ended ? (replay ? "It was kept as a replay, playing above." : "It was not kept as a replay.") : "");
  for (const button of [$("#like-button"), $("#dislike-button")]) button.disabled = !live;
  showChatBox();
  const chatClosed = $("#chat-closed");
  chatClosed.hidden = live;
  fill(chatClosed, ended ? "The chat is closed: this stream has ended." : "The chat opens when the stream goes live.");
  const vendor = state.stream?.vendor?.name;
  fill($("#shop-heading"), ended && vendor ? `Shop ${vendor}` : "Products on this stream");
}

/** The chat box for a logged-in viewer, the invitation to log in for a guest: while LIVE only. */
function showChatBox() {
  const live = state.stream?.status === "LIVE";
  const user = state.user;
  $("#comment-form").hidden = !live || !user;
  const chatLogin = $("#chat-login");
  chatLogin.hidden = !live || Boolean(user);
  chatLogin.href = loginUrl();
}

function renderCounts({ viewerCount, likes, dislikes, commentCount }) {
  if (viewerCount !== undefined) fill($("#viewer-count"), String(viewerCount));
  if (likes !== undefined) fill($("#like-count"), String(likes));
  if (dislikes !== undefined) fill($("#dislike-count"), String(dislikes));
  if (commentCount !== undefined) {
    state.commentCount = commentCount;
    fill($("#comment-count"), commentCount === 1 ? "1 comment" : `${commentCount} comments`);
  }
}

function renderMyReaction() {
  $("#like-button").setAttribute("aria-pressed", String(state.myReaction === "LIKE"));
  $("#dislike-button").setAttribute("aria-pressed", String(state.myReaction === "DISLIKE"));
}

function commentElement(comment) {
  return h(
    "li",
    { class: "comment", dataset: { commentId: comment.id } },
    h("span", { class: "author" }, comment.author.username),
    " ",
    roleBadge(comment.authorRole),
    " ",
    h("span", { class: "text" }, comment.text),
    " ",
    h("time", { class: "muted small", datetime: comment.createdAt }, formatTime(comment.createdAt)),
  );
}

function buyButton(product, label = "🛒 Buy Now") {
  const soldOut = product.stock <= 0;
  const buy = h("button", { type: "button", class: "primary buy-now", disabled: soldOut }, soldOut ? "Sold out" : label);
  buy.addEventListener("click", () => buyNow(product, buy));
  return buy;
}

/** The featured product pinned above its Buy Now (over the video's lower part on a phone). */
function featuredCard(product) {
  const soldOut = product.stock <= 0;
  return h(
    "div",
    { class: "featured-card", dataset: { productId: product.id } },
    product.imageUrl ? h("img", { src: product.imageUrl, alt: "" }) : h("span", { class: "thumb", "aria-hidden": "true" }, "🛍️"),
    h("div", { class: "featured-text" },
      h("span", { class: "badge featured" }, "Featured now"),
      h("strong", { class: "name" }, product.name),
      h("span", {}, h("span", { class: "price" }, formatMoney(product.price)), " · ",
        h("span", { class: `stock${soldOut ? " sold-out" : ""}` }, soldOut ? "Sold out" : `${product.stock} left`))),
    buyButton(product, `🛒 Buy Now · ${formatMoney(product.price)}`),
  );
}

function productElement(product, index) {
  const soldOut = product.stock <= 0;
  const onStage = state.stream?.status !== "ENDED";
  const buy = buyButton(product, onStage ? "🛒 Buy Now" : "🛒 Buy");
  const add = h("button", { type: "button", class: "add-to-cart", disabled: soldOut }, "📦 Add to Cart");
  add.addEventListener("click", () => addToCart(product, add));
  const featured = index === 0 && onStage;
  return h(
    "li",
    { class: `product${featured ? " highlighted" : ""}`, dataset: { productId: product.id } },
    product.imageUrl ? h("img", { src: product.imageUrl, alt: "", loading: "lazy" }) : null,
    h("div", { class: "product-body" },
      featured ? h("span", { class: "badge featured" }, "Featured now") : null,
      h("strong", { class: "name" }, product.name),
      h("div", { class: "price" }, formatMoney(product.price)),
      h("div", { class: `stock${soldOut ? " sold-out" : ""}` }, soldOut ? "Sold out" : `${product.stock} left`),
      product.description ? h("p", { class: "muted small" }, product.description) : null,
      h("div", { class: "row" }, buy, add)),
  );
}

/**
 * `fresh`, or the element it would replace when that shows the same: updates come often during a
 * show, and a Buy Now replaced between the press and the release of a click loses the click.
 */
function unlessUnchanged(old, fresh) {
  return old && old.isEqualNode(fresh) ? old : fresh;
}

function renderProducts(products) {
  state.products = products;
  const list = $("#products");
  const shown = new Map([...list.querySelectorAll(":scope > li.product")].map((li) => [li.dataset.productId, li]));
  fill(list, products.length
    ? products.map((p, i) => unlessUnchanged(shown.get(p.id), productElement(p, i)))
    : h("li", { class: "muted" }, "No products on this stream yet."));
  renderFeatured();
}

function renderFeatured() {
  const first = state.products?.[0];
  const slot = $("#featured");
  const show = Boolean(first) && state.stream?.status !== "ENDED";
  slot.hidden = !show;
  fill(slot, show ? unlessUnchanged(slot.firstElementChild, featuredCard(first)) : "");
}

function updateProductStock(product) {
  const index = (state.products || []).findIndex((p) => p.id === product.id);
  if (index < 0) return;
  state.products[index] = { ...state.products[index], ...product };
  renderProducts(state.products);
}

function renderCart(cart) {
  const count = cart.items.reduce((sum, item) => sum + item.quantity, 0);
  $("#cart").hidden = count === 0;
  fill($("#cart-summary"), `Cart: ${count} item${count === 1 ? "" : "s"} · ${formatMoney(cart.total)}`);
}

// ---------------------------------------------------------------- actions

/** Runs an action that needs a login; a logged-out viewer goes to log in and comes back here,
 * where `pending` (what they clicked) is done or offered again (commerce.js). */
async function asViewer(action, pending = null) {
  if (!loggedIn()) {
    if (pending) rememberPending({ ...pending, streamId });
    goToLogin();
    return undefined;
  }
  try {
    return await action();
  } catch (err) {
    if (err instanceof GraphQLError && err.code === "UNAUTHENTICATED") {
      goToLogin(err);
      return undefined;
    }
    notify(err.message, "error");
    return undefined;
  }
}

async function react(kind) {
  await asViewer(async () => {
    const clearing = state.myReaction === kind;
    const data = clearing
      ? await gql(CLEAR_REACTION, { s: streamId })
      : await gql(REACT, { s: streamId, k: kind });
    state.myReaction = clearing ? null : kind;
    renderCounts(clearing ? data.clearReaction : data.react);
    renderMyReaction();
  }, { kind: "react", reaction: kind });
}

async function postComment(event) {
  event.preventDefault();
  const input = $("#comment-input");
  const text = input.value.trim();
  if (!text) return;
  await asViewer(async () => {
    $("#comment-send").disabled = true;
    try {
      const data = await gql(POST_COMMENT, { s: streamId, t: text });
      input.value = "";
      if (!data.postComment.held) bumpCommentCount(state.feed.add([data.postComment]));
      state.moderation.posted(data.postComment);
    } catch (err) {
      state.moderation.refused(err);
      throw err;
    } finally {
      $("#comment-send").disabled = false;
      input.focus();
    }
  });
}

async function buyNow(product, button) {
  await asViewer(async () => {
    const answer = await confirmQuantity(product);
    if (!answer) return;
    button.disabled = true;
    try {
      // After the end the page is a shop: an ordinary order, not one of the broadcast's.
      const from = state.stream?.status === "ENDED" ? null : streamId;
      const data = await gql(BUY_NOW, { p: product.id, q: answer.quantity, s: from, k: newIdempotencyKey(), n: answer.showName });
      const order = data.buyNow;
      notify(`Ordered ${product.name}: ${formatMoney(order.total)}. Thank you!`, "success");
      for (const item of order.items) updateProductStock(item.product);
    } catch (err) {
      if (err.code === "OUT_OF_STOCK") refreshStream();
      throw err;
    } finally {
      button.disabled = false;
    }
  }, { kind: "buyNow", productId: product.id });
}

/** A guest who clicked Like, Add to Cart or Buy Now and logged in: Like and Add to Cart are done,
 * Buy Now is offered again (it asks how many and confirms anyway). */
function resumePending(stream) {
  const pending = takePending(streamId);
  if (!pending) return;
  const product = stream.featuredProducts.find((p) => p.id === pending.productId);
  const button = document.querySelector(`.product[data-product-id="${CSS.escape(pending.productId || "")}"] .buy-now`) || document.createElement("button");
  if (pending.kind === "react" && state.myReaction !== pending.reaction) react(pending.reaction);
  else if (pending.kind === "addToCart" && product) addToCart(product, document.createElement("button"));
  else if (pending.kind === "buyNow" && product) buyNow(product, button);
}

async function addToCart(product, button) {
  await asViewer(async () => {
    button.disabled = true;
    try {
      const data = await gql(ADD_TO_CART, { p: product.id, s: state.stream?.status === "ENDED" ? null : streamId });
      renderCart(data.addToCart);
      notify(`${product.name} is in your cart.`, "success");
    } finally {
      button.disabled = false;
    }
  }, { kind: "addToCart", productId: product.id });
}

async function checkout() {
  await asViewer(async () => {
    const data = await gql(CHECKOUT);
    notify(`Order placed: ${formatMoney(data.checkout.total)}. Thank you!`, "success");
    renderCart({ items: [], total: "0.00" });
    refreshStream();
  });
}

// ---------------------------------------------------------------- presence

function heartbeatDelay(expiresAt) {
  // A third of the session's life, so one lost heartbeat does not end it.
  const left = new Date(expiresAt).getTime() - Date.now();
  return Math.min(20000, Math.max(3000, Number.isFinite(left) ? left / 3 : 15000));
}

async function join() {
  if (state.stream?.status === "ENDED" || state.session || state.joining) return;
  state.joining = true;
  try {
    const data = await gql(JOIN, { s: streamId, b: loggedIn() ? null : BROWSER_ID });
    state.session = data.joinStream;
    renderCounts({ viewerCount: data.joinStream.viewerCount });
    scheduleHeartbeat();
  } catch (err) {
    // Not live (yet, or any more: applyStream joins when it goes live) or the server is away.
    if (err.code !== "CONFLICT" && err.code !== "NOT_FOUND") retryPresence();
  } finally {
    state.joining = false;
  }
}

function retryPresence() {
  clearTimeout(state.heartbeatTimer);
  state.heartbeatTimer = setTimeout(join, 10000);
}

function scheduleHeartbeat() {
  clearTimeout(state.heartbeatTimer);
  state.heartbeatTimer = setTimeout(heartbeat, heartbeatDelay(state.session.expiresAt));
}

async function heartbeat() {
  if (!state.session) return;
  try {
    const data = await gql(HEARTBEAT, { id: state.session.id });
    state.session = data.viewerHeartbeat;
    scheduleHeartbeat();
  } catch (err) {
    if (err.code === "NETWORK") scheduleHeartbeatRetry();
    else {
      // The session lapsed (the tab slept, the server forgot it): start a new one.
      state.session = null;
      join();
    }
  }
}

function scheduleHeartbeatRetry() {
  clearTimeout(state.heartbeatTimer);
  state.heartbeatTimer = setTimeout(heartbeat, 3000);
}

function leave() {
  clearTimeout(state.heartbeatTimer);
  if (!state.session) return;
  // keepalive lets the request outlive the page, and unlike sendBeacon it carries the token.
  gql(LEAVE, { id: state.session.id }, { keepalive: true }).catch(() => {});
  state.session = null;
}

// ---------------------------------------------------------------- live updates

function applyStream(stream) {
  state.stream = { ...state.stream, ...stream };
  renderStatus(stream.status, stream.durationSeconds);
  if (stream.featuredProducts) renderProducts(stream.featuredProducts);
  else if (previousStatus !== stream.status) renderProducts(state.products || []);
  // The player follows the status, the URL and whether media arrive (it ignores what did not change).
  const { playbackUrl, status, broadcasting } = state.stream;
  state.video?.update(playbackUrl, status, { broadcasting });
  if (stream.status === "LIVE") join();
  if (stream.status === "ENDED") leave();
}

async function refreshStream() {
  try {
    const data = await gql(STREAM, { id: streamId });
    if (!data.stream) return;
    const stream = data.stream;
    applyStream(stream);
    renderCounts(stream);
    state.myReaction = stream.myReaction;
    renderMyReaction();
    state.feed.catchUp(stream.comments);
    state.moderation?.refresh();
  } catch (err) {
    notify(`Could not refresh the stream: ${err.message}`, "error");
  }
}

function subscribe() {
  const socket = new LiveSocket({
    onReconnect: refreshStream,
    onStatus: showConnection,
    onLoggedOut: () => showViewer(null),  // logged out elsewhere: this page goes on as a guest
  });
  const vars = { s: streamId };
  socket.subscribe(SUB_COMMENTS, vars, {
    next: (d) => {
      state.moderation?.added(d.commentAdded);
      const added = state.feed.add([d.commentAdded]);
      if (added) announce(d.commentAdded);
      bumpCommentCount(added);
    },
  });
  socket.subscribe(SUB_VIEWERS, vars, { next: (d) => renderCounts({ viewerCount: d.viewerCount.count }) });
  socket.subscribe(SUB_REACTIONS, vars, { next: (d) => renderCounts(d.reactionsChanged) });
  // When the server ends the subscription (the stream ended), the last word comes from a fresh read.
  socket.subscribe(SUB_STREAM, vars, { next: (d) => applyStream(d.streamUpdated), complete: refreshStream });
  state.socket = socket;
  return socket;
}

function announce(comment) {
  state.announce?.(`${comment.author.username}: ${comment.text}`);
}

function bumpCommentCount(added) {
  if (added && state.commentCount !== null) renderCounts({ commentCount: state.commentCount + added });
}

// ---------------------------------------------------------------- start

/** The header and the chat box for a logged-in viewer, or a guest's invitation to log in. */
function showViewer(user) {
  state.user = user;
  renderAccount(user);
  showChatBox();
}

async function start() {
  trackHeaderHeight();
  const user = await currentUser();
  showViewer(user);

  let data;
  try {
    data = await gql(STREAM, { id: streamId });
  } catch (err) {
    fill($("#stream-title"), `Could not load this stream: ${err.message}`);
    return;
  }
  const stream = data.stream;
  if (!stream) {
    // Removed since the server sent this page (it answers 404 for a stream it does not have).
    location.replace("/live/not-found");
    return;
  }
  state.stream = stream;
  state.myReaction = stream.myReaction;
  state.announce = politeAnnouncer($("#chat-announcer"));
  renderHeader(stream);
  renderCounts(stream);
  renderMyReaction();
  renderProducts(stream.featuredProducts);
  state.feed = new CommentFeed($("#comments"), commentElement, MAX_COMMENTS_SHOWN);
  state.feed.add(stream.comments);
  state.video = attachVideo($("#video"), $("#video-placeholder"), $("#video-message"));
  state.video.update(stream.playbackUrl, stream.status, { broadcasting: stream.broadcasting });

  $("#like-button").addEventListener("click", () => react("LIKE"));
  $("#dislike-button").addEventListener("click", () => react("DISLIKE"));
  $("#comment-form").addEventListener("submit", postComment);
  $("#checkout-button").addEventListener("click", checkout);
  if (user) gql(CART).then((d) => renderCart(d.cart)).catch(() => {});

  subscribe();
  state.moderation = viewerModeration({ streamId, socket: state.socket, feed: state.feed, renderCounts });
  join();
  // After joining: the presence request goes first, commerce's own reads after it.
  startLiveCommerce({ streamId, socket: state.socket, buy: buyNow, asViewer });
  if (user) resumePending(stream);
  window.addEventListener("pagehide", leave);
  // A page restored from the back/forward cache left on pagehide: it is watching again.
  window.addEventListener("pageshow", (event) => event.persisted && join());
  // A hidden tab's timers may be slowed past the session's life: renew (or rejoin) on return.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    if (state.session) heartbeat();
    else if (state.stream?.status === "LIVE") join();
  });
  // Scripts and tests can reach the page's live parts here.
  window.livecart = { streamId, socket: state.socket, state };
}

start();
