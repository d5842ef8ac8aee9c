// Live commerce on the viewer page (issue 18): stock pushed as it changes, flash deals with their
// countdown and units left, the live auction with the server's clock, the "someone just bought"
// line, Buy Now's quantity and confirmation, and a guest's action kept across logging in.

import { GraphQLError, gql } from "/static/graphql.js";
import { $, fill, formatDuration, formatMoney, h, notify } from "/static/ui.js";

const AUCTION_FIELDS = `id closed price minimumBid bidCount endsAt secondsLeft mode windowSeconds
  leader { username } product { id name imageUrl }`;
const LIVE_FIELDS = `serverTime
  products { stock soldOut product { id name } }
  deals { id price quantity left perBuyerLimit opensAt endsAt status product { id name price imageUrl } }
  auction { ${AUCTION_FIELDS} }
  justBought { id name } justBoughtBy`;
const LIVE_QUERY = `query($s: ID!) { liveCommerce(streamId: $s) { ${LIVE_FIELDS} } }`;
const LIVE_SUB = `subscription($s: ID!, $after: String) { liveCommerce(streamId: $s, after: $after) { eventCursor ${LIVE_FIELDS} } }`;
const PLACE_BID = `mutation($a: ID!, $x: Decimal!, $max: Decimal, $k: String) {
  placeBid(auctionId: $a, amount: $x, maxAmount: $max, idempotencyKey: $k) { id amount endsAt }
}`;

const state = {
  streamId: null,
  offsetMs: 0, // server clock minus ours: every countdown is the server's
  deals: [],
  auction: null,
  buy: null, // the page's Buy Now: (product, button) => ...
  ticker: null,
};

/** A fresh key per intent: a retried or double-sent request then acts once. */
export function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

function serverNow() {
  return Date.now() + state.offsetMs;
}

function secondsUntil(iso) {
  return Math.max(0, (new Date(iso).getTime() - serverNow()) / 1000);
}

/** The deal price of a product while its deal is open, else null. */
export function openDealFor(productId) {
  const now = serverNow();
  return state.deals.find((d) => d.product.id === productId && d.left > 0
    && new Date(d.opensAt).getTime() <= now && now < new Date(d.endsAt).getTime()) || null;
}

// ---------------------------------------------------------------- Buy Now: how many, and sure?

/** Asks how many and confirms; resolves to {quantity, showName}, or null when cancelled. */
export function confirmQuantity(product, maxQuantity = 100) {
  const deal = openDealFor(product.id);
  const price = deal ? deal.price : product.price;
  const limit = Math.max(1, Math.min(maxQuantity, deal ? deal.left : product.stock ?? 100, deal ? deal.perBuyerLimit : 100));
  const input = h("input", { type: "number", id: "buy-quantity", min: 1, max: limit, value: 1, required: true });
  const total = h("strong", { id: "buy-total" }, formatMoney(price));
  const confirm = h("button", { type: "submit", class: "primary", id: "buy-confirm" }, "Confirm order");
  const cancel = h("button", { type: "button", id: "buy-cancel" }, "Cancel");
  const form = h("form", { method: "dialog", class: "buy-form" },
    h("h2", {}, `Buy ${product.name}`),
    h("p", {}, deal ? `Deal price ${formatMoney(price)} (limit ${deal.perBuyerLimit} per buyer)` : `Price ${formatMoney(price)}`),
    h("label", {}, "Quantity ", input),
    h("p", {}, "Total ", total),
    h("label", { class: "small" }, h("input", { type: "checkbox", id: "buy-show-name" }), " Show my name in the \"just bought\" line"),
    h("div", { class: "row" }, confirm, cancel));
  const dialog = h("dialog", { id: "buy-dialog" }, form);
  document.body.appendChild(dialog);
  const update = () => {
    const n = Number(input.value);
    // Shown only: cents of a decimal string times a whole number stay exact in integers.
    const cents = Math.round(Number(price) * 100) * (Number.isInteger(n) && n > 0 ? n : 0);
    fill(total, formatMoney(`${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`));
  };
  input.addEventListener("input", update);
  return new Promise((resolve) => {
    let answer = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      answer = { quantity: Number(input.value), showName: form.querySelector("#buy-show-name").checked };
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    dialog.showModal();
    input.select();
  });
}

