// Performance of the user's region over a chosen period: time to acknowledge / dispatch /
// arrive against the 60 s target, the share acknowledged within 60 s, per day as a chart
// (uPlot), and false-alarm rates per workstation. All from GET /kpis.
import { h } from "./vendor/preact.mjs";
import { useEffect, useRef, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import uPlot from "./vendor/uPlot.esm.js";
import { api } from "./api.js";
import { TIME_ZONE, currentLang, t } from "./i18n.js";

const html = htm.bind(h);
const DAY_MS = 86400000;
const TARGET_S = 60;
const PERIODS = [1, 7, 30];

function seconds(v) {
  return v == null ? "—" : t("kpi.seconds", { n: Math.round(v) });
}

function percent(v) {
  return v == null ? "—" : `${(v * 100).toFixed(1)} %`;
}

function Chart({ days }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || days.length === 0) return undefined;
    const xs = days.map((_, i) => i);
    const data = [
      xs,
      days.map((d) => d.k.time_to_acknowledge.median_s),
      days.map((d) => d.k.time_to_acknowledge.p90_s),
      days.map((d) => d.k.time_to_arrive.median_s),
      xs.map(() => TARGET_S),
    ];
    const fmt = new Intl.DateTimeFormat(currentLang(), { timeZone: TIME_ZONE, month: "2-digit", day: "2-digit" });
    const labels = days.map((d) => fmt.format(new Date(d.start)));
    const every = Math.max(1, Math.ceil(days.length / 10));
    const plot = new uPlot(
      {
        width: Math.min(box.current.clientWidth || 800, 1000),
        height: 260,
        scales: { x: { time: false, range: [-0.5, Math.max(days.length - 0.5, 0.5)] } },
        axes: [
          { splits: () => xs.filter((i) => i % every === 0), values: (u, vals) => vals.map((i) => labels[i] ?? "") },
          { values: (u, vals) => vals.map((v) => t("kpi.seconds", { n: v })), size: 70 },
        ],
        series: [
          { label: t("kpi.day"), value: (u, i) => (i == null ? "—" : labels[i] ?? "—") },
          { label: t("kpi.ack_median"), stroke: "#1565c0", width: 2 },
          { label: t("kpi.ack_p90"), stroke: "#90caf9", width: 2 },
          { label: t("kpi.arrive_median"), stroke: "#2e7d32", width: 2 },
          { label: t("kpi.target"), stroke: "#c62828", dash: [6, 4], width: 1, points: { show: false } },
        ],
      },
      data,
      box.current,
    );
    return () => plot.destroy();
  }, [days]);
  return html`<div class="chart" ref=${box}></div>`;
}

/** Midnight (in the district's zone, UTC+8 all year) of the day holding ``ms``. */
function dayStart(ms) {
  const offset = 8 * 3600000;
  return Math.floor((ms + offset) / DAY_MS) * DAY_MS - offset;
}

/** Workstations side by side: median and 90th percentile time to acknowledge as bars
 * against the 60 s line (the bar's scale is 0 – 120 s), share within 60 s, false-alarm rate. */
function Compare({ rows }) {
  if (rows.length < 2) return null;
  const width = (v) => `${Math.min(100, ((v ?? 0) / (2 * TARGET_S)) * 100)}%`;
  return html`<section class="compare">
    <h3>${t("kpi.compare")}</h3>
    <table class="compare" data-testid="compare">
      <thead><tr><th>${t("case.workstation")}</th><th>${t("kpi.alarms_col")}</th><th>${t("kpi.to_ack")}</th>
        <th>${t("kpi.within_60s")}</th><th>${t("kpi.rate")}</th></tr></thead>
      <tbody>${rows.map(({ ws, k }) => {
        const ack = k.time_to_acknowledge;
        const rate = k.false_alarm_rates.workstation_id?.[ws.id]?.rate;
        return html`<tr data-workstation=${ws.id}>
          <td>${ws.name || ws.id}</td><td>${k.alarms}</td>
          <td class="bars" title=${`${seconds(ack.median_s)} / ${seconds(ack.p90_s)}`}>
            <div class="bar p90" style=${{ width: width(ack.p90_s) }}></div>
            <div class="bar median" style=${{ width: width(ack.median_s) }}></div>
            <div class="target"></div>
            <span>${seconds(ack.median_s)} · ${seconds(ack.p90_s)}</span></td>
          <td>${percent(k.acknowledged_within_60s)}</td><td>${percent(rate)}</td></tr>`;
      })}</tbody>
    </table>
  </section>`;
}

