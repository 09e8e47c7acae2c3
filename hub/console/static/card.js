// The resident card (GET /homes/{id}, or the alarm detail's home card: the hub audits
// each read of the personal data) and a home's page (card + its recent alarms).
import { h } from "./vendor/preact.mjs";
import { useEffect, useState } from "./vendor/hooks.mjs";
import htm from "./vendor/htm.mjs";
import { Refused, api } from "./api.js";
import { formatTime, t, tOr } from "./i18n.js";

const html = htm.bind(h);

// --- resident card (the alarm detail's home card; the hub audits each read) -----------
export function tel(phone) {
  return html`<a class="tel" href=${`tel:${phone.replace(/[^0-9+]/g, "")}`}>${phone}</a>`;
}

export function ResidentCard({ home }) {
  if (!home) return html`<section class="card"><h3>${t("card.title")}</h3><p>${t("card.none")}</p></section>`;
  const where = [home.address, home.floor && t("card.floor", { floor: home.floor }), home.door && t("card.door", { door: home.door })]
    .filter(Boolean).join(" ");
  return html`<section class="card" data-testid="resident-card">
    <h3>${t("card.title")}</h3>
    <p class="address">${where}</p>
    ${!home.personal_data && html`<p class="hint">${t("card.no_personal_data")}</p>`}
    ${(home.residents || []).map((r) => html`<div class="resident">
      <b>${r.name}</b>${r.age != null && html` · ${t("card.age", { age: r.age })}`}
      ${r.phone && html` · ${tel(r.phone)}`}
      ${r.conditions?.length > 0 && html`<div>${t("card.conditions")}: ${r.conditions.join("、")}</div>`}
      ${r.notes && html`<div>${t("card.notes")}: ${r.notes}</div>`}
    </div>`)}
    ${home.care_notes && html`<p>${t("card.care_notes")}: ${home.care_notes}</p>`}
    ${home.emergency_contacts?.length > 0 && html`<div class="contacts">${t("card.contacts")}:
      <ul>${home.emergency_contacts.map((c) => html`<li>${c.name}${c.relation && ` (${c.relation})`} ${tel(c.phone)}</li>`)}</ul>
    </div>`}
    ${home.key_holder && html`<p>${t("card.key_holder")}: ${home.key_holder.name} ${tel(home.key_holder.phone)}</p>`}
    <p class="ws">${t("case.workstation")}: ${home.workstation.name} ${tel(home.workstation.phone)}</p>
  </section>`;
}

export function HomeView({ id }) {
  const [home, setHome] = useState(null);
  const [alarms, setAlarms] = useState([]);
  const [error, setError] = useState(null);
  useEffect(() => {
    (async () => {
      try {
        const [card, page] = await Promise.all([
          api(`/homes/${encodeURIComponent(id)}`),
          api(`/alarms?home_id=${encodeURIComponent(id)}&limit=20`),
        ]);
        setHome(card);
        setAlarms(page.items);
      } catch (err) {
        setError(err instanceof Refused && err.status === 404 ? "case.missing" : "error.unreachable");
      }
    })();
  }, [id]);
  if (error) return html`<main class="home"><p class="error">${t(error)}</p></main>`;
  if (!home) return html`<main class="home"><p>${t("board.loading")}</p></main>`;
  return html`<main class="home" data-home=${id}>
    <a class="back" href="#/fleet">← ${t("nav.fleet")}</a>
    <${ResidentCard} home=${home} />
    <section><h3>${t("home.alarms")}</h3>
      <ul>${alarms.map((a) => html`<li><a href=${`#/case/${a.id}`}>${formatTime(a.raised_at)}
        ${tOr(`kind.${a.kind}`, "kind.other", { kind: a.kind })} · ${tOr(`state.${a.state}`, "state.other")}</a></li>`)}</ul>
      ${alarms.length === 0 && html`<p>${t("home.no_alarms")}</p>`}
    </section>
  </main>`;
}
