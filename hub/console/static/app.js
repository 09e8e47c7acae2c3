// The center console: board of open alarms (pushed live), case view with the closed-loop
// steps. Preact + htm (no build step); all data through the public API (api.js).
import { h, render } from "./vendor/preact.mjs";
import { useEffect, useMemo, useRef, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import { Refused, Unauthorized, api, follow, login, logout as endSession, newKey, openAlarms, setToken, token } from "./api.js";
import { HomeView, ResidentCard } from "./card.js";
import { Fleet } from "./fleet.js";
import { LANGS, currentLang, formatAge, formatTime, loadLang, savedLang, t, tOr } from "./i18n.js";
import { Performance } from "./kpis.js";
import { ReadingsPlots } from "./readings.js";

const html = htm.bind(h);
const CLOSED = new Set(["resolved", "reviewed"]);
const UNACKED = new Set(["raised", "notified"]);
const CLASS_ORDER = { alarm: 0, supervisory: 1, trouble: 2, test: 3 };
const ICON = { alarm: "▲", supervisory: "◆", trouble: "●", test: "○" };
const OUTCOMES = [
  "real_fire", "real_gas_leak", "medical", "cooking_smoke", "false_press",
  "test", "device_fault", "resident_fine", "other",
];

export function boardOrder(a, b) {
  const ca = CLASS_ORDER[a.alarm_class] ?? 9;
  const cb = CLASS_ORDER[b.alarm_class] ?? 9;
  if (ca !== cb) return ca - cb;
  return Date.parse(a.raised_at) - Date.parse(b.raised_at); // oldest (longest waiting) first
}

/** A stream line (hub/alarms/engine/actions.py event_payload) as a board row. */
function fromEvent(item) {
  return {
    id: item.alarm_id,
    kind: item.kind,
    alarm_class: item.class,
    priority: item.priority,
    state: item.state,
    gateway_id: item.gateway_id,
    sensor_id: item.sensor_id,
    home_id: item.home_id,
    workstation_id: item.workstation_id,
    location: item.location,
    raised_at: item.raised_at,
    count: item.count,
    flags: item.flags,
    subdistrict_id: item.subdistrict_id,
  };
}

function lifeSafetyUnacked(a) {
  return a.alarm_class === "alarm" && UNACKED.has(a.state);
}

// --- sound: a new life-safety alarm beeps (Web Audio; no sound file to ship) -----------
let audio = null;
//: while a life-safety alarm waits for acknowledgement the page reminds every this often
const REMIND_MS = 15000;
function beep(counter = "alerts") {
  document.body.dataset[counter] = String(Number(document.body.dataset[counter] || 0) + 1);
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.6);
  } catch (err) {
    // no audio device: the row's highlight still shows it
  }
}

