// A home's recent readings (gas level, battery) as small charts in the case view:
// GET /homes/{id}/readings, the last 24 h in 10-minute means, one line per sensor.
import { h } from "./vendor/preact.mjs";
import { useEffect, useRef, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import uPlot from "./vendor/uPlot.esm.js";
import { api } from "./api.js";
import { TIME_ZONE, currentLang, t } from "./i18n.js";

const html = htm.bind(h);
const METRICS = ["gas_lel", "battery_v"];
const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a"];
const HOURS = 24;
const BUCKET_S = 600;

function Plot({ metric, series }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current) return undefined;
    // one x axis: every bucket time any sensor has, each sensor's value or a gap
    const times = [...new Set(series.flatMap((s) => s.points.map(([at]) => Date.parse(at) / 1000)))].sort((a, b) => a - b);
    const index = new Map(times.map((x, i) => [x, i]));
    const ys = series.map((s) => {
      const y = times.map(() => null);
      for (const [at, v] of s.points) y[index.get(Date.parse(at) / 1000)] = v;
      return y;
    });
    const hm = new Intl.DateTimeFormat(currentLang(), { timeZone: TIME_ZONE, hour: "2-digit", minute: "2-digit", hour12: false });
    const plot = new uPlot(
      {
        width: Math.min(box.current.clientWidth || 600, 900),
        height: 160,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), TIME_ZONE),
        axes: [{ values: (u, vals) => vals.map((v) => hm.format(new Date(v * 1000))) }, { size: 50 }],
        series: [
          { label: t("readings.time") },
          ...series.map((s, i) => ({ label: s.sensor_id, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true })),
        ],
      },
      [times, ...ys],
      box.current,
    );
    return () => plot.destroy();
  }, [series]);
  return html`<div class="plot" data-metric=${metric}>
    <h4>${t(`readings.${metric}`)}</h4><div ref=${box}></div></div>`;
}

export function ReadingsPlots({ homeId }) {
  const [data, setData] = useState(null);
  useEffect(() => {
    if (!homeId) return;
    const since = new Date(Date.now() - HOURS * 3600000).toISOString();
    Promise.all(METRICS.map((m) => api(
      `/homes/${encodeURIComponent(homeId)}/readings?metric=${m}&since=${encodeURIComponent(since)}&every=${BUCKET_S}`,
    ).then((r) => [m, r.series.filter((s) => s.points.length > 0)], () => [m, null])))
      .then((pairs) => setData(pairs));
  }, [homeId]);
  if (!homeId || !data) return null;
  const shown = data.filter(([, series]) => series && series.length > 0);
  return html`<section class="readings">
    <h3>${t("readings.title", { hours: HOURS })}</h3>
    ${shown.length === 0 ? html`<p>${t("readings.none")}</p>`
      : shown.map(([m, series]) => html`<${Plot} key=${m} metric=${m} series=${series} />`)}
  </section>`;
}
