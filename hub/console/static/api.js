// The console is a client of the public API: a bearer token on every request, and the live
// stream read with fetch (EventSource cannot send a bearer token), resumed from the last
// event id after any disconnect.
const TOKEN_KEY = "console.token";

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
export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
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
