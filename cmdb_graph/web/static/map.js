// The map's data (the CIs and relationships loaded so far), what of it is shown (filters,
// groups of alike CIs, overlays), and drawing it with cytoscape and ELK's layered layout.

import { BADGES, END_NEEDS_START, classLook, relLook, stylesheet } from "./look.js";

cytoscape.use(cytoscapeElk);

const SERVICES = new Set(["BusinessService", "ApplicationService", "Service"]);
const FAR = 99;

/** The CIs and relationships loaded so far, merged from every answer. */
export class MapData {
  constructor() {
    this.nodes = new Map(); // ciId -> {ciId, name, ciClass, distance, status, environment, ...}
    this.edges = new Map(); // "REL|source|target" -> {source, target, relType, optional}
    this.flags = new Map(); // ciId -> [{badge, detail}]
  }

  clear() {
    this.nodes.clear();
    this.edges.clear();
    this.flags.clear();
  }

  /** Add or complete a CI; `ci` may carry a nested `ci {environment operationalStatus ...}`. */
  addNode(n) {
    const old = this.nodes.get(n.ciId) || { distance: FAR };
    const full = n.ci || {};
    this.nodes.set(n.ciId, {
      ...old,
      ciId: n.ciId,
      name: n.name ?? full.name ?? old.name ?? n.ciId,
      ciClass: n.ciClass ?? full.ciClass ?? old.ciClass ?? "ConfigurationItem",
      distance: Math.min(old.distance, n.distance ?? FAR),
      status: n.operationalStatus ?? full.operationalStatus ?? old.status,
      environment: n.environment ?? full.environment ?? old.environment ?? null,
      criticality: n.businessCriticality ?? full.businessCriticality ?? old.criticality ?? null,
    });
  }

  /** Add a relationship as stored (dependent -> what it needs for most types). */
  addEdge(e) {
    const key = `${e.relType}|${e.source}|${e.target}`;
    if (!this.edges.has(key)) this.edges.set(key, { ...e, optional: Boolean(e.optional) });
    return key;
  }

  /** The key of a loaded relationship between `a` and `b` (either way), or null. */
  linkBetween(a, b) {
    for (const [key, e] of this.edges) {
      if ((e.source === a && e.target === b) || (e.source === b && e.target === a)) return key;
    }
    return null;
  }

  /** Add the relationship of a hop "`dependent` needs `dependency`" (a path step), stored
   * the way its type stores it; `relType` null when unknown. Returns the edge key. */
  addHop(dependent, dependency, relType) {
    const known = this.linkBetween(dependent, dependency);
    if (known) return known;
    const type = (relType || "DEPENDS_ON").split("|")[0];
    const [source, target] = END_NEEDS_START.has(type)
      ? [dependency, dependent] : [dependent, dependency];
    return this.addEdge({ source, target, relType: relType ? type : "IMPACT_PATH" });
  }

  /** Merge a neighbourhood answer; its distances count from its centre, `offset` hops from
   * the map's centre. */
  addNeighbourhood(nb, offset = 0) {
    for (const n of nb.nodes) this.addNode({ ...n, distance: n.distance + offset });
    for (const e of nb.edges) this.addEdge(e);
  }
}

/**
 * What to show: `view` = {centre, keep: Set, hideClass, hideEnv, hideRel, hideBadge: Set,
 * open: Set of group keys, threshold, overlay}; overlay = {status: Map ciId -> DOWN|DEGRADED,
 * changed, affected: Set, cause, routed: ciId, path, route: Set of edge keys, fade: bool}.
 * Returns the cytoscape elements and the groups made.
 */
