// The console is a client of the public API: a bearer token on every request, and the live
// stream read with fetch (EventSource cannot send a bearer token), resumed from the last
// event id after any disconnect.
// A console user logs in with name and password (POST /auth/login: a 15-minute access token
// and a refresh token); the page renews the pair on a 401 (one renewal at a time: a refresh
// token used twice ends the whole session). An API token pasted instead has no refresh.
const TOKEN_KEY = "console.token";
const REFRESH_KEY = "console.refresh";

export class Unauthorized extends Error {}
export class Refused extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function setToken(value, refresh = null) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  if (refresh) sessionStorage.setItem(REFRESH_KEY, refresh);
  else sessionStorage.removeItem(REFRESH_KEY);
}

async function post(path, body) {
  return fetch(`/api/v1${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Log a console user in; throws Refused (401 wrong name or password, 429 locked out). */
export async function login(username, password) {
  const r = await post("/auth/login", { username, password });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Refused(r.status, data);
  setToken(data.access_token, data.refresh_token);
  return data;
}

let renewing = null;
/** A new token pair from the refresh token; false when there is none or it is refused. */
export function renew() {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!refresh) return Promise.resolve(false);
  renewing ??= (async () => {
    try {
      const r = await post("/auth/refresh", { refresh_token: refresh });
      if (!r.ok) return false;
      const data = await r.json();
      setToken(data.access_token, data.refresh_token);
      return true;
    } catch (err) {
      return false;
    } finally {
      renewing = null;
    }
  })();
  return renewing;
}

export async function logout() {
  if (sessionStorage.getItem(REFRESH_KEY)) {
    try {
      await fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token()}` } });
    } catch (err) {
      // the hub is away: the session ends at its expiry; the page forgets it now
    }
  }
  setToken(null);
}

export async function api(path, opts = {}) {
  const sent = token();
  try {
    return await call(path, opts);
  } catch (err) {
    // renew once, unless another request already did while this one was on its way
    if (err instanceof Unauthorized && (token() !== sent || (await renew()))) return call(path, opts);
    throw err;
  }
}

async function call(path, { method = "GET", body, headers = {} } = {}) {
  const r = await fetch(`/api/v1${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token()}`,
      ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      ...headers,
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  if (r.status === 401) throw new Unauthorized();
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Refused(r.status, data);
  return data;
}

export function newKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** Every open alarm of the caller's region (all pages). */
export async function openAlarms() {
  const items = [];
  let cursor = null;
  do {
    const page = await api(`/alarms?open=true&limit=200${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/**
 * Follow /alarms/stream for ever: onEvent(item) per event, onState(connected) on every
 * change, onClosed(reason) when the hub ends the stream for the token (revoked, expired).
 * Reconnects by itself with Last-Event-ID; a stream silent for longer than two keepalives
 * is treated as dead (a cut link does not always close the socket).
 */
export function follow({ onEvent, onState, onClosed, onUnauthorized }) {
  let lastId = null;
  let stopped = false;
  let controller = null;
  const SILENT_MS = 35000;

  async function once() {
    controller = new AbortController();
    let watchdog = setTimeout(() => controller.abort(), SILENT_MS);
    const headers = { Authorization: `Bearer ${token()}` };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const r = await fetch("/api/v1/alarms/stream", { headers, signal: controller.signal });
    if (r.status === 401) {
      clearTimeout(watchdog);
      if (await renew()) return; // reconnect at once with the new token
      onUnauthorized();
      stopped = true;
      return;
    }
    if (!r.ok) throw new Error(`stream: HTTP ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let announced = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENT_MS);
      if (!announced) {
        announced = true;
        await onState(true);
      }
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const fields = { event: "message", data: "" };
        for (const line of frame.split("\n")) {
          if (line.startsWith(":")) continue;
          const at = line.indexOf(":");
          const name = at < 0 ? line : line.slice(0, at);
          const val = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
          if (name === "data") fields.data += val;
          else fields[name] = val;
        }
        if (!fields.data) continue;
        if (fields.event === "closed") {
          // the access token expired or was revoked: a user's session renews and resumes
          if (await renew()) return;
          stopped = true;
          onClosed(JSON.parse(fields.data).reason);
          return;
        }
        if (fields.id !== undefined) lastId = fields.id;
        onEvent(JSON.parse(fields.data));
      }
    }
    clearTimeout(watchdog);
  }

  (async () => {
    let delay = 500;
    while (!stopped) {
      try {
        await once();
        delay = 500;
      } catch (err) {
        // network error, hub away, or watchdog abort: fall through to reconnect
      }
      if (stopped) break;
      onState(false);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 4000);
    }
  })();

  return () => {
    stopped = true;
    controller?.abort();
  };
}