// ---------------------------------------------------------------- a guest's action, kept across logging in

const PENDING_KEY = "livecart.pending";

/** Before sending a guest to log in: what they clicked, to do (or offer) once they are back. */
export function rememberPending(action) {
  try {
    sessionStorage.setItem(PENDING_KEY, JSON.stringify({ ...action, at: Date.now() }));
  } catch (err) {
    // Storage refused (private mode): the action is lost, as it was before.
  }
}

/** The action a guest clicked on this stream before logging in (taken: offered once), or null. */
export function takePending(streamId) {
  let action = null;
  try {
    action = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    sessionStorage.removeItem(PENDING_KEY);
  } catch (err) {
    return null;
  }
  // Only here, and only fresh: an action from an abandoned login an hour ago is not wanted any more.
  if (!action || action.streamId !== streamId || Date.now() - action.at > 15 * 60 * 1000) return null;
  return action;
}

// ---------------------------------------------------------------- stock and the social line

function renderStock(products) {
  for (const { product, stock, soldOut } of products) {
    const el = document.querySelector(`.product[data-product-id="${CSS.escape(product.id)}"]`);
    if (!el) continue;
    const label = el.querySelector(".stock");
    if (label) {
      label.textContent = soldOut ? "Sold out" : `${stock} left`;
      label.classList.toggle("sold-out", soldOut);
    }
    for (const button of el.querySelectorAll("button.buy-now, button.add-to-cart")) button.disabled = soldOut;
  }
}

let socialTimer = null;

function renderSocial(product, buyer) {
  if (!product) return;
  const line = $("#social-line");
  fill(line, `🛍️ ${buyer || "Someone"} just bought ${product.name}`);
  line.hidden = false;
  clearTimeout(socialTimer);
  socialTimer = setTimeout(() => { line.hidden = true; }, 6000);
}

// ---------------------------------------------------------------- deals

function dealElement(deal) {
  const buy = h("button", { type: "button", class: "primary deal-buy" }, "⚡ Buy at deal price");
  buy.addEventListener("click", () => state.buy?.({ ...deal.product, stock: deal.left }, buy));
  return h("li", { class: "deal", dataset: { dealId: deal.id, productId: deal.product.id } },
    h("strong", {}, `⚡ ${deal.product.name}`), " ",
    h("span", { class: "deal-price" }, formatMoney(deal.price)), " ",
    h("s", { class: "muted" }, formatMoney(deal.product.price)),
    h("div", { class: "deal-line" },
      h("span", { class: "deal-countdown" }, ""), " · ",
      h("span", { class: "deal-left" }, `${deal.left} left`), " · ",
      h("span", { class: "muted small" }, `limit ${deal.perBuyerLimit} per buyer`)),
    buy);
}

function renderDeals(deals) {
  state.deals = deals;
  const list = $("#deals");
  fill(list, deals.map(dealElement));
  list.hidden = deals.length === 0;
  tick();
}

// ---------------------------------------------------------------- the auction

function renderAuction(auction) {
  state.auction = auction;
  const box = $("#auction");
  if (!auction) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const amount = h("input", { type: "number", step: "0.01", min: auction.minimumBid, value: auction.minimumBid, id: "bid-amount", "aria-label": "Your bid" });
  const ceiling = h("input", { type: "number", step: "0.01", id: "bid-max", placeholder: "max (optional)", "aria-label": "Your maximum" });
  const bid = h("button", { type: "button", class: "primary", id: "bid-button", disabled: auction.closed }, "🔨 Bid");
  bid.addEventListener("click", () => placeBid(auction, amount.value, ceiling.value, bid));
  fill(box,
    h("h3", {}, `🔨 Auction: ${auction.product.name}`),
    h("div", { class: "auction-figures" },
      h("span", { class: "auction-price" }, auction.price ? formatMoney(auction.price) : `starts at ${formatMoney(auction.minimumBid)}`), " · ",
      h("span", { class: "auction-bids" }, `${auction.bidCount} bid${auction.bidCount === 1 ? "" : "s"}`), " · ",
      h("span", { class: "auction-leader" }, auction.leader ? `leading: ${auction.leader.username}` : "no bids yet"), " · ",
      h("strong", { class: "auction-clock", dataset: { endsAt: auction.endsAt } }, "")),
    auction.closed
      ? h("p", { class: "auction-result" }, auction.leader ? `Sold to ${auction.leader.username} for ${formatMoney(auction.price)}` : "Ended without a bid")
      : h("div", { class: "row" }, amount, ceiling, bid,
        h("span", { class: "muted small" }, auction.mode === "COUNTER_BID" ? `a bid in the last ${auction.windowSeconds} s resets the clock` : "sudden death")));
  tick();
}

