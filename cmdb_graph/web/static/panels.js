// The side panels: a CI's details, a change's impact (services hit, conflicts, windows), an
// incident's routing and the probable causes of several incidents.

import { BADGES } from "./look.js";

/** A DOM element: h("li", {class: "x", onclick: f}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const when = (t) => (t ? new Date(t).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "");
const low = (s) => String(s ?? "").toLowerCase().replaceAll("_", " ");

function ciLink(id, nameOf, onPick) {
  return h("a", { href: "#", "data-ci": id, onclick: (ev) => { ev.preventDefault(); onPick(id); } },
           nameOf(id));
}

function facts(rows) {
  return h("dl", {}, rows.filter(([, v]) => v !== null && v !== undefined && v !== "" &&
                                            !(Array.isArray(v) && !v.length))
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, Array.isArray(v) ? v.join(", ") : v)]));
}

export function renderDetails(box, ci, flags, actions) {
  const sources = (ci.lineage?.sources || []).map((s) => s.nativeKey || s.source);
  box.replaceChildren(
    h("h3", {}, ci.name),
    facts([
      ["class", ci.ciClass], ["status", low(ci.operationalStatus)],
      ["environment", ci.environment], ["criticality", ci.businessCriticality],
      ["ci_id", ci.ciId], ["FQDN", ci.fqdn], ["host name", ci.hostname],
      ["IP", ci.ipAddresses], ["serial", ci.serialNumber], ["asset tag", ci.assetTag],
      ["cloud id", ci.cloudId], ["native keys", sources], ["redundancy", ci.redundancy],
      ["support group", ci.supportGroup && `${ci.supportGroup.name} ${ci.supportGroup.email || ""}`],
      ["owner", ci.owner && `${ci.owner.name} ${ci.owner.email || ""}`],
      ["last seen", when(ci.lastSeen)], ["duplicate of", ci.duplicateOf],
      ["description", ci.description],
    ]),
    flags?.length ? h("ul", { class: "flags" }, flags.map((f) =>
      h("li", { "data-badge": f.badge }, h("b", {}, BADGES[f.badge] || f.badge), ": ", f.detail)))
      : null,
    h("div", { class: "row" }, actions.map(([label, fn]) => h("button", { type: "button", onclick: fn }, label))),
  );
}

export function renderMany(box, items, nameOf, onPick, actions) {
  box.replaceChildren(
    h("h3", {}, `${items.length} CIs selected`),
    h("ul", { class: "plain" }, items.map((id) => h("li", {}, ciLink(id, nameOf, onPick)))),
    h("div", { class: "row" }, actions.map(([label, fn]) => h("button", { type: "button", onclick: fn }, label))),
  );
}

export function renderImpact(box, res, conflicts, windows, nameOf, onPick) {
  const kinds = new Set(["business_service", "application_service"]);
  // a service not in service (planned, retired...) is no outage: listed apart
  const services = res.impacted.filter((i) => kinds.has(i.kind) && i.inService)
    .sort((a, b) => (a.businessCriticality ?? 9) - (b.businessCriticality ?? 9)
                    || a.name.localeCompare(b.name));
  const idle = res.impacted.filter((i) => kinds.has(i.kind) && !i.inService);
  const by = Object.fromEntries(res.summary.byStatus.map((c) => [c.key, c.count]));
  const drawnNote = res.drawn < res.impacted.length
    ? ` (drawn: ${res.drawn}: the services, their paths and the CIs already on the map)` : "";
  box.replaceChildren(
    h("p", { class: "summary" },
      `Taking ${res.changed.map(nameOf).join(", ")} down impacts ${res.summary.total} CIs`,
      ` (${by.down || 0} down, ${by.degraded || 0} degraded)${drawnNote}; `,
      h("b", {}, `${res.summary.servicesHit} services hit`),
      res.truncated ? ` (only up to depth ${res.depthLimit})` : "", "."),
    h("h3", {}, "Services hit"),
    services.length ? h("table", { class: "services" },
      h("tr", {}, h("th", {}, "service"), h("th", {}, "kind"), h("th", {}, "status"), h("th", {}, "crit."),
        h("th", { title: "How sure: the product of the confidences along its path" }, "sure")),
      services.map((s) => h("tr", { "data-ci": s.ciId, "data-status": s.status },
        h("td", {}, ciLink(s.ciId, nameOf, onPick)), h("td", {}, low(s.kind).replace(" service", "")),
        h("td", { class: `st-${low(s.status)}` }, low(s.status)),
        h("td", {}, s.businessCriticality ?? "–"),
        h("td", { class: "sure", title: inferredHops(s) }, s.confidence == null ? "–" : s.confidence.toFixed(2)))))
      : h("p", {}, "No business or application service is hit."),
    idle.length ? h("p", { class: "idle" }, "Not in service (no outage): ",
      ...idle.flatMap((s, k) => [k ? ", " : "", ciLink(s.ciId, nameOf, onPick),
                                 ` (${low(s.operationalStatus || "")})`])) : null,
    renderConflicts(conflicts, windows, res.changed, nameOf, onPick),
  );
}

/** The inferred hops of an impacted CI's first path, one per line (a cell's tooltip). */
function inferredHops(i) {
  const hops = (i.links && i.links[0] || []).filter((l) => l.basis === "INFERRED");
  return hops.length
    ? hops.map((l) => `inferred (${l.confidence.toFixed(2)}): ${l.evidence || "no evidence"}`).join("\n")
    : "declared or discovered all the way";
}

