// The drawn map as a standalone SVG document: every node with its shape, colours and label,
// every edge with its line style and arrow, at the positions of the current layout.

const NS = "http://www.w3.org/2000/svg";
const DASH = { dashed: "6 4", dotted: "1.5 3" };

const POLYGONS = {
  diamond: [[0, -1], [1, 0], [0, 1], [-1, 0]],
  hexagon: [[-0.5, -1], [0.5, -1], [1, 0], [0.5, 1], [-0.5, 1], [-1, 0]],
  octagon: [[-0.4, -1], [0.4, -1], [1, -0.4], [1, 0.4], [0.4, 1], [-0.4, 1], [-1, 0.4], [-1, -0.4]],
  "cut-rectangle": [[-0.7, -1], [0.7, -1], [1, -0.7], [1, 0.7], [0.7, 1], [-0.7, 1], [-1, 0.7], [-1, -0.7]],
};

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function num(v) {
  return Math.round(v * 10) / 10;
}

function shapeOf(node) {
  const { x, y } = node.position();
  const w = node.width() / 2;
  const h = node.height() / 2;
  const shape = node.style("shape");
  if (shape === "ellipse") return el("ellipse", { cx: num(x), cy: num(y), rx: num(w), ry: num(h) });
  if (POLYGONS[shape]) {
    const points = POLYGONS[shape].map(([px, py]) => `${num(x + px * w)},${num(y + py * h)}`);
    return el("polygon", { points: points.join(" ") });
  }
  const r = shape === "barrel" ? h * 0.6 : shape === "round-rectangle" ? 6 : 0;
  return el("rect", { x: num(x - w), y: num(y - h), width: num(2 * w), height: num(2 * h),
                      rx: num(r) });
}

function nodeElement(node) {
  const g = el("g", { class: "node", "data-id": node.id() });
  const shape = shapeOf(node);
  shape.setAttribute("fill", node.style("background-color"));
  shape.setAttribute("stroke", node.style("border-color"));
  shape.setAttribute("stroke-width", parseFloat(node.style("border-width")));
  g.append(shape);
  const opacity = parseFloat(node.style("opacity"));
  if (opacity < 1) g.setAttribute("opacity", opacity);
  const lines = String(node.data("label") ?? "").split("\n");
  const size = parseFloat(node.style("font-size"));
  const top = node.position().y + node.height() / 2 + 3 + size;
  lines.forEach((line, i) => g.append(el("text", {
    x: num(node.position().x), y: num(top + i * size * 1.2), "font-size": size,
    "text-anchor": "middle", "font-family": "sans-serif", fill: node.style("color"),
  }, line)));
  return g;
}

function arrow(tip, from, colour, hollow) {
  const dx = tip.x - from.x;
  const dy = tip.y - from.y;
  const len = Math.hypot(dx, dy) || 1;
  const [ux, uy] = [dx / len, dy / len];
  const [bx, by] = [tip.x - ux * 8, tip.y - uy * 8];
  const pts = [[tip.x, tip.y], [bx - uy * 4, by + ux * 4], [bx + uy * 4, by - ux * 4]];
  return el("polygon", { points: pts.map(([x, y]) => `${num(x)},${num(y)}`).join(" "),
                         fill: hollow ? "#fff" : colour, stroke: colour });
}

function edgeElement(edge) {
  const g = el("g", { class: "edge", "data-rel": edge.data("relType") });
  const s = edge.sourceEndpoint();
  const t = edge.targetEndpoint();
  const bends = edge.segmentPoints() || edge.controlPoints() || [];
  const colour = edge.style("line-color");
  const d = [`M${num(s.x)},${num(s.y)}`, ...bends.map((p) => `L${num(p.x)},${num(p.y)}`),
             `L${num(t.x)},${num(t.y)}`].join(" ");
  g.append(el("path", { d, fill: "none", stroke: colour,
                        "stroke-width": parseFloat(edge.style("width")),
                        "stroke-dasharray": DASH[edge.style("line-style")] }));
  const hollow = edge.data("optional");
  if (edge.data("reversed")) g.append(arrow(s, bends[0] || t, colour, hollow));
  else g.append(arrow(t, bends[bends.length - 1] || s, colour, hollow));
  const opacity = parseFloat(edge.style("opacity"));
  if (opacity < 1) g.setAttribute("opacity", opacity);
  return g;
}

/** The whole drawn graph (not only the part in view) as SVG text. */
export function toSvg(cy, title) {
  const bb = cy.elements(":visible").boundingBox({ includeLabels: true });
  const pad = 20;
  const svg = el("svg", {
    xmlns: NS, width: num(bb.w + 2 * pad), height: num(bb.h + 2 * pad),
    viewBox: `${num(bb.x1 - pad)} ${num(bb.y1 - pad)} ${num(bb.w + 2 * pad)} ${num(bb.h + 2 * pad)}`,
  });
  svg.append(el("title", {}, title));
  svg.append(el("rect", { x: num(bb.x1 - pad), y: num(bb.y1 - pad), width: num(bb.w + 2 * pad),
                          height: num(bb.h + 2 * pad), fill: "#fff" }));
  cy.edges(":visible").forEach((e) => svg.append(edgeElement(e)));
  cy.nodes(":visible").forEach((n) => svg.append(nodeElement(n)));
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
}