async function placeBid(auction, amount, ceiling, button) {
  const { asViewer } = state;
  await asViewer(async () => {
    button.disabled = true;
    try {
      await gql(PLACE_BID, { a: auction.id, x: amount, max: ceiling || null, k: newIdempotencyKey() });
      notify(`Bid placed: ${formatMoney(amount)}`, "success");
    } catch (err) {
      if (err instanceof GraphQLError && err.code === "BID_TOO_LOW") {
        notify(`The next bid must be at least ${formatMoney(err.extensions.minimumBid)}.`, "error");
        return;
      }
      throw err;
    } finally {
      button.disabled = false;
    }
  }, { kind: "bid" });
}

// ---------------------------------------------------------------- the clocks, by the server's time

function tick() {
  for (const el of document.querySelectorAll(".deal")) {
    const deal = state.deals.find((d) => d.id === el.dataset.dealId);
    if (!deal) continue;
    const toOpen = secondsUntil(deal.opensAt);
    const countdown = el.querySelector(".deal-countdown");
    countdown.textContent = toOpen > 0 ? `opens in ${formatDuration(Math.ceil(toOpen))}` : `ends in ${formatDuration(Math.ceil(secondsUntil(deal.endsAt)))}`;
    el.classList.toggle("upcoming", toOpen > 0);
    el.querySelector(".deal-buy").disabled = toOpen > 0 || deal.left <= 0;
  }
  const clock = document.querySelector(".auction-clock");
  if (clock && state.auction) {
    clock.textContent = state.auction.closed ? "ended" : `⏱ ${formatDuration(Math.ceil(secondsUntil(state.auction.endsAt)))}`;
  }
}

function apply(live) {
  state.offsetMs = new Date(live.serverTime).getTime() - Date.now();
  renderStock(live.products);
  renderDeals(live.deals);
  renderAuction(live.auction);
  renderSocial(live.justBought, live.justBoughtBy);
}

/** Starts the page's commerce: the panel above the products, fed by the page's socket. */
export async function startLiveCommerce({ streamId, socket, buy, asViewer }) {
  state.streamId = streamId;
  state.buy = buy;
  state.asViewer = asViewer;
  const panel = document.querySelector(".products-panel");
  if (!panel || $("#live-commerce")) return;
  panel.insertBefore(
    h("div", { id: "live-commerce" },
      h("p", { id: "social-line", class: "social-line", hidden: true, "aria-live": "polite" }),
      h("ul", { id: "deals", class: "deals", hidden: true }),
      h("div", { id: "auction", class: "auction", hidden: true })),
    panel.querySelector(".products"));
  state.ticker = setInterval(tick, 250);
  try {
    apply((await gql(LIVE_QUERY, { s: streamId })).liveCommerce);
  } catch (err) {
    // The subscription's first result brings the same.
  }
  socket.subscribe(LIVE_SUB, { s: streamId }, { next: (d) => apply(d.liveCommerce) });
}

// ---------------------------------------------------------------- product images (dashboard)

const SET_IMAGE = `mutation($p: ID!, $i: Upload, $u: String) { setProductImage(productId: $p, image: $i, imageUrl: $u) { id imageUrl } }`;

