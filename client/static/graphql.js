// Talking to /graphql: queries and mutations over HTTP, subscriptions over
// graphql-transport-ws on a socket that reconnects by itself.

const TOKEN_KEY = "livecart.token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  localStorage.removeItem(TOKEN_KEY);
}

function authHeaders() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** A GraphQL answer with errors; `code` is the first error's extensions.code. */
export class GraphQLError extends Error {
  constructor(errors, data = null) {
    super(errors.map((e) => e.message).join("; ") || "Request failed");
    this.errors = errors;
    this.data = data;
    this.extensions = errors[0]?.extensions || {};
    this.code = this.extensions.code || "ERROR";
  }
}

/** Runs a query or mutation; resolves to its data, or throws GraphQLError. */
export async function gql(query, variables = {}, { keepalive = false } = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...authHeaders() },
      body: JSON.stringify({ query, variables }),
      keepalive,
    });
  } catch (err) {
    throw new GraphQLError([{ message: "The server cannot be reached.", extensions: { code: "NETWORK" } }]);
  }
  let body;
  try {
    body = await response.json();
  } catch (err) {
    throw new GraphQLError([{ message: `The server answered ${response.status}.`, extensions: { code: "NETWORK" } }]);
  }
  if (body.errors && body.errors.length) {
    if (body.errors.some((e) => e.extensions?.code === "UNAUTHENTICATED") && getToken()) {
      // The token was revoked or has expired: forget it, so the page shows a logged-out state.
      clearToken();
    }
    throw new GraphQLError(body.errors, body.data);
  }
  return body.data;
}

/** The path of this page, to come back to after logging in. */
export function herePath() {
  return location.pathname + location.search;
}

export function loginUrl(returnPath = herePath()) {
  return `/login?return=${encodeURIComponent(returnPath)}`;
}

/** Sends the browser to log in (the error's loginUrl when it has one), coming back here. */
export function goToLogin(error = null) {
  const fromServer = error?.extensions?.loginUrl;
  location.assign(fromServer && fromServer.startsWith("/") ? fromServer : loginUrl());
}

const FORBIDDEN_TOKEN = 4403; // graphql-transport-ws close code for a connection_init the server refused

/** Whether a subscription can resume from its last cursor (issue 15). */
function resumable(sub) {
  return Boolean(sub.cursor) && sub.query.includes("$after");
}

/**
 * One graphql-transport-ws connection carrying any number of subscriptions.
 * When the connection drops it reconnects with backoff and subscribes again. A
 * subscription whose document declares `$after` and selects `eventCursor` resumes
 * from the last cursor it saw: the server sends what it missed, nothing twice. If
 * any cannot (no cursor yet, or a document without `$after`), or the server no
 * longer keeps what was missed (CURSOR_EXPIRED), onReconnect runs once so the page
 * reloads instead.
 */
export class LiveSocket {
  constructor({ onReconnect = () => {}, onStatus = () => {}, onLoggedOut = () => {} } = {}) {
    this.onReconnect = onReconnect;
    this.onStatus = onStatus;
    this.onLoggedOut = onLoggedOut;
    this.subscriptions = new Map(); // id -> {query, variables, next, error}
    this.nextId = 1;
    this.ws = null;
    this.closed = false;
    this.acked = false;
    this.everConnected = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.connect();
  }

  get url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/graphql`;
  }

  connect() {
    this.acked = false;
    this.onStatus(this.everConnected ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url, "graphql-transport-ws");
    this.ws = ws;
    ws.addEventListener("open", () => {
      const token = getToken();
      const payload = token ? { authorization: `Bearer ${token}` } : {};
      ws.send(JSON.stringify({ type: "connection_init", payload }));
    });
    ws.addEventListener("message", (event) => this.handle(ws, event.data));
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.acked = false;
      if (this.closed) return;
      if (event.code === FORBIDDEN_TOKEN && getToken()) {
        // The token was refused (revoked, say by a logout elsewhere): go on logged out
        // rather than offer it again, and let the page say so.
        clearToken();
        this.onLoggedOut();
        this.connect();
        return;
      }
      this.scheduleReconnect();
    });
    // An error is always followed by close, which does the reconnecting.
    ws.addEventListener("error", () => {});
  }

  scheduleReconnect() {
    this.onStatus("reconnecting");
    // 0.5 s, 1 s, 2 s ... up to 10 s, with jitter so a restarted server is not hit by everyone at once.
    const base = Math.min(10000, 500 * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  handle(ws, raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch (err) {
      return;
    }
    switch (message.type) {
      case "connection_ack": {
        this.acked = true;
        this.attempt = 0;
        const wasReconnect = this.everConnected;
        this.everConnected = true;
        const reload = [...this.subscriptions.values()].some((sub) => !resumable(sub));
        for (const [id, sub] of this.subscriptions) this.sendSubscribe(id, sub);
        this.onStatus("connected");
        if (wasReconnect && reload) this.onReconnect();
        break;
      }
      case "ping":
        ws.send(JSON.stringify({ type: "pong" }));
        break;
      case "next": {
        const sub = this.subscriptions.get(message.id);
        if (!sub) break;
        const { data, errors } = message.payload || {};
        if (errors && errors.length) {
          if (this.expired(message.id, errors)) break;
          sub.error(new GraphQLError(errors, data));
        } else {
          const cursor = data && Object.values(data)[0]?.eventCursor;
          if (cursor) sub.cursor = cursor;
          sub.next(data);
        }
        break;
      }
      case "error": {
        const sub = this.subscriptions.get(message.id);
        if (this.expired(message.id, message.payload || [])) break;
        this.subscriptions.delete(message.id);
        if (sub) sub.error(new GraphQLError(message.payload || [{ message: "Subscription failed" }]));
        break;
      }
      case "complete": {
        // The server ended it (the stream ended, say): the page may want the final state.
        const sub = this.subscriptions.get(message.id);
        this.subscriptions.delete(message.id);
        sub?.complete();
        break;
      }
      default:
        break;
    }
  }

  sendSubscribe(id, sub) {
    const variables = resumable(sub) ? { ...sub.variables, after: sub.cursor } : sub.variables;
    this.ws.send(JSON.stringify({ id, type: "subscribe", payload: { query: sub.query, variables } }));
  }

  /** Away longer than the server keeps events: the subscription starts again from now (under a
   * new id: the server completes the old one) and the page reloads once. */
  expired(id, errors) {
    const sub = this.subscriptions.get(id);
    if (!sub || !sub.cursor || errors[0]?.extensions?.code !== "CURSOR_EXPIRED") return false;
    this.subscriptions.delete(id);
    sub.cursor = null;
    sub.id = String(this.nextId++);
    this.subscriptions.set(sub.id, sub);
    if (this.acked && this.ws) this.sendSubscribe(sub.id, sub);
    this.onReconnect();
    return true;
  }

  /** Subscribes; returns a function that unsubscribes. */
  subscribe(query, variables, { next, error = (err) => console.warn(err), complete = () => {} }) {
    const id = String(this.nextId++);
    const sub = { id, query, variables, next, error, complete, cursor: null };
    this.subscriptions.set(id, sub);
    if (this.acked && this.ws) this.sendSubscribe(id, sub);
    return () => {
      if (!this.subscriptions.delete(sub.id)) return; // sub.id: a new one after CURSOR_EXPIRED
      if (this.acked && this.ws) this.ws.send(JSON.stringify({ id: sub.id, type: "complete" }));
    };
  }

  /** Drops the connection as a network failure would (tests and the "reconnect" check use it). */
  drop() {
    if (this.ws) this.ws.close(4000, "dropped");
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
  }
}
