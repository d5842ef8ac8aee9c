// Chat moderation on the pages (issue 17).
//
// The viewer page: moderator badges, the pinned comment on top of the chat, slow mode with
// its countdown, the viewer's own comments waiting for review, comments leaving the chat as
// soon as they are deleted, and a link to the moderation tools for the owner and moderators.
//
// The dashboard: the moderation tools (delete, timeout, ban, pin, slow mode, review of links,
// held comments, blocked terms, bans and timeouts; for the owner also moderators and the audit
// trail), and `/seller?stream=ID` for a moderator, who gets the chat tools and nothing else.

import { LiveSocket, gql } from "/static/graphql.js";
import { $, CommentFeed, fill, formatTime, h, notify, showConnection } from "/static/ui.js";

const COMMENT = "id text createdAt held authorRole author { id username }";
const CHAT = `streamId slowModeSeconds holdLinksForReview pinnedComment { ${COMMENT} }`;

const VIEWER_STATE = `query($s: ID!) { stream(id: $s) { id myChatRole chat { ${CHAT} } myHeldComments { ${COMMENT} } } }`;
const SUB_DELETED = `subscription($s: ID!, $after: String) { commentDeleted(streamId: $s, after: $after) { eventCursor streamId commentIds commentCount } }`;
const SUB_CHAT = `subscription($s: ID!, $after: String) { chatUpdated(streamId: $s, after: $after) { eventCursor ${CHAT} } }`;
const SUB_ADDED = `subscription($s: ID!, $after: String) { commentAdded(streamId: $s, after: $after) { eventCursor ${COMMENT} } }`;
const SUB_HELD = `subscription($s: ID!, $after: String) { commentHeld(streamId: $s, after: $after) { eventCursor ${COMMENT} } }`;

const TOOLS_STATE = `query($s: ID!, $v: ID!) {
  stream(id: $s) { id title status myChatRole vendor { id name } chat { ${CHAT} } heldComments { ${COMMENT} } comments(limit: 50) { ${COMMENT} } }
  blockedTerms(vendorId: $v)
  chatRestrictions(vendorId: $v) { kind reason endsAt user { id username } }
}`;
const ROLE_OF = `query($s: ID!) { stream(id: $s) { id myChatRole vendor { id } } }`;
const OWNER_STATE = `query($v: ID!) {
  moderators(vendorId: $v) { id username }
  moderationLog(vendorId: $v, limit: 50) { id action detail reason createdAt commentId actor { username } targetUser { username } }
}`;

const DELETE = `mutation($id: ID!) { deleteComment(id: $id) }`;
const PIN = `mutation($id: ID!) { pinComment(id: $id) { ${CHAT} } }`;
const UNPIN = `mutation($s: ID!) { unpinComment(streamId: $s) }`;
const SLOW = `mutation($s: ID!, $n: Int!) { setSlowMode(streamId: $s, seconds: $n) { ${CHAT} } }`;
const HOLD = `mutation($s: ID!, $on: Boolean!) { setHoldLinksForReview(streamId: $s, enabled: $on) { ${CHAT} } }`;
const APPROVE = `mutation($id: ID!) { approveComment(id: $id) { id } }`;
const REJECT = `mutation($id: ID!) { rejectComment(id: $id) }`;
const TIMEOUT = `mutation($v: ID!, $u: ID!, $n: Int!, $r: String) { timeoutUser(vendorId: $v, userId: $u, durationSeconds: $n, reason: $r) { kind } }`;
const BAN = `mutation($v: ID!, $u: ID!, $r: String, $rm: Boolean) { banUser(vendorId: $v, userId: $u, reason: $r, removeComments: $rm) { kind } }`;
const LIFT = `mutation($v: ID!, $u: ID!) { liftRestriction(vendorId: $v, userId: $u) }`;
const ADD_TERMS = `mutation($v: ID!, $t: [String!]!) { addBlockedTerms(vendorId: $v, terms: $t) }`;
const REMOVE_TERMS = `mutation($v: ID!, $t: [String!]!) { removeBlockedTerms(vendorId: $v, terms: $t) }`;
const ADD_MOD = `mutation($v: ID!, $u: ID!) { addModerator(vendorId: $v, userId: $u) { id } }`;
const REMOVE_MOD = `mutation($v: ID!, $u: ID!) { removeModerator(vendorId: $v, userId: $u) }`;

const SLOW_CHOICES = [0, 3, 5, 10, 30, 60, 120];
const TIMEOUT_CHOICES = [[60, "1 min"], [600, "10 min"], [3600, "1 h"], [86400, "1 day"]];