/** Sends a file as a GraphQL multipart request (the upload spec); the server checks its size and type. */
async function uploadImage(productId, file) {
  const form = new FormData();
  form.append("operations", JSON.stringify({ query: SET_IMAGE, variables: { p: productId, i: null } }));
  form.append("map", JSON.stringify({ 0: ["variables.i"] }));
  form.append("0", file, file.name);
  const token = localStorage.getItem("livecart.token");
  const response = await fetch("/graphql", {
    method: "POST", body: form, headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  const body = await response.json();
  if (body.errors?.length) throw new GraphQLError(body.errors);
  return body.data.setProductImage;
}

/** A product's thumbnail and its image controls: upload a file, or give an https URL. */
export function productImageControls(product, onChange = () => {}) {
  const thumb = product.imageUrl ? h("img", { class: "thumb", src: product.imageUrl, alt: "" }) : null;
  const file = h("input", { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp", class: "image-file", "aria-label": `Image of ${product.name}` });
  const url = h("button", { type: "button", class: "link image-url" }, "or an https URL");
  const done = (updated) => {
    notify(`${product.name}: image saved.`, "success");
    onChange({ ...product, imageUrl: updated.imageUrl });
  };
  file.addEventListener("change", async () => {
    if (!file.files[0]) return;
    try {
      done(await uploadImage(product.id, file.files[0]));
    } catch (err) {
      notify(err.message, "error");
    }
  });
  url.addEventListener("click", async () => {
    const value = prompt("Image URL (https://…)");
    if (!value) return;
    try {
      done((await gql(SET_IMAGE, { p: product.id, u: value })).setProductImage);
    } catch (err) {
      notify(err.message, "error");
    }
  });
  return h("span", { class: "image-controls" }, thumb, file, url);
}

// ---------------------------------------------------------------- the seller's deals and auctions (dashboard)

const START_DEAL = `mutation($s: ID!, $p: ID!, $price: Decimal!, $q: Int!, $l: Int!, $c: Int!, $d: Int!) {
  startFlashDeal(streamId: $s, productId: $p, price: $price, quantity: $q, perBuyerLimit: $l,
                 countdownSeconds: $c, durationSeconds: $d) { id }
}`;
const START_AUCTION = `mutation($s: ID!, $p: ID!, $price: Decimal!, $d: Int!, $m: AuctionMode!, $w: Int) {
  startAuction(streamId: $s, productId: $p, startingPrice: $price, durationSeconds: $d, mode: $m, windowSeconds: $w) { id }
}`;
const BIDDERS = `query($a: ID!, $s: ID!) {
  auction(id: $a) { bidders { user { username } highestBid bids } }
  stream(id: $s) { stats { dealRevenue } }
}`;
const DEAL_REVENUE = `query($s: ID!) { stream(id: $s) { stats { dealRevenue } } }`;

function field(label, input) {
  return h("label", {}, label, " ", input);
}

function productSelect(products, id) {
  return h("select", { id }, products.map((p) => h("option", { value: p.product.id }, p.product.name)));
}

async function sellerAction(run) {
  try {
    await run();
  } catch (err) {
    notify(err.message, "error");
  }
}

/** The dashboard's deal and auction controls, the running ones with their figures, the bidders
 * of the auction and the revenue that deals brought. */
export async function startSellerCommerce({ streamId, socket }) {
  const anchor = document.querySelector("#stats-panel");
  if (!anchor || $("#seller-commerce")) return;
  const panel = h("section", { class: "panel", id: "seller-commerce" },
    h("h2", {}, "⚡ Deals and auctions"),
    h("p", {}, "Deal revenue: ", h("strong", { id: "stat-deal-revenue" }, "$0.00")),
    h("ul", { class: "deals", id: "seller-deals" }),
    h("div", { id: "seller-auction" }),
    h("details", { id: "deal-form-box" }, h("summary", {}, "Start a flash deal"), h("form", { id: "deal-form", class: "stack" })),
    h("details", { id: "auction-form-box" }, h("summary", {}, "Start an auction"), h("form", { id: "auction-form", class: "stack" })));
  anchor.after(panel);

  let live = (await gql(LIVE_QUERY, { s: streamId })).liveCommerce;
  const dealForm = $("#deal-form");
  const values = {
    price: h("input", { id: "deal-price", required: true, inputmode: "decimal", placeholder: "9.99" }),
    quantity: h("input", { id: "deal-quantity", type: "number", min: 1, value: 20, required: true }),
    limit: h("input", { id: "deal-limit", type: "number", min: 1, value: 2, required: true }),
    countdown: h("input", { id: "deal-countdown", type: "number", min: 0, max: 300, value: 10 }),
    minutes: h("input", { id: "deal-minutes", type: "number", min: 1, max: 20, value: 5 }),
  };
  fill(dealForm, field("Product", productSelect(live.products, "deal-product")), field("Deal price", values.price),
    field("Units", values.quantity), field("Per buyer", values.limit), field("Countdown (0 or 10-300 s)", values.countdown),
    field("Minutes (1-20)", values.minutes), h("button", { type: "submit", class: "primary", id: "deal-submit" }, "⚡ Start deal"));
  dealForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sellerAction(async () => {
      await gql(START_DEAL, {
        s: streamId, p: $("#deal-product").value, price: values.price.value, q: Number(values.quantity.value),
        l: Number(values.limit.value), c: Number(values.countdown.value), d: Number(values.minutes.value) * 60,
      });
      notify("Deal started.", "success");
    });
  });
  const auctionForm = $("#auction-form");
  const mode = h("select", { id: "auction-mode" }, h("option", { value: "COUNTER_BID" }, "Counter-bid window"), h("option", { value: "SUDDEN_DEATH" }, "Sudden death"));
  const a = {
    price: h("input", { id: "auction-price", required: true, inputmode: "decimal", placeholder: "1.00" }),
    seconds: h("input", { id: "auction-seconds", type: "number", min: 10, max: 600, value: 60 }),
    window: h("input", { id: "auction-window", type: "number", min: 1, max: 60, value: 10 }),
  };
  fill(auctionForm, field("Product", productSelect(live.products, "auction-product")), field("Starting price", a.price),
    field("Seconds (10-600)", a.seconds), field("Mode", mode), field("Window (s)", a.window),
    h("button", { type: "submit", class: "primary", id: "auction-submit" }, "🔨 Start auction"));
  auctionForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sellerAction(async () => {
      await gql(START_AUCTION, {
        s: streamId, p: $("#auction-product").value, price: a.price.value, d: Number(a.seconds.value),
        m: mode.value, w: mode.value === "COUNTER_BID" ? Number(a.window.value) : null,
      });
      notify("Auction started.", "success");
    });
  });

  const show = async (update) => {
    live = update;
    state.offsetMs = new Date(update.serverTime).getTime() - Date.now();
    fill($("#seller-deals"), update.deals.map((d) =>
      h("li", { class: "deal" }, `⚡ ${d.product.name} at ${formatMoney(d.price)}: ${d.left} of ${d.quantity} left`)));
    const auction = update.auction;
    const data = auction ? await gql(BIDDERS, { a: auction.id, s: streamId }) : await gql(DEAL_REVENUE, { s: streamId });
    fill($("#stat-deal-revenue"), formatMoney(data.stream?.stats?.dealRevenue ?? "0.00"));
    fill($("#seller-auction"), auction ? [
      h("p", {}, `🔨 ${auction.product.name}: ${auction.price ? formatMoney(auction.price) : "no bid yet"}`,
        auction.closed ? " (ended)" : ` · ends in ${formatDuration(Math.ceil(secondsUntil(auction.endsAt)))}`),
      h("ol", { class: "plain", id: "auction-bidders" }, data.auction.bidders.map((b) =>
        h("li", {}, h("strong", {}, b.user.username), ` · ${formatMoney(b.highestBid)} · ${b.bids} bid${b.bids === 1 ? "" : "s"}`))),
    ] : []);
  };
  await show(live).catch(() => {});
  socket.subscribe(LIVE_SUB, { s: streamId }, { next: (d) => show(d.liveCommerce).catch(() => {}) });
}
