// The dependency map: search a CI, open its neighbourhood as a layered map, overlay a change's
// impact, an incident's routing or the probable cause of several incidents. The whole view
// lives in the URL (after #), so a map can be shared as a link.

import { ApiError, forgetKey, gql, hasKey, unwrap } from "./api.js";
import { BADGES, CLASSES, RELS } from "./look.js";
import { MapData, colouredCIs, draw, elements, newMap } from "./map.js";
import {
  emptyOverlay, ensureNodes, loadCause, loadFlags, loadImpact, loadNeighbourhood, loadRoute,
} from "./overlays.js";
import { h, renderCause, renderDetails, renderImpact, renderMany, renderRoute } from "./panels.js";
import { CHANGES, CONFLICTS, DETAILS, INCIDENTS, PROPOSED_CONFLICTS, SEARCH, SERVICES, WINDOWS } from "./queries.js";
import { toSvg } from "./svg.js";

const $ = (id) => document.getElementById(id);

// -- the view, as the URL holds it ------------------------------------------------------------
const DEFAULTS = {
  ci: "", depth: 2, dir: "both", max: 400, group: 5, tab: "details",
  hideClass: [], hideRel: [], hideEnv: [], hideBadge: [], x: [], open: [], sel: [],
  impact: [], change: "", ws: "", we: "", route: "", cause: [], pick: "",
};
const LISTS = Object.keys(DEFAULTS).filter((k) => Array.isArray(DEFAULTS[k]));
const NUMBERS = ["depth", "max", "group"];

function readUrl() {
  const p = new URLSearchParams(location.hash.slice(1));
  const s = structuredClone(DEFAULTS);
  for (const [k, v] of p) {
    if (!(k in s)) continue;
    if (LISTS.includes(k)) s[k] = v ? v.split(",") : [];
    else if (NUMBERS.includes(k)) s[k] = v !== "" && Number.isFinite(Number(v)) ? Number(v) : DEFAULTS[k];
    else s[k] = v;
  }
  return s;
}

function writeUrl() {
  const p = new URLSearchParams();
  for (const [k, d] of Object.entries(DEFAULTS)) {
    const v = state[k];
    if (Array.isArray(d) ? v.length : v !== d) p.set(k, Array.isArray(v) ? v.join(",") : v);
  }
  const hash = "#" + p.toString().replaceAll("%2C", ",");
  if (hash !== location.hash) history.replaceState(null, "", hash);
}

let state = readUrl();
const data = new MapData();
let overlay = emptyOverlay();
let panels = { impact: null, route: null, cause: null };
let generation = 0;
const cy = newMap($("cy"));
const lists = { windows: null, changes: null, incidents: null };

