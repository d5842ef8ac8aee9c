// "/live/<id>": the viewer page. Video, viewers, duration, reactions, chat and
// featured products; joins and heartbeats by itself, leaves on page close, and
// gets every change pushed over one subscription socket.

import { GraphQLError, LiveSocket, getToken, goToLogin, gql, loginUrl } from "/static/graphql.js";
import { attachVideo } from "/static/video.js";
import { confirmQuantity, newIdempotencyKey, rememberPending, startLiveCommerce, takePending } from "/static/commerce.js";
import {
  $, CommentFeed, currentUser, fill, showConnection, formatDuration, formatMoney, formatTime, h, notify, renderAccount, runningClock,
} from "/static/ui.js";

const streamId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");

const PRODUCT_FIELDS = "id name description price stock imageUrl";
const COMMENT_FIELDS = "id text createdAt author { id username }";

const STREAM = `query($id: ID!) {
  stream(id: $id) {
    id title description status durationSeconds playbackUrl
    viewerCount likes dislikes commentCount myReaction
    vendor { id name }
    featuredProducts { ${PRODUCT_FIELDS} }
    comments(limit: 50) { ${COMMENT_FIELDS} }
  }
}`;

const JOIN = `mutation($s: ID!) { joinStream(streamId: $s) { id expiresAt viewerCount } }`;
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

const SUB_COMMENTS = `subscription($s: ID!) { commentAdded(streamId: $s) { ${COMMENT_FIELDS} } }`;
const SUB_VIEWERS = `subscription($s: ID!) { viewerCount(streamId: $s) { count } }`;
const SUB_REACTIONS = `subscription($s: ID!) { reactionsChanged(streamId: $s) { likes dislikes } }`;
const SUB_STREAM = `subscription($s: ID!) {
  streamUpdated(streamId: $s) { id status durationSeconds playbackUrl featuredProducts { ${PRODUCT_FIELDS} } }
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
};

const loggedIn = () => Boolean(getToken());

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
  $("#ended-banner").hidden = status !== "ENDED";
  state.clock?.stop();
  state.clock = runningClock(durationSeconds, (s) => fill($("#duration"), formatDuration(s)), {
    running: status === "LIVE",
  });
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
    h("span", { class: "text" }, comment.text),
    " ",
    h("time", { class: "muted small", datetime: comment.createdAt }, formatTime(comment.createdAt)),
  );
}

function productElement(product, index) {
  const soldOut = product.stock <= 0;
  const buy = h("button", { type: "button", class: "primary buy-now", disabled: soldOut }, "🛒 Buy Now");
  const add = h("button", { type: "button", class: "add-to-cart", disabled: soldOut }, "📦 Add to Cart");
  buy.addEventListener("click", () => buyNow(product, buy));
  add.addEventListener("click", () => addToCart(product, add));
  return h(
    "li",
    { class: `product${index === 0 ? " highlighted" : ""}`, dataset: { productId: product.id } },
    product.imageUrl ? h("img", { src: product.imageUrl, alt: "", loading: "lazy" }) : null,
    h("div", { class: "product-body" },
      index === 0 ? h("span", { class: "badge featured" }, "Featured now") : null,
      h("strong", { class: "name" }, product.name),
      h("div", { class: "price" }, formatMoney(product.price)),
      h("div", { class: `stock${soldOut ? " sold-out" : ""}` }, soldOut ? "Sold out" : `${product.stock} left`),
      product.description ? h("p", { class: "muted small" }, product.description) : null,
      h("div", { class: "row" }, buy, add)),
  );
}

function renderProducts(products) {
  fill($("#products"), products.length ? products.map(productElement) : h("li", { class: "muted" }, "No products on this stream yet."));
}

function updateProductStock(product) {
  const el = document.querySelector(`.product[data-product-id="${CSS.escape(product.id)}"]`);
  if (!el) return;
  const index = [...el.parentElement.children].indexOf(el);
  el.replaceWith(productElement(product, index));
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
      bumpCommentCount(state.feed.add([data.postComment]));
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
      const data = await gql(BUY_NOW, { p: product.id, q: answer.quantity, s: streamId, k: newIdempotencyKey(), n: answer.showName });
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
      const data = await gql(ADD_TO_CART, { p: product.id, s: streamId });
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
    const data = await gql(JOIN, { s: streamId });
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
  const previousStatus = state.stream?.status;
  state.stream = { ...state.stream, ...stream };
  renderStatus(stream.status, stream.durationSeconds);
  if (stream.featuredProducts) renderProducts(stream.featuredProducts);
  if (previousStatus !== stream.status || state.video?.url !== stream.playbackUrl) {
    state.video?.update(stream.playbackUrl, stream.status);
  }
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
  socket.subscribe(SUB_COMMENTS, vars, { next: (d) => bumpCommentCount(state.feed.add([d.commentAdded])) });
  socket.subscribe(SUB_VIEWERS, vars, { next: (d) => renderCounts({ viewerCount: d.viewerCount.count }) });
  socket.subscribe(SUB_REACTIONS, vars, { next: (d) => renderCounts(d.reactionsChanged) });
  // When the server ends the subscription (the stream ended), the last word comes from a fresh read.
  socket.subscribe(SUB_STREAM, vars, { next: (d) => applyStream(d.streamUpdated), complete: refreshStream });
  state.socket = socket;
  return socket;
}

function bumpCommentCount(added) {
  if (added && state.commentCount !== null) renderCounts({ commentCount: state.commentCount + added });
}

// ---------------------------------------------------------------- start

/** The header and the chat box for a logged-in viewer, or a guest's invitation to log in. */
function showViewer(user) {
  renderAccount(user);
  $("#comment-form").hidden = !user;
  const chatLogin = $("#chat-login");
  chatLogin.hidden = Boolean(user);
  chatLogin.href = loginUrl();
}

async function start() {
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
    fill($("#stream-title"), "No such stream.");
    return;
  }
  state.stream = stream;
  state.myReaction = stream.myReaction;
  renderHeader(stream);
  renderCounts(stream);
  renderMyReaction();
  renderProducts(stream.featuredProducts);
  state.feed = new CommentFeed($("#comments"), commentElement, MAX_COMMENTS_SHOWN);
  state.feed.add(stream.comments);
  state.video = attachVideo($("#video"), $("#video-placeholder"), $("#video-message"));
  state.video.update(stream.playbackUrl, stream.status);

  $("#like-button").addEventListener("click", () => react("LIKE"));
  $("#dislike-button").addEventListener("click", () => react("DISLIKE"));
  $("#comment-form").addEventListener("submit", postComment);
  $("#checkout-button").addEventListener("click", checkout);
  if (user) gql(CART).then((d) => renderCart(d.cart)).catch(() => {});

  subscribe();
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