/** The owner's or a moderator's badge beside an author's name; nothing for a viewer. */
export function roleBadge(role) {
  if (role === "OWNER") return h("span", { class: "badge role-badge role-owner", title: "The seller" }, "Seller");
  if (role === "MODERATOR") return h("span", { class: "badge role-badge role-moderator", title: "Moderator" }, "Mod");
  return null;
}

function commentLine(comment, ...extra) {
  return h("span", { class: "comment-line" },
    h("span", { class: "author" }, comment.author.username), " ", roleBadge(comment.authorRole), " ",
    h("span", { class: "text" }, comment.text), " ",
    h("time", { class: "muted small" }, formatTime(comment.createdAt)), ...extra);
}

function pinnedElement(comment, tools = null) {
  return h("div", { class: "pinned-comment", dataset: { commentId: comment.id } },
    h("span", { class: "pin-label" }, "📌 Pinned"), " ", commentLine(comment), tools ? " " : "", tools);
}

// ---------------------------------------------------------------- the viewer page

/**
 * Adds moderation to the live page. `page` gives what live.js owns: streamId, socket, feed,
 * renderCounts(counts), loggedIn(). Returns the hooks live.js calls: posted, refused, added, refresh.
 */
export function viewerModeration(page) {
  const panel = $(".chat-panel");
  const pinned = h("div", { id: "pinned", hidden: true });
  const slow = h("p", { id: "slow-mode", class: "slow-mode muted small", hidden: true });
  const held = h("ol", { id: "my-held", class: "plain held-list", hidden: true });
  const moderate = h("a", { id: "moderate-link", class: "small", hidden: true }, "🛡️ Moderate chat");
  moderate.href = `/seller?stream=${encodeURIComponent(page.streamId)}`;
  panel.querySelector("h2").append(" ", moderate);
  $("#comments").before(pinned);
  $("#comments").after(slow, held);

  const state = { role: null, slowModeSeconds: 0, until: 0, timer: null, held: new Map() };

  function renderChat(chat) {
    state.slowModeSeconds = chat.slowModeSeconds;
    if (!chat.slowModeSeconds) state.until = 0;  // slow mode off: no more waiting
    pinned.hidden = !chat.pinnedComment;
    fill(pinned, chat.pinnedComment ? pinnedElement(chat.pinnedComment) : "");
    renderSlow();
  }

  const exempt = () => state.role === "OWNER" || state.role === "MODERATOR";

  function renderSlow() {
    const left = Math.ceil((state.until - Date.now()) / 1000);
    const on = state.slowModeSeconds > 0;
    slow.hidden = !on && left <= 0;
    const parts = [];
    if (on) parts.push(`🐢 Slow mode: one comment every ${state.slowModeSeconds} s${exempt() ? " (not for you)" : ""}`);
    if (left > 0) parts.push(h("strong", { id: "slow-mode-countdown" }, `next comment in ${left} s`));
    fill(slow, ...parts.flatMap((p, i) => (i ? [" · ", p] : [p])));
    const send = $("#comment-send");
    if (send) send.disabled = left > 0;
    if (left > 0 && !state.timer) {
      state.timer = setInterval(() => {
        if (Date.now() >= state.until) {
          clearInterval(state.timer);
          state.timer = null;
        }
        renderSlow();
      }, 250);
    }
  }

  function countdown(seconds) {
    state.until = Date.now() + seconds * 1000;
    renderSlow();
  }

  function renderHeld() {
    held.hidden = state.held.size === 0;
    fill(held, [...state.held.values()].map((c) =>
      h("li", { class: "comment held", dataset: { commentId: c.id } }, commentLine(c), " ",
        h("span", { class: "muted small held-note" }, "⏳ waiting for a moderator's approval"))));
  }

  async function refresh() {
    try {
      const data = await gql(VIEWER_STATE, { s: page.streamId });
      if (!data.stream) return;
      state.role = data.stream.myChatRole;
      moderate.hidden = !exempt();
      renderChat(data.stream.chat);
      state.held = new Map(data.stream.myHeldComments.map((c) => [c.id, c]));
      renderHeld();
    } catch (err) {
      // The socket's reconnect reads it again.
    }
  }

  page.socket.subscribe(SUB_DELETED, { s: page.streamId }, {
    next: (d) => {
      const deletion = d.commentDeleted;
      for (const id of deletion.commentIds) {
        page.feed.remove(id);
        if (state.held.delete(id)) renderHeld();
        if (pinned.querySelector(".pinned-comment")?.dataset.commentId === id) renderChat({ slowModeSeconds: state.slowModeSeconds, pinnedComment: null });
      }
      page.renderCounts({ commentCount: deletion.commentCount });
    },
  });
  page.socket.subscribe(SUB_CHAT, { s: page.streamId }, { next: (d) => renderChat(d.chatUpdated) });
  refresh();

  return {
    refresh,
    /** The viewer's own comment was taken: held, or counted down to the next one in slow mode. */
    posted(comment) {
      if (comment.held) {
        state.held.set(comment.id, comment);
        renderHeld();
      }
      if (state.slowModeSeconds > 0 && !exempt()) countdown(state.slowModeSeconds);
    },
    /** A comment was refused: slow mode says how long to wait. */
    refused(err) {
      if (err.code === "RATE_LIMITED" && err.extensions?.retryAfter) {
        if (err.extensions.slowModeSeconds) state.slowModeSeconds = err.extensions.slowModeSeconds;
        countdown(err.extensions.retryAfter);
      }
    },
    /** A comment reached the chat: if it was the viewer's held one, it was approved. */
    added(comment) {
      if (state.held.delete(comment.id)) renderHeld();
    },
  };
}

