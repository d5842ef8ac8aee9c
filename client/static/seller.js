// "/seller": becoming a seller, products, creating streams, and choosing the
// stream to run (dashboard.js runs it).

import { getToken, goToLogin, gql } from "/static/graphql.js";
import { productImageControls } from "/static/commerce.js";
import { openDashboard } from "/static/dashboard.js";
import { openModeratorDashboard } from "/static/moderation.js";
import { $, fill, formatMoney, h, notify, renderAccount, trackHeaderHeight } from "/static/ui.js";

const ME = `{ me { id username vendor { id name products { id name price stock imageUrl } } } }`;
const BECOME_VENDOR = `mutation($n: String!) { becomeVendor(name: $n) { id name } }`;
const CREATE_PRODUCT = `mutation($n: String!, $p: Decimal!, $s: Int!, $d: String) {
  createProduct(name: $n, price: $p, stock: $s, description: $d) { id }
}`;
const MY_STREAMS = `query($v: ID!) { streams(vendorId: $v) { id title status durationSeconds } }`;
const CREATE_STREAM = `mutation($t: String!, $d: String, $p: [ID!]!) {
  createStream(title: $t, description: $d, productIds: $p) { id }
}`;

const seller = { user: null, vendor: null, products: [] };

async function loadMe() {
  const data = await gql(ME);
  if (!data.me) {
    goToLogin();
    return false;
  }
  seller.user = data.me;
  seller.vendor = data.me.vendor;
  seller.products = data.me.vendor?.products || [];
  renderAccount(data.me);
  return true;
}

function renderVendor() {
  const isVendor = Boolean(seller.vendor);
  $("#become-vendor").hidden = isVendor;
  $("#vendor-area").hidden = !isVendor;
  fill($("#seller-status"), isVendor ? `Selling as ${seller.vendor.name}.` : "You are not selling yet.");
  if (!isVendor) return;
  fill(
    $("#my-products"),
    seller.products.length
      ? seller.products.map((p) =>
          h("li", { dataset: { productId: p.id } }, h("strong", {}, p.name), ` · ${formatMoney(p.price)} · ${p.stock} in stock`,
            " ", productImageControls(p, () => loadMe().then(renderVendor))))
      : h("li", { class: "muted" }, "No products yet: add one to offer it on a stream."),
  );
  fill(
    $("#stream-products"),
    seller.products.map((p) =>
      // None ticked: the seller chooses what this stream offers.
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "product", value: p.id }), ` ${p.name}`)),
  );
  $("#add-product").open = seller.products.length === 0;
}

async function renderStreams() {
  const data = await gql(MY_STREAMS, { v: seller.vendor.id });
  const streams = data.streams;
  fill(
    $("#my-streams"),
    streams.length
      ? streams.slice(0, 20).map((s) =>
          h("li", { dataset: { streamId: s.id } },
            h("span", { class: `badge ${s.status.toLowerCase()}` }, s.status), " ",
            h("a", { href: `/seller?stream=${encodeURIComponent(s.id)}`, class: "manage-link" }, s.title)))
      : h("li", { class: "muted" }, "No streams yet."),
  );
}

async function withButton(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (err) {
    notify(err.message, "error");
  } finally {
    button.disabled = false;
  }
}

function wireForms() {
  $("#vendor-form").addEventListener("submit", (event) => {
    event.preventDefault();
    withButton($("#vendor-submit"), async () => {
      await gql(BECOME_VENDOR, { n: $("#vendor-name").value.trim() });
      await loadMe();
      renderVendor();
      await renderStreams();
    });
  });

  $("#product-form").addEventListener("submit", (event) => {
    event.preventDefault();
    withButton($("#product-submit"), async () => {
      await gql(CREATE_PRODUCT, {
        n: $("#product-name").value.trim(),
        p: $("#product-price").value.trim(),
        s: parseInt($("#product-stock").value, 10),
        d: $("#product-description").value.trim() || null,
      });
      event.target.reset();
      notify("Product added.", "success");
      await loadMe();
      renderVendor();
    });
  });

  $("#stream-form").addEventListener("submit", (event) => {
    event.preventDefault();
    withButton($("#create-stream"), async () => {
      const productIds = [...document.querySelectorAll("#stream-products input:checked")].map((i) => i.value);
      const data = await gql(CREATE_STREAM, {
        t: $("#stream-title-input").value.trim(),
        d: $("#stream-description-input").value.trim() || null,
        p: productIds,
      });
      const id = data.createStream.id;
      history.pushState({}, "", `/seller?stream=${encodeURIComponent(id)}`);
      await showStream(id);
    });
  });
}

async function showStream(id) {
  $("#setup").hidden = true;
  await openDashboard(id, seller);
}

async function start() {
  trackHeaderHeight();
  if (!getToken()) {
    goToLogin();
    return;
  }
  try {
    if (!(await loadMe())) return;
  } catch (err) {
    fill($("#seller-status"), `Could not load your account: ${err.message}`);
    return;
  }
  const id = new URLSearchParams(location.search).get("stream");
  if (id && (await openModeratorDashboard(id))) return;  // a moderator: the chat tools only
  renderVendor();
  wireForms();
  if (!seller.vendor) return;
  await renderStreams();
  if (id) await showStream(id);
}

window.addEventListener("popstate", () => location.reload());
start();
