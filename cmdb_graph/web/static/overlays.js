// Loading what the map shows: neighbourhoods, the CIs and relationships an answer names, the
// data-quality flags, and the three overlays (change impact, incident routing, probable cause).

import { gql, unwrap } from "./api.js";
import {
  CAUSE, CI_SELECTION, FLAGS, IMPACT, NB_SELECTION, NEIGHBOURHOOD, PATH_SELECTION, REL_SELECTION,
  ROUTE, aliased,
} from "./queries.js";

const ALIASES = 18; // the server allows 20 aliases per operation
const FLAG_PAGE = 1000; // the server's page cap
/** Past this many impacted CIs, draw only the services, their paths and what is on the map. */
export const IMPACT_DRAW_CAP = 600;
const SERVICE_KINDS = new Set(["business_service", "application_service"]);

export function emptyOverlay() {
  return {
    status: new Map(), changed: new Set(), affected: new Set(), cause: null, routed: null,
    path: new Set(), route: new Set(), onPath: new Set(), keep: new Set(), fade: false,
  };
}

function chunks(list, size) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/** Ask `field` once per item of `items` (aliases, a few operations); answers in order. */
async function each(field, args, selection, items) {
  const out = [];
  for (const part of chunks(items, ALIASES)) {
    const vars = {};
    part.forEach((item, i) => args.forEach(([name], j) => { vars[`${name}${i}`] = item[j]; }));
    const data = await gql(aliased(field, args, selection, part.length), vars);
    part.forEach((_, i) => out.push(data[`a${i}`]));
  }
  return out;
}

export async function loadNeighbourhood(data, ciId, state, depth = state.depth) {
  const rel = state.hideRel.length ? state.relTypes.filter((r) => !state.hideRel.includes(r))
    : null;
  const nb = unwrap((await gql(NEIGHBOURHOOD, {
    c: ciId, d: depth, dir: state.dir.toUpperCase(), rel, max: state.max,
  })).neighbourhood);
  const offset = ciId === state.ci ? 0 : data.nodes.get(ciId)?.distance ?? 0;
  data.addNeighbourhood(nb, Math.min(offset, 50));
  return nb;
}

/** Load the CIs among `ids` that the map does not have yet. */
export async function ensureNodes(data, ids) {
  const missing = [...new Set(ids)].filter((id) => id && !data.nodes.has(id));
  const found = await each("ci", [["ciId", "ID!"]], CI_SELECTION, missing.map((id) => [id]));
  for (const ci of found) if (ci) data.addNode(ci);
}

/** Load the relationships among `ids` (a short path's CIs). */
async function ensureLinks(data, ids) {
  const wanted = new Set(ids);
  const found = await each("relationships", [["ciId", "ID!"]], REL_SELECTION,
                           [...wanted].map((id) => [id]));
  for (const rels of found) {
    for (const r of rels) {
      if (wanted.has(r.sourceId) && wanted.has(r.targetId)) {
        data.addEdge({ source: r.sourceId, target: r.targetId, relType: r.relType,
                       optional: r.optional });
      }
    }
  }
}

/** The data-quality flags of every CI on the map that has none loaded yet. */
export async function loadFlags(data) {
  const ids = [...data.nodes.keys()].filter((id) => !data.flags.has(id));
  for (const part of chunks(ids, FLAG_PAGE)) {
    const res = unwrap((await gql(FLAGS, { ids: part })).qualityFlags);
    for (const c of res.cis) data.flags.set(c.ciId, c.flags);
  }
}

/** Change impact: colour the impacted CIs, add those missing, highlight the explaining
 * paths. Returns the impact answer. */