// ---------------------------------------------------------------- the tools (dashboard)

function button(label, cls, action) {
  const el = h("button", { type: "button", class: `link ${cls}` }, label);
  el.addEventListener("click", async () => {
    el.disabled = true;
    try {
      await action();
    } catch (err) {
      notify(err.message, "error");
    } finally {
      el.disabled = false;
    }
  });
  return el;
}

function askReason(what) {
  const reason = window.prompt(`Reason for the ${what} (optional, at most 500 characters):`, "");
  return reason === null ? undefined : reason.trim() || null;
}

/**
 * The moderation tools for one stream, in `container`. `ctx`: streamId, vendorId, role
 * ("OWNER" or "MODERATOR"), socket (a LiveSocket already open), feed (the CommentFeed of the
 * stream's comments the tools act on, or null to make one here).
 */
class Tools {
  constructor(container, ctx) {
    this.ctx = ctx;
    this.pinnedId = null;
    this.held = new Map();
    this.root = h("section", { class: "panel moderation-panel", id: "moderation-panel" },
      h("h3", {}, "🛡️ Moderation"),
      h("div", { class: "row" },
        h("label", {}, "Slow mode ", this.slowSelect = h("select", { id: "slow-mode-select" },
          ...SLOW_CHOICES.map((n) => h("option", { value: String(n) }, n ? `${n} s` : "off")))),
        h("label", { class: "check" }, this.holdBox = h("input", { type: "checkbox", id: "hold-links" }), " Hold comments with links for review")),
      h("h4", {}, "📌 Pinned"), this.pinnedBox = h("div", { id: "tools-pinned", class: "muted small" }, "Nothing pinned."),
      h("h4", {}, "⏳ Held for review"), this.heldList = h("ol", { class: "plain held-list", id: "held-comments" }),
      h("h4", {}, "🚫 Timeouts and bans"), this.restrictionList = h("ul", { class: "plain", id: "restrictions" }),
      h("h4", {}, "🔇 Blocked terms"),
      h("form", { class: "row", id: "terms-form" },
        this.termInput = h("input", { id: "term-input", maxlength: "100", placeholder: "word or phrase" }),
        h("button", { type: "submit" }, "Block")),
      this.termList = h("ul", { class: "plain terms", id: "blocked-terms" }),
    );
    if (ctx.role === "OWNER") {
      this.root.append(
        h("h4", {}, "👮 Moderators"), this.modList = h("ul", { class: "plain", id: "moderator-list" }),
        h("p", { class: "muted small" }, "Appoint one with “Make moderator” beside their comment."),
        h("h4", {}, "📜 Audit trail"), this.logList = h("ol", { class: "plain audit", id: "moderation-log" }),
      );
    }
    container.append(this.root);
    this.slowSelect.addEventListener("change", () => this.run(async () => {
      this.renderChat((await gql(SLOW, { s: ctx.streamId, n: Number(this.slowSelect.value) })).setSlowMode);
    }));
    this.holdBox.addEventListener("change", () => this.run(async () => {
      this.renderChat((await gql(HOLD, { s: ctx.streamId, on: this.holdBox.checked })).setHoldLinksForReview);
    }));
    this.root.querySelector("#terms-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const term = this.termInput.value.trim();
      if (!term) return;
      this.run(async () => {
        this.renderTerms((await gql(ADD_TERMS, { v: ctx.vendorId, t: [term] })).addBlockedTerms);
        this.termInput.value = "";
      });
    });
  }

  async run(action) {
    try {
      await action();
      if (this.ctx.role === "OWNER") this.loadOwner();
    } catch (err) {
      notify(err.message, "error");
    }
  }

  /** Buttons beside a comment: delete, pin, timeout, ban (and for the owner, make moderator). */
  commentTools(comment, { withDelete = false } = {}) {
    const c = this.ctx;
    const staff = comment.authorRole === "OWNER" || comment.authorRole === "MODERATOR";
    const tools = h("span", { class: "moderation-tools" });
    if (withDelete) {
      tools.append(button("Delete", "danger delete-comment", async () => {
        await gql(DELETE, { id: comment.id });
        this.feed.remove(comment.id);
      }), " ");
    }
    tools.append(button("Pin", "pin-comment", async () => this.renderChat((await gql(PIN, { id: comment.id })).pinComment)));
    if (staff) return tools;
    const select = h("select", { class: "timeout-length", "aria-label": "Timeout length" },
      ...TIMEOUT_CHOICES.map(([n, label]) => h("option", { value: String(n) }, label)));
    tools.append(" ", select, button("Timeout", "timeout-user", async () => {
      const reason = askReason("timeout");
      if (reason === undefined) return;
      await gql(TIMEOUT, { v: c.vendorId, u: comment.author.id, n: Number(select.value), r: reason });
      notify(`${comment.author.username} is timed out.`, "success");
      await this.loadRestrictions();
    }), " ", button("Ban", "danger ban-user", async () => {
      const reason = askReason("ban");
      if (reason === undefined) return;
      const removeComments = window.confirm(`Also remove ${comment.author.username}'s comments from the live stream?`);
      await gql(BAN, { v: c.vendorId, u: comment.author.id, r: reason, rm: removeComments });
      notify(`${comment.author.username} is banned.`, "success");
      await this.loadRestrictions();
    }));
    if (c.role === "OWNER") {
      tools.append(" ", button("Make moderator", "make-moderator", async () => {
        await gql(ADD_MOD, { v: c.vendorId, u: comment.author.id });
        notify(`${comment.author.username} is a moderator now.`, "success");
      }));
    }
    return tools;
  }

  renderChat(chat) {
    this.slowSelect.value = String(chat.slowModeSeconds);
    this.holdBox.checked = chat.holdLinksForReview;
    this.pinnedId = chat.pinnedComment?.id || null;
    fill(this.pinnedBox, chat.pinnedComment
      ? pinnedElement(chat.pinnedComment, button("Unpin", "unpin-comment", async () => {
          await gql(UNPIN, { s: this.ctx.streamId });
          this.renderChat({ ...chat, pinnedComment: null });
        }))
      : "Nothing pinned.");
  }

  renderHeld() {
    fill(this.heldList, this.held.size ? [...this.held.values()].map((c) =>
      h("li", { class: "comment held", dataset: { commentId: c.id } }, commentLine(c), " ",
        button("Approve", "approve-comment", async () => {
          await gql(APPROVE, { id: c.id });
          this.held.delete(c.id);
          this.renderHeld();
        }), " ",
        button("Reject", "danger reject-comment", async () => {
          await gql(REJECT, { id: c.id });
          this.held.delete(c.id);
          this.renderHeld();
        }))) : h("li", { class: "muted small" }, "Nothing waiting."));
  }

  renderRestrictions(list) {
    fill(this.restrictionList, list.length ? list.map((r) =>
      h("li", { dataset: { userId: r.user.id } },
        h("strong", {}, r.user.username), ` · ${r.kind === "BAN" ? "banned" : `timed out until ${formatTime(r.endsAt)}`}`,
        r.reason ? h("span", { class: "muted small" }, ` (${r.reason})`) : "", " ",
        button("Lift", "lift-restriction", async () => {
          await gql(LIFT, { v: this.ctx.vendorId, u: r.user.id });
          await this.loadRestrictions();
        }))) : h("li", { class: "muted small" }, "No one."));
  }

  renderTerms(terms) {
    fill(this.termList, terms.map((t) =>
      h("li", {}, h("code", {}, t), " ", button("Remove", "remove-term", async () => {
        this.renderTerms((await gql(REMOVE_TERMS, { v: this.ctx.vendorId, t: [t] })).removeBlockedTerms);
      }))));
  }

  async loadRestrictions() {
    const data = await gql(`query($v: ID!) { chatRestrictions(vendorId: $v) { kind reason endsAt user { id username } } }`, { v: this.ctx.vendorId });
    this.renderRestrictions(data.chatRestrictions);
  }

  async load() {
    const data = await gql(TOOLS_STATE, { s: this.ctx.streamId, v: this.ctx.vendorId });
    this.renderChat(data.stream.chat);
    this.held = new Map((data.stream.heldComments || []).map((c) => [c.id, c]));
    this.renderHeld();
    this.renderRestrictions(data.chatRestrictions);
    this.renderTerms(data.blockedTerms);
    if (this.ctx.role === "OWNER") await this.loadOwner();
    return data.stream;
  }

  async loadOwner() {
    try {
      const data = await gql(OWNER_STATE, { v: this.ctx.vendorId });
      fill(this.modList, data.moderators.length ? data.moderators.map((u) =>
        h("li", { dataset: { userId: u.id } }, u.username, " ", button("Remove", "remove-moderator", async () => {
          await gql(REMOVE_MOD, { v: this.ctx.vendorId, u: u.id });
          await this.loadOwner();
        }))) : h("li", { class: "muted small" }, "None yet."));
      fill(this.logList, data.moderationLog.map((e) =>
        h("li", { dataset: { actionId: e.id } },
          h("time", { class: "muted small" }, formatTime(e.createdAt)), " ",
          h("strong", {}, e.actor?.username || "someone"), ` ${e.action.toLowerCase().replaceAll("_", " ")}`,
          e.targetUser ? ` · ${e.targetUser.username}` : "", e.detail ? ` · ${e.detail}` : "",
          e.reason ? h("span", { class: "muted small" }, ` (${e.reason})`) : "")));
    } catch (err) {
      notify(err.message, "error");
    }
  }

  /** Follows what moderators act on, over `socket`. */
  follow(socket) {
    const vars = { s: this.ctx.streamId };
    socket.subscribe(SUB_DELETED, vars, {
      next: (d) => {
        for (const id of d.commentDeleted.commentIds) {
          this.feed?.remove(id);
          if (this.held.delete(id)) this.renderHeld();
        }
      },
    });
    socket.subscribe(SUB_CHAT, vars, { next: (d) => this.renderChat(d.chatUpdated) });
    socket.subscribe(SUB_HELD, vars, {
      next: (d) => {
        this.held.set(d.commentHeld.id, d.commentHeld);
        this.renderHeld();
      },
    });
  }
}