function useRoute() {
  const [route, setRoute] = useState(location.hash);
  useEffect(() => {
    const on = () => setRoute(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const m = route.match(/^#\/case\/([0-9a-f-]{36})$/);
  if (m) return { page: "case", id: m[1] };
  const home = route.match(/^#\/home\/([^/]+)$/);
  if (home) return { page: "home", id: decodeURIComponent(home[1]) };
  if (route === "#/fleet") return { page: "fleet" };
  if (route === "#/kpis") return { page: "kpis" };
  return { page: "board" };
}

function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

function kindLabel(kind) {
  return tOr(`kind.${kind}`, "kind.other", { kind });
}

// --- login ---------------------------------------------------------------------------
function Login({ onLogin }) {
  const [withToken, setWithToken] = useState(false);
  const [fields, setFields] = useState({ username: "", password: "", token: "" });
  const [error, setError] = useState(null);
  const field = (name) => (e) => setFields({ ...fields, [name]: e.target.value });
  async function submit(e) {
    e.preventDefault();
    try {
      if (withToken) setToken(fields.token.trim());
      else await login(fields.username.trim(), fields.password);
      onLogin(await api("/me"));
    } catch (err) {
      setToken(null);
      if (err instanceof Unauthorized || (err instanceof Refused && err.status === 401)) setError("login.refused");
      else if (err instanceof Refused) setError(err.status === 429 ? "login.locked" : "login.failed");
      else setError("error.unreachable");
    }
  }
  return html`<form class="login" onSubmit=${submit}>
    <h1>${t("app.title")}</h1>
    ${withToken ? html`
      <label for="token">${t("login.token")}</label>
      <input id="token" name="token" type="password" autocomplete="off" value=${fields.token} onInput=${field("token")} required />
      <p class="hint">${t("login.hint")}</p>` : html`
      <label for="username">${t("login.username")}</label>
      <input id="username" name="username" autocomplete="username" value=${fields.username} onInput=${field("username")} required />
      <label for="password">${t("login.password")}</label>
      <input id="password" name="password" type="password" autocomplete="current-password" value=${fields.password}
        onInput=${field("password")} required />`}
    ${error && html`<p class="error" role="alert">${t(error)}</p>`}
    <button type="submit">${t("login.submit")}</button>
    <button type="button" class="link use-token" onClick=${() => { setWithToken(!withToken); setError(null); }}>
      ${t(withToken ? "login.use_password" : "login.use_token")}</button>
  </form>`;
}

// --- header and banner ---------------------------------------------------------------
function Header({ me, connected, onLang, onLogout, page }) {
  const nav = (href, key, name) => html`<a class=${`nav ${page === name ? "here" : ""}`} href=${href}>${t(key)}</a>`;
  return html`<header>
    <a class="title" href="#/">${t("app.title")}</a>
    <nav>${nav("#/", "nav.board", "board")}${nav("#/fleet", "nav.fleet", "fleet")}${nav("#/kpis", "nav.kpis", "kpis")}</nav>
    <span class=${`conn ${connected ? "up" : "down"}`} data-testid="connection">
      ${t(connected ? "conn.live" : "conn.down")}</span>
    <span class="who">${me.name || me.username || me.token_id} · ${tOr(`role.${me.role}`, "role.other")} · ${me.region}</span>
    <select aria-label=${t("lang.choose")} value=${currentLang()} onChange=${(e) => onLang(e.target.value)}>
      ${LANGS.map((l) => html`<option value=${l}>${t(`lang.${l}`)}</option>`)}
    </select>
    <button class="link" onClick=${onLogout}>${t("login.logout")}</button>
  </header>`;
}

// --- board ---------------------------------------------------------------------------
/** A storm's member (hub/alarms/engine/storms.py): shown folded into one row per kind and area. */
function massKey(a) {
  const member = a.incident_id || (a.flags || []).includes("mass_event");
  return member ? `${a.kind}|${a.subdistrict_id || a.workstation_id || ""}` : null;
}

/** Board rows in order, a storm's members folded into one group at its oldest member's place. */
export function foldStorms(sorted) {
  const out = [];
  const groups = new Map();
  for (const a of sorted) {
    const key = massKey(a);
    if (key === null) {
      out.push({ alarm: a });
      continue;
    }
    let group = groups.get(key);
    if (!group) {
      group = { key, members: [] };
      groups.set(key, group);
      out.push({ group });
    }
    group.members.push(a);
  }
  return out;
}

function AlarmRow({ a, now }) {
  return html`<li key=${a.id} data-alarm=${a.id}
      class=${`alarm cls-${a.alarm_class} ${lifeSafetyUnacked(a) ? "urgent" : ""}`}>
    <a href=${`#/case/${a.id}`}>
      <span class="icon" aria-hidden="true">${ICON[a.alarm_class] || "◇"}</span>
      <span class="kind">${kindLabel(a.kind)}</span>
      <span class="cls">${tOr(`class.${a.alarm_class}`, "class.other")}</span>
      <span class="where">${a.home_id || a.gateway_id} · ${a.location || ""}</span>
      <span class="state" data-state=${a.state}>${tOr(`state.${a.state}`, "state.other")}</span>
      <span class="age" title=${formatTime(a.raised_at)}>
        ${formatAge((now - Date.parse(a.raised_at)) / 1000)}</span>
    </a>
  </li>`;
}

function StormRow({ group, now, open, onToggle }) {
  const first = group.members[0];
  const area = first.subdistrict_id || first.workstation_id || "";
  return html`<li class=${`storm cls-${first.alarm_class}`} data-storm=${group.key} data-members=${group.members.length}>
    <button class="storm-head" onClick=${onToggle} aria-expanded=${open ? "true" : "false"}>
      <span class="icon" aria-hidden="true">≋</span>
      <span class="kind">${kindLabel(first.kind)}</span>
      <span class="cls">${t("board.mass_event")}</span>
      <span class="where">${t("board.mass_members", { n: group.members.length, area })}</span>
      <span class="state"></span>
      <span class="age" title=${formatTime(first.raised_at)}>${formatAge((now - Date.parse(first.raised_at)) / 1000)}</span>
    </button>
    ${open && html`<ul class="alarms members">${group.members.slice(0, 200).map((a) => html`<${AlarmRow} key=${a.id} a=${a} now=${now} />`)}</ul>`}
  </li>`;
}

function Board({ alarms, now, loaded }) {
  const rows = useMemo(() => foldStorms([...alarms.values()].sort(boardOrder)), [alarms]);
  const [openGroups, setOpenGroups] = useState(new Set());
  const toggle = (key) => setOpenGroups((prev) => {
    const next = new Set(prev);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    return next;
  });
  return html`<main class="board" data-loaded=${loaded ? "yes" : "no"}>
    <h2>${t("board.title")} <span class="count">${t("board.count", { n: alarms.size })}</span></h2>
    ${rows.length === 0
      ? html`<p class="empty">${t(loaded ? "board.empty" : "board.loading")}</p>`
      : html`<ul class="alarms">
          ${rows.map((r) => r.alarm
            ? html`<${AlarmRow} key=${r.alarm.id} a=${r.alarm} now=${now} />`
            : html`<${StormRow} key=${r.group.key} group=${r.group} now=${now}
                open=${openGroups.has(r.group.key)} onToggle=${() => toggle(r.group.key)} />`)}
        </ul>`}
  </main>`;
}

// --- case ----------------------------------------------------------------------------
const STEPS = [
  { action: "acknowledge", from: ["raised", "notified"] },
  { action: "dispatch", from: ["acknowledged"], responder: true },
  { action: "arrive", from: ["dispatched"] },
  { action: "resolve", from: ["acknowledged", "dispatched", "on_site"], outcome: true },
  { action: "review", from: ["resolved"] },
];

function StepForm({ alarm, step, onDone }) {
  const [note, setNote] = useState("");
  const [responder, setResponder] = useState("");
  const [outcome, setOutcome] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const key = useRef(newKey());
  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    const body = { note };
    if (step.responder) body.responder = responder;
    if (step.outcome) body.outcome = outcome;
    try {
      const detail = await api(`/alarms/${alarm.id}/${step.action}`, {
        method: "POST",
        body,
        headers: { "Idempotency-Key": key.current },
      });
      key.current = newKey();
      setNote("");
      setError(null);
      onDone(detail);
    } catch (err) {
      key.current = newKey();
      setError(err instanceof Refused ? tOr(`refused.${err.status}`, "refused.other") : t("error.unreachable"));
    } finally {
      setBusy(false);
    }
  }
  return html`<form class="step" data-step=${step.action} onSubmit=${submit}>
    ${step.responder && html`<label>${t("case.responder")}
      <input name="responder" required value=${responder} onInput=${(e) => setResponder(e.target.value)} /></label>`}
    ${step.outcome && html`<label>${t("case.outcome")}
      <select name="outcome" required value=${outcome} onChange=${(e) => setOutcome(e.target.value)}>
        <option value="">${t("case.choose")}</option>
        ${OUTCOMES.map((o) => html`<option value=${o}>${t(`outcome.${o}`)}</option>`)}
      </select></label>`}
    <label>${t("case.note")}
      <input name="note" maxlength="2000" value=${note} onInput=${(e) => setNote(e.target.value)} /></label>
    <button type="submit" disabled=${busy} data-action=${step.action}>${t(`action.${step.action}`)}</button>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </form>`;
}

function CaseView({ id, version, now, onGone }) {
  const [detail, setDetail] = useState(null);
  const [missing, setMissing] = useState(false);
  const load = async () => {
    try {
      setDetail(await api(`/alarms/${id}`));
    } catch (err) {
      if (err instanceof Refused && err.status === 404) setMissing(true);
    }
  };
  useEffect(() => {
    load();
  }, [id, version]);
  if (missing) return html`<main class="case"><p>${t("case.missing")}</p><a href="#/">${t("case.back")}</a></main>`;
  if (!detail) return html`<main class="case"><p>${t("board.loading")}</p></main>`;
  const a = detail;
  const steps = STEPS.filter((s) => s.from.includes(a.state));
  return html`<main class="case" data-state=${a.state}>
    <a class="back" href="#/">← ${t("case.back")}</a>
    <h2 class=${`cls-${a.alarm_class}`}>
      <span class="icon" aria-hidden="true">${ICON[a.alarm_class] || "◇"}</span>
      ${kindLabel(a.kind)} · <span class="state" data-state=${a.state}>${tOr(`state.${a.state}`, "state.other")}</span>
    </h2>
    <dl class="facts">
      <dt>${t("case.home")}</dt><dd>${a.home_id || "—"}</dd>
      <dt>${t("case.gateway")}</dt><dd>${a.gateway_id} / ${a.sensor_id || "—"}</dd>
      <dt>${t("case.location")}</dt><dd>${a.location || "—"}</dd>
      <dt>${t("case.workstation")}</dt><dd>${a.workstation_id || "—"}</dd>
      <dt>${t("case.raised")}</dt><dd>${formatTime(a.raised_at)} (${formatAge((now - Date.parse(a.raised_at)) / 1000)})</dd>
      ${a.responder && html`<dt>${t("case.responder")}</dt><dd>${a.responder}</dd>`}
      ${a.outcome && html`<dt>${t("case.outcome")}</dt><dd>${tOr(`outcome.${a.outcome}`, "outcome.other")}</dd>`}
    </dl>
    <${ResidentCard} home=${a.home} />
    <${ReadingsPlots} homeId=${a.home_id} />
    <section class="steps">
      <h3>${t("case.steps")}</h3>
      ${steps.length === 0 ? html`<p>${t("case.no_steps")}</p>`
        : steps.map((s) => html`<${StepForm} key=${s.action + a.version} alarm=${a} step=${s} onDone=${setDetail} />`)}
    </section>
    <section class="history">
      <h3>${t("case.history")}</h3>
      <ol>
        ${a.history.map((line) => html`<li data-action=${line.action}>
          <time>${formatTime(line.at)}</time>
          <b>${tOr(`history.${line.action}`, "history.other")}</b>
          <span class="actor">${line.actor}</span>
          ${line.responder && html`<span>→ ${line.responder}</span>`}
          ${line.outcome && html`<span>(${tOr(`outcome.${line.outcome}`, "outcome.other")})</span>`}
          ${line.note && html`<q>${line.note}</q>`}
        </li>`)}
      </ol>
    </section>
  </main>`;
}

// --- the app -------------------------------------------------------------------------
function App() {
  const [, setLangTick] = useState(0);
  const [me, setMe] = useState(null);
  const [checked, setChecked] = useState(false);
  const [connected, setConnected] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [alarms, setAlarms] = useState(new Map());
  const [versions, setVersions] = useState({});
  const known = useRef(new Set());
  const loadedOnce = useRef(false);
  const route = useRoute();
  const now = useNow();

  const logout = () => {
    endSession();
    setMe(null);
    setAlarms(new Map());
    known.current = new Set();
  };

  useEffect(() => {
    if (!token()) return setChecked(true);
    api("/me").then(setMe, () => setToken(null)).finally(() => setChecked(true));
  }, []);

  function put(list, { sound }) {
    setAlarms((prev) => {
      const next = new Map(prev);
      for (const a of list) {
        if (CLOSED.has(a.state)) next.delete(a.id);
        else next.set(a.id, { ...next.get(a.id), ...a }); // a stream line lacks some list fields
        const fresh = !known.current.has(a.id);
        known.current.add(a.id);
        if (fresh && sound && lifeSafetyUnacked(a)) beep();
      }
      return next;
    });
  }

  useEffect(() => {
    if (!me) return undefined;
    return follow({
      onEvent: (item) => {
        setVersions((v) => ({ ...v, [item.alarm_id]: (v[item.alarm_id] || 0) + 1 }));
        // the line carries the alarm's summary as of that line: enough for the board, and no
        // detail read per line (a detail holds the resident card: each read is audited)
        put([fromEvent(item)], { sound: true });
      },
      onState: async (up) => {
        setConnected(up);
        if (!up) return;
        // (re)connected: the stream resumes from its last id, and the list is read again,
        // so alarms raised while the hub was away are on the board either way
        try {
          const list = await openAlarms();
          const ids = new Set(list.map((a) => a.id));
          setAlarms((prev) => new Map([...prev].filter(([id]) => ids.has(id))));
          put(list, { sound: loadedOnce.current }); // after a reconnect: new ones beep
          loadedOnce.current = true;
          setLoaded(true);
        } catch (err) {
          if (err instanceof Unauthorized) logout();
        }
      },
      onClosed: logout,
      onUnauthorized: logout,
    });
  }, [me]);

  // like a fire panel: the sound comes back until someone acknowledges
  const waiting = [...alarms.values()].some(lifeSafetyUnacked);
  useEffect(() => {
    if (!waiting) return undefined;
    const timer = setInterval(() => beep("reminders"), REMIND_MS);
    return () => clearInterval(timer);
  }, [waiting]);

  const changeLang = async (l) => {
    await loadLang(l);
    setLangTick((n) => n + 1);
  };

  if (!checked) return null;
  if (!me) return html`<${Login} onLogin=${setMe} />`;
  return html`<div class="app">
    <${Header} me=${me} connected=${connected} onLang=${changeLang} onLogout=${logout} page=${route.page} />
    ${!connected && html`<div class="banner" role="alert" data-testid="disconnected">${t("conn.banner")}</div>`}
    ${route.page === "case" ? html`<${CaseView} id=${route.id} version=${versions[route.id] || 0} now=${now} />`
      : route.page === "fleet" ? html`<${Fleet} />`
      : route.page === "home" ? html`<${HomeView} id=${route.id} />`
      : route.page === "kpis" ? html`<${Performance} />`
      : html`<${Board} alarms=${alarms} now=${now} loaded=${loaded} />`}
  </div>`;
}

await loadLang(savedLang());
render(html`<${App} />`, document.getElementById("app"));