export async function loadImpact(data, ov, { ciIds, changeId }) {
  const res = unwrap((await gql(IMPACT, {
    ids: changeId ? null : ciIds, chg: changeId || null,
  })).changeImpact);
  await ensureNodes(data, res.changed);
  let drawn = res.impacted;
  if (drawn.length > IMPACT_DRAW_CAP) {
    const services = drawn.filter((i) => SERVICE_KINDS.has(i.kind));
    const onPaths = new Set(services.flatMap((s) => s.paths[0] || []));
    drawn = drawn.filter((i) => SERVICE_KINDS.has(i.kind) || onPaths.has(i.ciId)
                                || data.nodes.has(i.ciId));
  }
  res.changed.forEach((c) => { ov.changed.add(c); ov.keep.add(c); });
  for (const i of drawn) {
    data.addNode(i);
    ov.status.set(i.ciId, i.status);
    if (SERVICE_KINDS.has(i.kind)) ov.keep.add(i.ciId);
  }
  const inView = new Set([...res.changed, ...drawn.map((i) => i.ciId)]);
  // the relationships among them, with their types: the upstream neighbourhoods of the
  // changed CIs (what their failure can reach)
  const depth = Math.min(12, Math.max(1, ...drawn.map((i) => i.depth)));
  const hoods = await each("neighbourhood",
    [["ciId", "ID!"], ["depth", "Int!"], ["direction", "TraversalDirection!"], ["maxNodes", "Int"]],
    NB_SELECTION, res.changed.map((c) => [c, depth, "UPSTREAM", 5000]));
  for (const nb of hoods) {
    if (nb.__typename !== "Neighbourhood") continue;
    for (const e of nb.edges) if (inView.has(e.source) && inView.has(e.target)) data.addEdge(e);
  }
  for (const i of drawn) {
    for (const p of i.paths) {
      if (!p.every((id) => inView.has(id))) continue;
      for (let k = 0; k + 1 < p.length; k++) {
        ov.path.add(data.addHop(p[k + 1], p[k], null));
        ov.onPath.add(p[k]).add(p[k + 1]);
      }
    }
  }
  ov.fade = true;
  return { ...res, drawn: drawn.length };
}

/** Incident routing: the path from the CI down to the CI whose support group is taken. */
export async function loadRoute(data, ov, ciId) {
  const r = unwrap((await gql(ROUTE, { c: ciId })).routeIncident);
  const path = r.path.length ? r.path : [ciId];
  await ensureNodes(data, path);
  await ensureLinks(data, path);
  for (let k = 0; k + 1 < path.length; k++) ov.route.add(data.addHop(path[k], path[k + 1], null));
  path.forEach((id) => { ov.keep.add(id); ov.onPath.add(id); });
  ov.affected.add(ciId);
  ov.routed = r.routedVia;
  ov.fade = true;
  return r;
}

/** Probable cause of incidents on `ciIds`: the chosen candidate (default the best) and the
 * paths from each CI it explains down to it. */
export async function loadCause(data, ov, ciIds, pick) {
  const r = unwrap((await gql(CAUSE, { ids: ciIds })).probableCause);
  const cand = r.candidates.find((c) => c.ciId === pick) || r.candidates[0] || null;
  await ensureNodes(data, [...ciIds, cand?.ciId]);
  ciIds.forEach((id) => { ov.affected.add(id); ov.keep.add(id); ov.onPath.add(id); });
  if (cand) {
    ov.cause = cand.ciId;
    ov.keep.add(cand.ciId);
    const found = await each("paths",
      [["source", "ID!"], ["target", "ID!"], ["maxPaths", "Int!"], ["direction", "TraversalDirection!"]],
      PATH_SELECTION, cand.explains.filter((a) => a !== cand.ciId)
        .map((a) => [a, cand.ciId, 1, "DOWNSTREAM"]));
    for (const res of found) {
      const p = res.paths?.[0];
      if (!p) continue;
      await ensureNodes(data, p.ciIds);
      for (let k = 0; k + 1 < p.ciIds.length; k++) {
        ov.path.add(data.addHop(p.ciIds[k], p.ciIds[k + 1], p.relTypes[k]));
      }
      p.ciIds.forEach((id) => { ov.onPath.add(id); ov.keep.add(id); });
    }
  }
  ov.fade = true;
  return { ...r, chosen: cand };
}