export function elements(data, view) {
  const ov = view.overlay;
  const shown = new Map();
  for (const n of data.nodes.values()) {
    const pinned = n.ciId === view.centre || view.keep.has(n.ciId);
    if (!pinned && (view.hideClass.has(n.ciClass) || view.hideEnv.has(n.environment ?? "(none)"))) {
      continue;
    }
    shown.set(n.ciId, n);
  }
  const links = [...data.edges.entries()].filter(
    ([key, e]) => shown.has(e.source) && shown.has(e.target)
      && (!view.hideRel.has(e.relType) || ov.path.has(key) || ov.route.has(key)));
  const rep = groupsOf(shown, links, view);
  const out = [];
  const groups = new Map();
  for (const n of shown.values()) {
    const g = rep.get(n.ciId);
    if (g) {
      if (!groups.has(g.id)) groups.set(g.id, { ...g, members: [] });
      groups.get(g.id).members.push(n);
      continue;
    }
    out.push({ group: "nodes", data: nodeData(n, data.flags.get(n.ciId), view),
               classes: nodeClasses(n.ciId, view) });
  }
  for (const g of groups.values()) out.push(groupElement(g, ov));
  const seen = new Set();
  for (const [key, e] of links) {
    const reversed = END_NEEDS_START.has(e.relType);
    let [s, t] = reversed ? [e.target, e.source] : [e.source, e.target];
    s = rep.get(s)?.id ?? s;
    t = rep.get(t)?.id ?? t;
    const id = `${e.relType}|${s}|${t}`;
    if (s === t || seen.has(id)) continue;
    seen.add(id);
    const [colour, lineStyle] = e.relType === "IMPACT_PATH" ? ["#d7191c", "dashed"]
      : relLook(e.relType);
    const onPath = ov.path.has(key) ? "path" : ov.route.has(key) ? "route" : "";
    const faded = ov.fade && !onPath ? "faded" : "";
    out.push({ group: "edges", classes: `${onPath} ${faded}`.trim(), data: {
      id, source: s, target: t, relType: e.relType, colour, lineStyle, reversed,
      optional: e.optional, key,
    } });
  }
  return { elements: out, groups: [...groups.values()] };
}

function nodeData(n, flags, view) {
  const [colour, shape] = classLook(n.ciClass);
  const badges = (flags || []).filter((f) => !view.hideBadge.has(f.badge));
  const label = badges.length
    ? `${n.name}\n⚑ ${badges.map((f) => BADGES[f.badge] || f.badge).join(" · ")}` : n.name;
  return { id: n.ciId, label, colour, shape, ciClass: n.ciClass, service: SERVICES.has(n.ciClass),
           flagged: badges.length > 0 };
}

function nodeClasses(id, view) {
  const ov = view.overlay;
  const c = [];
  const status = ov.status.get(id);
  if (status) c.push(status.toLowerCase());
  if (ov.changed.has(id)) c.push("changed");
  if (ov.affected.has(id)) c.push("affected");
  if (ov.cause === id) c.push("cause");
  if (ov.routed === id) c.push("routed");
  if (id === view.centre) c.push("centre");
  if (ov.fade && !c.length && !ov.onPath.has(id)) c.push("faded");
  return c.join(" ");
}

/** ciId -> its group ({id, key, ciClass, status}) for CIs folded into a group. CIs of one
 * class (and overlay status) hanging off the same nearer CI (or group) form a group when there
 * are more than `view.threshold` of them, unless the group was opened or a CI is pinned. Two
 * passes: clusters whose members were grouped are grouped by that group in the second. */
function groupsOf(shown, links, view) {
  const rep = new Map();
  if (!view.threshold) return rep;
  const near = nearest(shown, links);
  for (let pass = 0; pass < 2; pass++) {
    const buckets = new Map();
    for (const n of shown.values()) {
      if (rep.has(n.ciId) || n.ciId === view.centre || view.keep.has(n.ciId)) continue;
      const status = view.overlay.status.get(n.ciId) || "";
      const anchor = near.get(n.ciId);
      const key = `${n.ciClass}~${status}~${anchor ? rep.get(anchor)?.id ?? anchor : "-"}`;
      if (!buckets.has(key)) buckets.set(key, []);
      buckets.get(key).push(n);
    }
    for (const [key, members] of buckets) {
      if (members.length <= view.threshold || view.open.has(key)) continue;
      const [ciClass, status] = key.split("~");
      const g = { id: `group:${key}`, key, ciClass, status };
      for (const n of members) rep.set(n.ciId, g);
    }
  }
  return rep;
}