function renderConflicts(c, windows, changed, nameOf, onPick) {
  if (!c) return null;
  if (c.__typename === "UserError") return h("p", { class: "error" }, c.message);
  const ids = new Set(changed);
  const named = new Set(c.conflicts.map((x) => x.windowId).filter(Boolean));
  const relevant = windows.filter((w) => named.has(w.windowId) || !w.ciIds.length
                                         || w.ciIds.some((id) => ids.has(id)));
  return h("div", { class: "conflicts" },
    h("h3", {}, `Change ${c.change.changeId}${c.change.title ? `: ${c.change.title}` : ""}`),
    h("p", {}, `Window ${when(c.change.windowStart)} to ${when(c.change.windowEnd)}`),
    h("h3", {}, c.hasConflicts ? `${c.conflicts.length} conflicts` : "No conflicts"),
    h("ul", {}, c.conflicts.map((x) => h("li", { "data-kind": x.kind },
      h("b", {}, low(x.kind)), ": ", x.detail, " ",
      ...x.ciIds.slice(0, 5).map((id) => [ciLink(id, nameOf, onPick), " "])))),
    h("h3", {}, "Windows"),
    relevant.length ? h("ul", {}, relevant.map((w) => h("li", { "data-window": w.windowId },
      h("b", {}, `${low(w.kind)}`), ` ${w.name || w.windowId}: ${when(w.start)} to ${when(w.end)}`,
      w.recurrence ? ` (${w.recurrence})` : "", w.ciIds.length ? "" : " (whole estate)")))
      : h("p", {}, "No maintenance or blackout window applies to these CIs."),
  );
}

export function renderRoute(box, ciId, r, nameOf, onPick) {
  const g = r.supportGroup;
  box.replaceChildren(
    h("h3", {}, `Incident on ${nameOf(ciId)}`),
    g ? h("p", { class: "route" }, "Send to ", h("b", { class: "group" }, g.name),
          g.email ? [" (", h("a", { href: `mailto:${g.email}` }, g.email), ")"] : "",
          g.manager ? `, manager ${g.manager}` : "")
      : h("p", { class: "error" }, "No support group found."),
    h("p", { class: "reason" }, r.reason),
    r.path.length > 1 ? h("p", {}, "Path: ", r.path.map((id, i) => [i ? " → " : "", ciLink(id, nameOf, onPick)])) : null,
  );
}

export function renderCause(box, r, nameOf, onPick, onChoose) {
  box.replaceChildren(
    h("h3", {}, `Probable causes of incidents on ${r.affected.length} CIs`),
    r.candidates.length ? h("ol", { class: "causes" }, r.candidates.map((c) =>
      h("li", { "data-ci": c.ciId, class: c.ciId === r.chosen?.ciId ? "chosen" : null },
        h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); onChoose(c.ciId); } },
          `${c.name}`), ` (${c.ciClass}) explains ${c.explains.length} of ${r.affected.length}`,
        c.recentChanges.length ? `; recent changes: ${c.recentChanges.join(", ")}` : "",
        c.openIncidents.length ? `; open incidents: ${c.openIncidents.join(", ")}` : "",
        c.supportGroup ? `; group: ${c.supportGroup.name}` : "")))
      : h("p", {}, "No shared dependency found."),
    h("p", {}, "Affected: ", r.affected.map((id, i) => [i ? ", " : "", ciLink(id, nameOf, onPick)])),
  );
}