/**
 * The owner's dashboard: the tools below the figures, acting on the dashboard's own comment
 * list (`feed`). dashboard.js puts `tools.commentTools(comment)` on its comment lines and
 * calls `tools.follow(socket)` once its socket is open.
 */
export function ownerModeration({ streamId, vendorId, feed }) {
  const tools = new Tools($("#manage"), { streamId, vendorId, role: "OWNER" });
  tools.feed = feed;
  tools.load().catch(() => {});  // not this seller's stream: the dashboard says so itself
  return tools;
}

/**
 * `/seller?stream=ID` for a moderator of the stream's shop: the chat tools and nothing else.
 * Returns false (and does nothing) when the caller does not moderate it as a moderator.
 */
export async function openModeratorDashboard(streamId) {
  let stream;
  try {
    stream = (await gql(ROLE_OF, { s: streamId })).stream;
  } catch (err) {
    return false;
  }
  if (!stream || stream.myChatRole !== "MODERATOR") return false;
  $("#become-vendor").hidden = true;
  $("#vendor-area").hidden = true;
  const section = h("section", { id: "moderator-dashboard" },
    h("div", { class: "stream-heading" },
      h("h2", { id: "moderated-title" }, ""),
      h("a", { href: `/live/${encodeURIComponent(streamId)}`, target: "_blank", rel: "noopener" }, "Open viewer page ↗")),
    h("div", { class: "dashboard-layout moderator-layout" },
      h("section", { class: "panel feeds" }, h("h3", {}, "💬 Comments"), h("ol", { class: "comments", id: "moderated-comments" }))));
  $("main").append(section);
  const tools = new Tools(section.querySelector(".dashboard-layout"), { streamId, vendorId: stream.vendor.id, role: "MODERATOR" });
  tools.feed = new CommentFeed($("#moderated-comments"), (c) =>
    h("li", { class: "comment", dataset: { commentId: c.id } }, commentLine(c), " ", tools.commentTools(c, { withDelete: true })), 200);
  const load = async () => {
    const full = await tools.load();
    fill($("#moderated-title"), `Moderating: ${full.title} · ${full.vendor.name}`);
    fill($("#seller-status"), `You moderate the chat of ${full.vendor.name}.`);
    tools.feed.catchUp(full.comments);
  };
  await load();
  const socket = new LiveSocket({ onReconnect: () => load().catch(() => {}), onStatus: showConnection });
  socket.subscribe(SUB_ADDED, { s: streamId }, { next: (d) => tools.feed.add([d.commentAdded]) });
  tools.follow(socket);
  window.livecart = { streamId, socket, tools };
  return true;
}
