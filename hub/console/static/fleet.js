// Fleet health: the region's gateways, worst first, per workstation, sortable; a troubled
// gateway's detail (troubles, buffer, clock, sensors) and commands (self-test, silence the
// siren, report status) from its row.
import { h } from "./vendor/preact.mjs";
import { useEffect, useMemo, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import { Refused, api } from "./api.js";
import { formatTime, t, tOr } from "./i18n.js";

const html = htm.bind(h);
const CONNECTIVITY_ORDER = { offline: 0, silent: 1, unknown: 2, online: 3 };
const COMMANDS = ["selftest", "silence_siren", "report_status"];
//: details are read for at most this many troubled gateways (one request each)
const DETAILS_MAX = 50;

async function all(path) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < 5000);
  return items;
}

function troubled(g) {
  return g.connectivity !== "online" || g.open_troubles > 0;
}

const SORTS = {
  health: (a, b) =>
    (CONNECTIVITY_ORDER[a.connectivity] ?? 9) - (CONNECTIVITY_ORDER[b.connectivity] ?? 9) ||
    b.open_troubles - a.open_troubles || a.id.localeCompare(b.id),
  id: (a, b) => a.id.localeCompare(b.id),
  workstation: (a, b) => (a.workstation_id || "").localeCompare(b.workstation_id || "") || a.id.localeCompare(b.id),
  last_seen: (a, b) => Date.parse(a.last_seen_at || 0) - Date.parse(b.last_seen_at || 0),
  troubles: (a, b) => b.open_troubles - a.open_troubles,
};

function CommandButtons({ gateway }) {
  const [sent, setSent] = useState([]);
  const [error, setError] = useState(null);
  async function send(name) {
    try {
      const c = await api(`/gateways/${gateway.id}/commands`, { method: "POST", body: { name } });
      setSent((list) => [c, ...list]);
      setError(null);
    } catch (err) {
      setError(err instanceof Refused ? tOr(`refused.${err.status}`, "refused.other") : t("error.unreachable"));
    }
  }
  async function refresh() {
    try {
      setSent(await api(`/gateways/${gateway.id}/commands`));
    } catch (err) {
      setError(t("error.unreachable"));
    }
  }
  return html`<div class="commands">
    ${COMMANDS.map((name) => html`<button data-command=${name} onClick=${() => send(name)}>${t(`command.${name}`)}</button>`)}
    <button class="link" onClick=${refresh}>${t("fleet.refresh")}</button>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <ul>${sent.slice(0, 5).map((c) => html`<li data-command-state=${c.state}>
      ${formatTime(c.issued_at)} ${t(`command.${c.name}`)}: ${tOr(`command_state.${c.state}`, "command_state.other")}
    </li>`)}</ul>
  </div>`;
}

function Detail({ gateway, detail }) {
  if (!detail) return null;
  return html`<div class="gw-detail">
    <div>${t("fleet.buffer")}: ${detail.buffer.depth ?? "—"} · ${t("fleet.clock")}:
      ${t(detail.clock.suspect ? "fleet.clock_suspect" : detail.clock.synced === false ? "fleet.clock_unsynced" : "fleet.clock_ok")}</div>
    ${detail.troubles.length > 0 && html`<ul class="troubles">${detail.troubles.map((tr) => html`<li>
      ${tOr(`kind.${tr.kind}`, "kind.other", { kind: tr.kind })}${tr.sensor_id && ` (${tr.sensor_id})`} · ${t("fleet.since")} ${formatTime(tr.since)}
      ${tr.alarm_id && html` · <a href=${`#/case/${tr.alarm_id}`}>${t("fleet.open_case")}</a>`}</li>`)}</ul>`}
    <${CommandButtons} gateway=${gateway} />
  </div>`;
}

export function Fleet() {
  const [gateways, setGateways] = useState(null);
  const [details, setDetails] = useState({});
  const [sort, setSort] = useState("health");
  const [workstation, setWorkstation] = useState("");
  const [open, setOpen] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    (async () => {
      try {
        const [gws, homes] = await Promise.all([all("/gateways"), all("/homes")]);
        const wsOf = Object.fromEntries(homes.map((hm) => [hm.id, hm.workstation_id]));
        const list = gws.map((g) => ({ ...g, workstation_id: wsOf[g.home_id] || "" }));
        setGateways(list);
        const worst = list.filter(troubled).sort(SORTS.health).slice(0, DETAILS_MAX);
        const read = await Promise.all(worst.map((g) => api(`/gateways/${g.id}`).catch(() => null)));
        setDetails(Object.fromEntries(worst.map((g, i) => [g.id, read[i]])));
      } catch (err) {
        setError(err instanceof Refused ? tOr(`refused.${err.status}`, "refused.other") : t("error.unreachable"));
      }
    })();
  }, []);

  const workstations = useMemo(() => [...new Set((gateways || []).map((g) => g.workstation_id))].sort(), [gateways]);
  const rows = useMemo(
    () => (gateways || []).filter((g) => !workstation || g.workstation_id === workstation).sort(SORTS[sort]),
    [gateways, sort, workstation],
  );
  if (error) return html`<main class="fleet"><p class="error">${error}</p></main>`;
  if (!gateways) return html`<main class="fleet"><p>${t("board.loading")}</p></main>`;
  const counts = { offline: 0, silent: 0, troubles: 0 };
  for (const g of rows) {
    if (g.connectivity === "offline") counts.offline += 1;
    if (g.connectivity === "silent") counts.silent += 1;
    if (g.open_troubles > 0) counts.troubles += 1;
  }
  const th = (key) => html`<th><button class=${`link ${sort === key ? "sorted" : ""}`} data-sort=${key}
    onClick=${() => setSort(key)}>${t(`fleet.col.${key}`)}</button></th>`;
  return html`<main class="fleet" data-loaded="yes">
    <h2>${t("fleet.title")}</h2>
    <p class="summary">${t("fleet.summary", { n: rows.length, ...counts })}</p>
    <label>${t("fleet.workstation")}
      <select value=${workstation} onChange=${(e) => setWorkstation(e.target.value)}>
        <option value="">${t("fleet.all")}</option>
        ${workstations.map((w) => html`<option value=${w}>${w}</option>`)}
      </select></label>
    <table class="gateways">
      <thead><tr>${th("health")}${th("id")}${th("workstation")}${th("last_seen")}${th("troubles")}</tr></thead>
      <tbody>${rows.map((g) => html`
        <tr key=${g.id} data-gateway=${g.id} class=${`conn-${g.connectivity}`}>
          <td><span class="dot"></span>${tOr(`connectivity.${g.connectivity}`, "connectivity.unknown")}</td>
          <td><button class="link" onClick=${() => setOpen(open === g.id ? null : g.id)}>${g.id}</button>
            <div class="home"><a href=${`#/home/${g.home_id}`}>${g.home_id}</a></div></td>
          <td>${g.workstation_id}</td>
          <td>${g.last_seen_at ? formatTime(g.last_seen_at) : "—"}</td>
          <td>${g.open_troubles}</td>
        </tr>
        ${open === g.id && html`<tr class="detail-row"><td colspan="5">
          <${Detail} gateway=${g} detail=${details[g.id] || { buffer: {}, clock: {}, troubles: [] }} /></td></tr>`}`)}
      </tbody>
    </table>
  </main>`;
}
