// Every visible string comes from a catalogue (i18n/<lang>.json); a missing key renders as
// ⟦key⟧ so a test (and anybody looking) sees it. Times are shown in the district's zone.
export const LANGS = ["zh-CN", "en"];
export const DEFAULT_LANG = "zh-CN";
export const TIME_ZONE = "Asia/Shanghai";

let catalogue = {};
let lang = DEFAULT_LANG;

export function currentLang() {
  return lang;
}

export function savedLang() {
  const saved = localStorage.getItem("console.lang");
  return LANGS.includes(saved) ? saved : DEFAULT_LANG;
}

export async function loadLang(wanted) {
  const next = LANGS.includes(wanted) ? wanted : DEFAULT_LANG;
  const r = await fetch(`i18n/${next}.json`, { cache: "no-cache" });
  catalogue = await r.json();
  lang = next;
  localStorage.setItem("console.lang", next);
  document.documentElement.lang = next;
  document.title = t("app.title");
}

export function t(key, vars) {
  let s = catalogue[key];
  if (s === undefined) return `⟦${key}⟧`;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

/** A catalogue entry when there is one (alarm kinds the hub may add later), else a fallback. */
export function tOr(key, fallbackKey, vars) {
  return key in catalogue ? t(key, vars) : t(fallbackKey, vars);
}

export function formatTime(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(lang, {
    timeZone: TIME_ZONE,
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  }).format(new Date(iso));
}

export function formatAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return t("age.seconds", { n: s });
  if (s < 3600) return t("age.minutes", { m: Math.floor(s / 60), s: s % 60 });
  return t("age.hours", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}
