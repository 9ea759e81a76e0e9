// How the map looks: colour and shape per CI class, line style per relationship type, the
// overlay colours, and the cytoscape stylesheet built from them.

/** Colour and shape of the CI classes of the default registry. */
export const CLASSES = {
  BusinessService: ["#6a3d9a", "round-rectangle"],
  ApplicationService: ["#9e7cc1", "round-rectangle"],
  Service: ["#9e7cc1", "round-rectangle"],
  Application: ["#33a02c", "ellipse"],
  Database: ["#b15928", "barrel"],
  Middleware: ["#66c2a5", "ellipse"],
  Container: ["#a6d854", "ellipse"],
  Cluster: ["#ff7f00", "hexagon"],
  VirtualMachine: ["#1f78b4", "rectangle"],
  CloudResource: ["#6baed6", "rectangle"],
  Server: ["#5d6d7e", "cut-rectangle"],
  Hypervisor: ["#2e4053", "cut-rectangle"],
  Hardware: ["#5d6d7e", "cut-rectangle"],
  NetworkDevice: ["#e31a1c", "diamond"],
  StorageDevice: ["#fb9a99", "barrel"],
  StorageVolume: ["#f4cccc", "barrel"],
  Network: ["#fdbf6f", "diamond"],
  Datacenter: ["#8c8c8c", "octagon"],
  Rack: ["#bdbdbd", "rectangle"],
};
const OTHER = ["#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#8c564b", "#9467bd"];

export function classLook(ciClass) {
  if (CLASSES[ciClass]) return CLASSES[ciClass];
  let h = 0;
  for (const c of ciClass) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return [OTHER[h % OTHER.length], "ellipse"];
}

/** Line colour and style per relationship type. */
export const RELS = {
  DEPENDS_ON: ["#444", "solid"],
  RUNS_ON: ["#1f78b4", "solid"],
  HOSTED_ON: ["#1f78b4", "dashed"],
  MEMBER_OF: ["#ff7f00", "dotted"],
  CONNECTS_TO: ["#999", "solid"],
  LOCATED_IN: ["#aaa", "dotted"],
  CONTAINS: ["#aaa", "dashed"],
};

export function relLook(relType) {
  return RELS[relType] || ["#777", "solid"];
}

/** Relationship types whose END depends on their start (the default registry's
 * START_TO_END types: a cluster needs its members, a rack's failure reaches what it holds). */
export const END_NEEDS_START = new Set(["MEMBER_OF", "CONTAINS"]);

export const STATUS_COLOURS = { DOWN: "#d7191c", DEGRADED: "#fdae61" };

/** Data-quality badges: short label shown on the node. */
export const BADGES = {
  orphan: "orphan",
  stale: "stale",
  duplicate: "duplicate?",
  past_warranty: "past warranty",
  unowned: "no owner",
  retired_in_use: "retired in use",
  unmanaged: "unmanaged",
};

export function stylesheet() {
  const s = [
    { selector: "node", style: {
      label: "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 3,
      "text-wrap": "wrap", "text-max-width": 150, color: "#222",
      "background-color": "data(colour)", shape: "data(shape)", width: 34, height: 26,
      "border-width": 1, "border-color": "#333",
    } },
    { selector: "node[?service]", style: { width: 56, height: 30 } },
    { selector: "node.group", style: {
      "border-width": 3, "border-style": "double", width: 46, height: 34,
    } },
    { selector: "node.centre", style: { "border-width": 3, "border-color": "#000" } },
    { selector: "node[?flagged]", style: { "font-style": "italic" } },
    { selector: "node:selected", style: {
      "overlay-color": "#2b83ba", "overlay-opacity": 0.25, "overlay-padding": 6,
    } },
    { selector: "edge", style: {
      width: 1.5, "curve-style": "bezier", "line-color": "data(colour)",
      "line-style": "data(lineStyle)", "target-arrow-shape": "triangle",
      "target-arrow-color": "data(colour)", "arrow-scale": 0.8,
    } },
    // drawn in dependency order (dependent -> what it needs), the arrow still shows how the
    // relationship is stored: member -> cluster
    { selector: "edge[?reversed]", style: {
      "target-arrow-shape": "none", "source-arrow-shape": "triangle",
      "source-arrow-color": "data(colour)",
    } },
    { selector: "edge[?optional]", style: {
      opacity: 0.55, "target-arrow-fill": "hollow", "source-arrow-fill": "hollow",
    } },
    { selector: ".faded", style: { opacity: 0.25 } },
    { selector: "node.down", style: { "background-color": STATUS_COLOURS.DOWN } },
    { selector: "node.degraded", style: { "background-color": STATUS_COLOURS.DEGRADED } },
    { selector: "node.changed", style: {
      "border-width": 4, "border-color": "#000", "background-color": "#000",
    } },
    { selector: "node.cause", style: {
      "border-width": 5, "border-color": "#d7191c", "background-color": "#fff",
    } },
    { selector: "node.affected", style: { "border-width": 4, "border-color": "#fdae61" } },
    { selector: "node.routed", style: { "border-width": 5, "border-color": "#1a9641" } },
    { selector: "edge.path", style: {
      width: 4, "line-color": "#d7191c", "target-arrow-color": "#d7191c",
      "source-arrow-color": "#d7191c", opacity: 1, "z-index": 10,
    } },
    { selector: "edge.route", style: {
      width: 4, "line-color": "#1a9641", "target-arrow-color": "#1a9641",
      "source-arrow-color": "#1a9641", opacity: 1, "z-index": 10,
    } },
  ];
  return s;
}