export function Performance() {
  const [period, setPeriod] = useState(7);
  const [total, setTotal] = useState(null);
  const [compare, setCompare] = useState([]);
  const [days, setDays] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    (async () => {
      try {
        // calendar days in Asia/Shanghai, today included
        const today = dayStart(Date.now());
        const starts = Array.from({ length: period }, (_, i) => today - (period - 1 - i) * DAY_MS);
        setTotal(await api(`/kpis?since=${encodeURIComponent(new Date(starts[0]).toISOString())}`));
        const per = await Promise.all(starts.map((s) => api(
          `/kpis?since=${encodeURIComponent(new Date(s).toISOString())}&until=${encodeURIComponent(new Date(s + DAY_MS).toISOString())}`,
        )));
        setDays(starts.map((start, i) => ({ start, k: per[i] })));
        const since = encodeURIComponent(new Date(starts[0]).toISOString());
        const stations = await api("/workstations").catch(() => []);
        const each = await Promise.all(stations.slice(0, 100).map((ws) =>
          api(`/kpis?since=${since}&workstation_id=${encodeURIComponent(ws.id)}`).then((k) => ({ ws, k }))));
        setCompare(each);
        setError(null);
      } catch (err) {
        setError("error.unreachable");
      }
    })();
  }, [period]);
  if (error) return html`<main class="kpis"><p class="error">${t(error)}</p></main>`;
  if (!total) return html`<main class="kpis"><p>${t("board.loading")}</p></main>`;
  const rates = Object.entries(total.false_alarm_rates.workstation_id || {});
  const row = (key, d) => html`<tr><th>${t(key)}</th><td>${d.count}</td><td>${seconds(d.median_s)}</td>
    <td>${seconds(d.p90_s)}</td><td>${seconds(d.max_s)}</td></tr>`;
  return html`<main class="kpis" data-loaded="yes">
    <h2>${t("kpi.title")}</h2>
    <label>${t("kpi.period")}
      <select value=${period} onChange=${(e) => setPeriod(Number(e.target.value))}>
        ${PERIODS.map((n) => html`<option value=${n}>${t("kpi.days", { n })}</option>`)}
      </select></label>
    <p class="headline">${t("kpi.alarms", { n: total.alarms })} ·
      ${t("kpi.within_60s")}: <b data-testid="within60">${percent(total.acknowledged_within_60s)}</b>
      (${t("kpi.target_share")})</p>
    <table class="durations">
      <thead><tr><th></th><th>${t("kpi.count")}</th><th>${t("kpi.median")}</th><th>${t("kpi.p90")}</th><th>${t("kpi.max")}</th></tr></thead>
      <tbody>${row("kpi.to_ack", total.time_to_acknowledge)}${row("kpi.to_dispatch", total.time_to_dispatch)}${row("kpi.to_arrive", total.time_to_arrive)}</tbody>
    </table>
    <h3>${t("kpi.per_day")}</h3>
    <${Chart} days=${days} />
    <${Compare} rows=${compare} />
    <h3>${t("kpi.false_rates")}</h3>
    ${rates.length === 0 ? html`<p>${t("kpi.no_resolved")}</p>` : html`<table class="rates">
      <thead><tr><th>${t("case.workstation")}</th><th>${t("kpi.resolved")}</th><th>${t("kpi.false")}</th><th>${t("kpi.rate")}</th></tr></thead>
      <tbody>${rates.map(([ws, r]) => html`<tr><td>${ws}</td><td>${r.resolved}</td><td>${r.false}</td><td>${percent(r.rate)}</td></tr>`)}</tbody>
    </table>`}
  </main>`;
}