// -- loading and drawing ------------------------------------------------------------------------
function say(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function relTypes() {
  return [...new Set([...Object.keys(RELS), ...[...data.edges.values()].map((e) => e.relType)])]
    .filter((r) => r !== "IMPACT_PATH").sort();
}

/** Load everything the URL asks for, then draw. */
async function reload() {
  const mine = ++generation;
  data.clear();
  overlay = emptyOverlay();
  panels = { impact: null, route: null, cause: null };
  $("start").hidden = Boolean(state.ci || state.impact.length || state.change || state.route
                              || state.cause.length);
  if ($("start").hidden === false) showServices();
  say("Loading…");
  try {
    const opts = { ...state, relTypes: relTypes() };
    if (state.ci) {
      const nb = await loadNeighbourhood(data, state.ci, opts);
      data.truncated = nb.truncated ? nb.totalNodes : 0;
      for (const id of state.x) await loadNeighbourhood(data, id, opts, 1);
    }
    if (state.impact.length || state.change) {
      panels.impact = await loadImpact(data, overlay, { ciIds: state.impact, changeId: state.change });
      panels.conflicts = await conflictsFor(panels.impact.changed);
      panels.windows = await windows();
    }
    if (state.route) panels.route = await loadRoute(data, overlay, state.route);
    if (state.cause.length) panels.cause = await loadCause(data, overlay, state.cause, state.pick);
    await ensureNodes(data, state.sel.filter((id) => !id.startsWith("group:")));
    if (mine !== generation) return;
    await render();
    loadFlags(data).then(() => { if (mine === generation) render(false); })
      .catch((e) => say(`Badges: ${e.message}`, true));
  } catch (e) {
    if (mine === generation) say(e instanceof ApiError ? e.message : String(e), true);
  }
}

/** Draw what is loaded, with the filters and groups of the URL. */
async function render(relayout = true) {
  writeUrl();
  const view = {
    centre: state.ci, keep: new Set([...overlay.keep, ...state.x, ...state.sel]),
    hideClass: new Set(state.hideClass), hideEnv: new Set(state.hideEnv),
    hideRel: new Set(state.hideRel), hideBadge: new Set(state.hideBadge),
    open: new Set(state.open), threshold: state.group, overlay,
  };
  const { elements: els, groups } = elements(data, view);
  if (relayout) {
    const t = await draw(cy, els, state.ci || [...overlay.changed][0] || overlay.cause);
    window.cmdb.timings = { ...t, nodes: cy.nodes().length, edges: cy.edges().length };
  } else {
    // only labels and classes changed (badges arrived): keep the positions
    cy.batch(() => els.forEach((e) => {
      const n = cy.getElementById(e.data.id);
      if (n.nonempty()) { n.data(e.data); n.classes(e.classes || ""); }
    }));
  }
  cy.nodes().unselect();
  state.sel.forEach((id) => cy.getElementById(id).select());
  fillFilters();
  renderPanels();
  if (!relayout) return; // badges arrived: the status line stays as it was
  const shown = cy.nodes().length;
  const more = data.truncated ? ` (the ${state.max} nearest of ${data.truncated})` : "";
  say(`${data.nodes.size} CIs loaded${more}, ${shown} shapes drawn, ${groups.length} groups;`
      + ` layout ${Math.round(window.cmdb.timings?.layout ?? 0)} ms`);
  const centre = data.nodes.get(state.ci);
  $("title").textContent = centre ? `${centre.name} (${centre.ciClass})` : titleOfOverlay();
}

function titleOfOverlay() {
  if (state.change) return `Change ${state.change}`;
  if (state.impact.length) return "Change impact";
  if (state.route) return "Incident routing";
  if (state.cause.length) return "Probable cause";
  return "Search a CI, or pick a service below.";
}

const nameOf = (id) => data.nodes.get(id)?.name ?? id;

function focus(id) {
  const n = cy.getElementById(id);
  if (n.nonempty()) {
    state.sel = [id];
    cy.nodes().unselect();
    n.select();
    cy.animate({ center: { eles: n }, duration: 200 });
    showSelection();
  } else {
    openMap(id);
  }
}

function renderPanels() {
  if (panels.impact) {
    renderImpact($("impact-out"), panels.impact, panels.conflicts, panels.windows || [], nameOf, focus);
  } else {
    $("impact-out").replaceChildren();
  }
  if (panels.route) renderRoute($("route-out"), state.route, panels.route, nameOf, focus);
  else $("route-out").replaceChildren();
  if (panels.cause) {
    renderCause($("cause-out"), panels.cause, nameOf, focus, (id) => {
      state.pick = id;
      reload();
    });
  } else {
    $("cause-out").replaceChildren();
  }
  showSelection();
}

// -- filters -----------------------------------------------------------------------------------
function checks(box, values, hidden, labelOf, onChange) {
  const have = [...box.querySelectorAll("input")].map((i) => i.value).join("|");
  if (have === values.join("|")) {
    box.querySelectorAll("input").forEach((i) => { i.checked = !hidden.includes(i.value); });
    return;
  }
  box.replaceChildren(...values.map((v) => h("label", {},
    h("input", { type: "checkbox", value: v, checked: !hidden.includes(v),
                 onchange: (ev) => onChange(v, ev.target.checked) }), labelOf(v))));
}

function toggler(key, reloadAfter = false) {
  return (value, on) => {
    state[key] = on ? state[key].filter((v) => v !== value) : [...state[key], value];
    if (reloadAfter) reload();
    else render();
  };
}

function fillFilters() {
  const nodes = [...data.nodes.values()];
  const classes = [...new Set(nodes.map((n) => n.ciClass))].sort();
  const envs = [...new Set(nodes.map((n) => n.environment ?? "(none)"))].sort();
  const swatch = (c) => [h("span", { class: "swatch", style: `background:${(CLASSES[c] || ["#17becf"])[0]}` }), c];
  checks($("f-class"), classes, state.hideClass, swatch, toggler("hideClass"));
  checks($("f-rel"), relTypes(), state.hideRel, (r) => [h("span", { class: `line ${(RELS[r] || [])[1] || "solid"}`, style: `border-color:${(RELS[r] || ["#777"])[0]}` }), r], toggler("hideRel", true));
  checks($("f-env"), envs, state.hideEnv, (e) => e, toggler("hideEnv"));
  checks($("f-badge"), Object.keys(BADGES), state.hideBadge, (b) => BADGES[b], toggler("hideBadge"));
  $("depth").value = state.depth;
  $("dir").value = state.dir;
  $("max").value = state.max;
  $("group").value = state.group;
}

// -- selection and details ---------------------------------------------------------------------
function selected() {
  return state.sel.flatMap((id) => cy.getElementById(id).data("members") || [id]);
}

async function showSelection() {
  const box = $("selection");
  const ids = state.sel;
  if (!ids.length) return;
  if (ids.length > 1) {
    renderMany(box, selected(), nameOf, focus, [
      ["Impact of taking them down", () => startImpact()],
      ["Probable cause of incidents on them", () => startCause([])],
    ]);
    return;
  }
  try {
    const { ci } = await gql(DETAILS, { c: ids[0] });
    if (!ci || state.sel[0] !== ids[0]) return;
    renderDetails(box, ci, data.flags.get(ci.ciId), [
      ["Open map here", () => openMap(ci.ciId)],
      ["Expand", () => expand(ci.ciId)],
      ["Impact of taking it down", () => startImpact()],
      ["Route an incident", () => startRoute(ci.ciId)],
    ]);
  } catch (e) {
    box.textContent = e.message;
  }
}

function openMap(id) {
  Object.assign(state, { ci: id, x: [], open: [], sel: [id], impact: [], change: "", route: "",
                         cause: [], pick: "", tab: "details" });
  showTab("details");
  history.pushState(null, "", location.href);
  reload();
}

function expand(id) {
  if (!state.x.includes(id) && id !== state.ci) state.x = [...state.x, id];
  reload();
}

// -- overlays ----------------------------------------------------------------------------------
function startImpact() {
  const ids = selected();
  if (!ids.length) return say("Select one or more CIs on the map first.", true);
  Object.assign(state, { impact: ids, change: "", route: "", cause: [], tab: "impact" });
  $("change").value = "";
  showTab("impact");
  reload();
}

function startRoute(id) {
  Object.assign(state, { route: id, impact: [], change: "", cause: [], tab: "incident" });
  showTab("incident");
  reload();
}

function startCause(extra) {
  const ids = [...new Set([...extra, ...selected()])];
  if (ids.length < 1) return say("Tick incidents or select CIs first.", true);
  Object.assign(state, { cause: ids, pick: "", impact: [], change: "", route: "", tab: "incident" });
  showTab("incident");
  reload();
}

async function conflictsFor(changed) {
  if (state.change) {
    const found = (await gql(CONFLICTS, { chg: state.change })).changeConflicts;
    // the window fields show the recorded change's window
    if (found.change) showWindow(new Date(found.change.windowStart), new Date(found.change.windowEnd));
    return found;
  }
  const [ws, we] = windowInputs();
  return (await gql(PROPOSED_CONFLICTS, {
    p: { ciIds: changed, windowStart: ws, windowEnd: we, changeId: "proposed" },
  })).changeConflicts;
}

function windowInputs() {
  const start = state.ws ? new Date(state.ws + "Z") : new Date(Math.ceil(Date.now() / 3.6e6) * 3.6e6);
  const end = state.we ? new Date(state.we + "Z") : new Date(start.getTime() + 2 * 3.6e6);
  showWindow(start, end);
  return [start.toISOString(), end.toISOString()];
}

/** Show a window (two Dates) in the window fields, in UTC to the minute. */
function showWindow(start, end) {
  $("win-start").value = start.toISOString().slice(0, 16);
  $("win-end").value = end.toISOString().slice(0, 16);
}

async function windows() {
  lists.windows ??= (await gql(WINDOWS)).windows.edges.map((e) => e.node);
  return lists.windows;
}

async function fillChanges() {
  lists.changes ??= (await gql(CHANGES)).changes.edges.map((e) => e.node);
  $("change").replaceChildren(h("option", { value: "" }, "choose a change…"),
    ...lists.changes.map((c) => h("option", { value: c.changeId },
      `${c.changeId} ${c.title || ""} (${c.state.toLowerCase()})`)));
  $("change").value = state.change;
}

async function fillIncidents() {
  lists.incidents ??= (await gql(INCIDENTS)).incidents.edges.map((e) => e.node)
    .filter((i) => !["RESOLVED", "CLOSED"].includes(i.state));
  $("incidents").replaceChildren(...lists.incidents.map((i) => h("label", {},
    h("input", { type: "checkbox", value: i.incidentId, "data-cis": i.ciIds.join(","),
                 checked: i.ciIds.length > 0 && i.ciIds.every((c) => state.cause.includes(c)) }),
    `${i.incidentId} P${i.priority ?? "?"} ${i.title || ""}`)));
}

function showTab(name) {
  state.tab = name;
  document.querySelectorAll(".tabs button").forEach((b) => b.setAttribute("aria-selected", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== `tab-${name}`; });
  if (name === "impact") fillChanges().catch((e) => say(e.message, true));
  if (name === "incident") fillIncidents().catch((e) => say(e.message, true));
  writeUrl();
}

// -- search ------------------------------------------------------------------------------------
let searchTimer = 0;
async function runSearch() {
  const text = $("q").value.trim();
  const list = $("hits");
  if (!text) { list.hidden = true; return; }
  try {
    const res = unwrap((await gql(SEARCH, {
      t: text, cls: $("q-class").value || null, st: $("q-status").value || null,
    })).search);
    list.replaceChildren(...res.hits.map((hit) => h("li", { role: "option", "data-ci": hit.ci.ciId,
      onmousedown: () => { list.hidden = true; $("q").value = hit.ci.name; openMap(hit.ci.ciId); } },
      h("b", {}, hit.ci.name), ` ${hit.ci.ciClass} · ${hit.ci.operationalStatus.toLowerCase()}`,
      hit.matchedOn === "name" ? "" : h("small", {}, ` ${hit.matchedOn}: ${hit.value}`))),
      res.hits.length ? (res.truncated ? h("li", { class: "more" }, "more match: type more") : "")
        : h("li", { class: "more" }, "nothing found"));
    list.hidden = false;
  } catch (e) {
    say(e.message, true);
  }
}

async function showServices() {
  const { services } = await gql(SERVICES);
  $("services").replaceChildren(...services.edges.map(({ node }) => h("li", {},
    h("a", { href: "#", onclick: (ev) => { ev.preventDefault(); openMap(node.ciId); } }, node.name),
    node.businessCriticality ? ` (criticality ${node.businessCriticality})` : "")));
}

// -- export --------------------------------------------------------------------------------------
function download(blob, name) {
  const a = h("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function fileName(ext) {
  return `cmdb-map-${state.ci || state.change || "view"}.${ext}`;
}

// -- wiring ------------------------------------------------------------------------------------
function wire() {
  $("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const first = $("hits").querySelector("li[data-ci]");
    if (first) first.dispatchEvent(new MouseEvent("mousedown"));
  });
  $("q").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 200); });
  $("q").addEventListener("blur", () => setTimeout(() => { $("hits").hidden = true; }, 150));
  $("q-class").append(...Object.keys(CLASSES).sort().map((c) => h("option", { value: c }, c)));
  for (const id of ["q-class", "q-status"]) $(id).addEventListener("change", runSearch);
  for (const key of ["depth", "dir", "max", "group"]) {
    $(key).addEventListener("change", (ev) => {
      state[key] = NUMBERS.includes(key) ? Math.max(0, Number(ev.target.value) || 0) : ev.target.value;
      if (key === "group") render(); else reload();
    });
  }
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("impact-selected").addEventListener("click", startImpact);
  $("change").addEventListener("change", (ev) => {
    Object.assign(state, { change: ev.target.value, impact: [], route: "", cause: [] });
    reload();
  });
  for (const [id, key] of [["win-start", "ws"], ["win-end", "we"]]) {
    $(id).addEventListener("change", (ev) => { state[key] = ev.target.value; if (state.impact.length) reload(); });
  }
  $("route-selected").addEventListener("click", () => {
    const ids = selected();
    if (ids.length !== 1) return say("Select one CI on the map first.", true);
    startRoute(ids[0]);
  });
  $("cause").addEventListener("click", () => startCause(
    [...$("incidents").querySelectorAll("input:checked")].flatMap((i) => i.dataset.cis.split(","))));
  $("fit").addEventListener("click", () => cy.fit(undefined, 30));
  $("copy-link").addEventListener("click", async () => {
    writeUrl();
    try { await navigator.clipboard.writeText(location.href); say("Link copied."); }
    catch { say(`Link: ${location.href}`); }
  });
  $("export-svg").addEventListener("click", () => download(
    new Blob([toSvg(cy, $("title").textContent)], { type: "image/svg+xml" }), fileName("svg")));
  $("export-png").addEventListener("click", async () => download(
    await cy.png({ full: true, scale: 2, bg: "#ffffff", output: "blob-promise" }), fileName("png")));
  $("forget-key").hidden = !hasKey();
  $("forget-key").addEventListener("click", () => { forgetKey(); location.reload(); });

  cy.on("tap", "node", (ev) => {
    const id = ev.target.id();
    const key = ev.target.data("key");
    if (key) { // a group: open it (after cytoscape has finished with this tap)
      state.open = [...state.open, key];
      state.sel = [];
      setTimeout(render);
      return;
    }
    const add = ev.originalEvent?.shiftKey || ev.originalEvent?.ctrlKey || ev.originalEvent?.metaKey;
    state.sel = add ? [...new Set([...state.sel, id])] : [id];
    if (!add) cy.nodes().not(ev.target).unselect();
    writeUrl();
    showTab("details");
    showSelection();
  });
  cy.on("tap", (ev) => { if (ev.target === cy) { state.sel = []; writeUrl(); } });
  cy.on("dbltap", "node", (ev) => {
    if (!ev.target.data("key")) setTimeout(() => expand(ev.target.id()));
  });
  window.addEventListener("popstate", () => { state = readUrl(); reload(); });
  window.addEventListener("hashchange", () => { state = readUrl(); reload(); });
}

window.cmdb = { cy, data, state: () => state, colouredCIs: () => colouredCIs(cy), timings: null };
wire();
showTab(state.tab);
reload();