/** ciId -> the id of its neighbour nearest the centre (ties by ci_id). */
function nearest(shown, links) {
  const near = new Map();
  for (const [, e] of links) {
    for (const [a, b] of [[e.source, e.target], [e.target, e.source]]) {
      const nb = shown.get(b);
      const cur = near.get(a) && shown.get(near.get(a));
      if (!cur || nb.distance < cur.distance || (nb.distance === cur.distance && b < cur.ciId)) {
        near.set(a, b);
      }
    }
  }
  return near;
}

function groupElement(g, ov) {
  const [colour, shape] = classLook(g.ciClass);
  const count = g.members.length;
  const status = g.status ? ` · ${g.status.toLowerCase()}` : "";
  return {
    group: "nodes",
    classes: ["group", g.status.toLowerCase(), ov.fade && !g.status ? "faded" : ""].join(" ").trim(),
    data: { id: g.id, key: g.key, label: `${count} × ${g.ciClass}${status}\n(click to open)`,
            colour, shape, ciClass: g.ciClass, members: g.members.map((m) => m.ciId) },
  };
}

export function newMap(container) {
  return cytoscape({
    container, style: stylesheet(), minZoom: 0.05, maxZoom: 3,
    selectionType: "additive", boxSelectionEnabled: true,
  });
}

/** Below this zoom labels cannot be read: the map is then shown from its centre CI. */
const READABLE = 0.55;

/** Replace the map's elements and lay them out left to right in dependency order; when the
 * whole map is too large to read, show it at a readable zoom from the CI `focus`.
 * Returns timings in ms: layout (ELK) and draw (until the next frame is painted). */
export async function draw(cy, els, focus = null) {
  const t0 = performance.now();
  cy.startBatch();
  cy.elements().remove();
  cy.add(els);
  cy.endBatch();
  // past a few hundred CIs, fewer crossing-minimisation sweeps and no greedy switching: a
  // 1,000-CI neighbourhood lays out ten times faster, a little less tidy (bench/ui.py)
  const big = cy.nodes().length > 300
    ? { "elk.layered.thoroughness": 1, "elk.layered.crossingMinimization.greedySwitch.type": "OFF" }
    : {};
  const layout = cy.layout({
    name: "elk", fit: true, padding: 30, animate: false, nodeDimensionsIncludeLabels: true,
    elk: {
      algorithm: "layered",
      "elk.direction": "RIGHT",
      "elk.layered.spacing.nodeNodeBetweenLayers": 70,
      "elk.spacing.nodeNode": 14,
      ...big,
    },
  });
  const stopped = layout.promiseOn("layoutstop");
  layout.run();
  await stopped;
  if (cy.zoom() > 1.3) { // a few CIs: not larger than life
    cy.zoom(1.3);
    cy.center();
  } else if (cy.zoom() < READABLE && focus && cy.getElementById(focus).nonempty()) {
    // too large to read whole: readable size, the CI `focus` near the edge of the view on the
    // side where the map ends nearer it (a service's map spreads to its right, an impact to
    // the left of the changed CI)
    const bb = cy.elements().boundingBox();
    const { x } = cy.getElementById(focus).position();
    cy.zoom(READABLE);
    const at = cy.getElementById(focus).renderedPosition();
    const left = x - bb.x1 < bb.x2 - x;
    cy.panBy({ x: (left ? 80 : cy.width() - 80) - at.x, y: cy.height() / 2 - at.y });
  }
  const t1 = performance.now();
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return { layout: t1 - t0, draw: performance.now() - t1 };
}

/** The CI ids drawn with a status colour (group members count for their group). */
export function colouredCIs(cy) {
  const out = [];
  cy.nodes(".down, .degraded").forEach((n) => {
    if (n.data("members")) out.push(...n.data("members"));
    else out.push(n.id());
  });
  return out.sort();
}
