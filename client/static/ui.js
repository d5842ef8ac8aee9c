// What every page shares: building elements (user text only ever as text),
// formatting, the header, and messages.

import { clearToken, getToken, gql, loginUrl } from "/static/graphql.js";

/**
 * Makes an element. Strings among the children become text nodes, so text
 * written by users is never parsed as HTML.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** "45:23" or "1:02:03". */
export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

/** Money arrives as a decimal string ("19.99"); it is shown, never computed with. */
export function formatMoney(amount) {
  const [whole, cents = "00"] = String(amount ?? "0").split(".");
  return `$${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents.padEnd(2, "0").slice(0, 2)}`;
}

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

/**
 * A clock that counts up from a duration the server gave, so it runs without
 * asking again; `render` gets the seconds each tick.
 */
export function runningClock(seconds, render, { running = true } = {}) {
  const origin = Date.now() - seconds * 1000;
  let timer = null;
  const tick = () => render((Date.now() - origin) / 1000);
  tick();
  if (running) timer = setInterval(tick, 1000);
  return { stop: () => clearInterval(timer) };
}

/**
 * A chat feed in a list element: comments oldest first, each shown once, at most `max`.
 * Comment ids grow with time, which is what lets a catch-up tell deleted from older.
 */
export class CommentFeed {
  /**
   * `newestFirst`: the newest on top (the dashboard, like its orders), else at the bottom as in
   * a chat (the viewer page); either way the newest is what shows first.
   */
  constructor(list, render, max, { newestFirst = false } = {}) {
    this.list = list;
    this.render = render;
    this.max = max;
    this.newestFirst = newestFirst;
    this.shown = new Map(); // id -> element
  }

  /** Adds the comments not shown yet, keeping the newest in view if the reader was there; returns how many. */
  add(comments) {
    const list = this.list;
    const atNewest = this.newestFirst
      ? list.scrollTop < 40
      : list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    let added = 0;
    for (const comment of comments) {
      if (this.shown.has(comment.id)) continue;
      const el = this.render(comment);
      this.shown.set(comment.id, el);
      this.place(el, comment.id);
      added += 1;
    }
    while (this.shown.size > this.max) this.remove(this.oldestId());
    if (atNewest) list.scrollTop = this.newestFirst ? 0 : list.scrollHeight;
    return added;
  }

  /** In id order (ids grow with time), so a catch-up's older comments land where they belong. */
  place(el, id) {
    const key = BigInt(id);
    const children = [...this.list.children];
    const later = this.newestFirst
      ? children.find((c) => BigInt(c.dataset.commentId) < key)
      : children.find((c) => BigInt(c.dataset.commentId) > key);
    this.list.insertBefore(el, later || null);
  }

  oldestId() {
    let oldest = null;
    for (const id of this.shown.keys()) if (oldest === null || BigInt(id) < BigInt(oldest)) oldest = id;
    return oldest;
  }

  /**
   * After a reconnect: `latest` (the newest page, oldest first) is the truth for the span it
   * covers, so a shown comment in that span that it lacks was deleted; older ones stay.
   */
  catchUp(latest) {
    const oldest = latest.length ? BigInt(latest[0].id) : null;
    const present = new Set(latest.map((c) => c.id));
    for (const id of [...this.shown.keys()]) {
      if ((oldest === null || BigInt(id) >= oldest) && !present.has(id)) this.remove(id);
    }
    return this.add(latest);
  }

  remove(id) {
    this.shown.get(id)?.remove();
    this.shown.delete(id);
  }
}

/**
 * The header's connection badge: "● connected", or connecting/reconnecting. It speaks of the
 * page's link to the server only; whether the stream is live is the stream's badge.
 */
export function showConnection(status) {
  const el = $("#connection");
  if (!el) return;
  el.dataset.status = status;
  el.textContent = status === "connected" ? "● connected" : `${status}…`;
}

/** Keeps --header-h at the header's height, so a phone's stage fills exactly the rest of the screen. */
export function trackHeaderHeight() {
  const header = $("header.site");
  if (!header) return;
  const measure = () => document.documentElement.style.setProperty("--header-h", `${header.offsetHeight}px`);
  measure();
  new ResizeObserver(measure).observe(header);
}

/**
 * A polite live region that speaks at most once per `gapMs`: a busy chat is summed up
 * ("5 new comments") instead of read out line by line.
 */
export function politeAnnouncer(region, gapMs = 4000) {
  let pending = [];
  let timer = null;
  const flush = () => {
    timer = null;
    if (!pending.length) return;
    region.textContent = pending.length === 1 ? pending[0] : `${pending.length} new comments`;
    pending = [];
    timer = setTimeout(flush, gapMs);
  };
  return (text) => {
    pending.push(text);
    if (!timer) flush();
  };
}

/** Shows a short message in the page's toast area. */
export function notify(text, kind = "info") {
  let area = $("#toasts");
  if (!area) {
    area = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.appendChild(area);
  }
  const toast = h("div", { class: `toast toast-${kind}` }, text);
  area.appendChild(toast);
  setTimeout(() => toast.remove(), 5000);
}

/** The logged-in user ({id, username, vendor}) or null. */
export async function currentUser() {
  if (!getToken()) return null;
  let data;
  try {
    data = await gql("{ me { id username vendor { id name } } }");
  } catch (err) {
    return null;
  }
  // The server knows no one by this token (expired or revoked): forget it, or the
  // subscriptions' socket would keep offering it and be refused (4403) on every retry.
  if (!data.me) clearToken();
  return data.me;
}

/** Fills the header's account area: the username and Log out, or Log in. */
export function renderAccount(user) {
  const area = $("#account");
  if (!area) return;
  if (!user) {
    fill(area, h("a", { href: loginUrl(), id: "login-link" }, "Log in"));
    return;
  }
  const logout = h("button", { type: "button", class: "link", id: "logout" }, "Log out");
  logout.addEventListener("click", async () => {
    try {
      await gql("mutation { logout }");
    } catch (err) {
      // Already revoked or expired: forgetting it here is all that is left to do.
    }
    clearToken();
    location.reload();
  });
  fill(area, h("span", { class: "username", id: "username" }, user.username), " ", logout);
}
