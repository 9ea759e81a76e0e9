// Runs the graphql-http project's server audit (its auditServer function) against the
// GraphQL endpoint given as the first argument and prints the results as one JSON array:
// [{"id", "name", "status": "ok" | "warn" | "error", "reason"}]. The folder that holds the
// graphql-http package (a node_modules folder) comes from GRAPHQL_HTTP_MODULES.
"use strict";
const path = require("node:path");

const modules = process.env.GRAPHQL_HTTP_MODULES;
if (!modules) {
  console.error("GRAPHQL_HTTP_MODULES is not set");
  process.exit(2);
}
const { auditServer } = require(path.resolve(modules, "graphql-http"));

(async () => {
  const results = await auditServer({ url: process.argv[2] });
  const out = results.map((r) => ({
    id: r.id,
    name: r.name,
    status: r.status,
    reason: r.status === "ok" ? null : r.reason,
  }));
  process.stdout.write(JSON.stringify(out));
})().catch((err) => {
  console.error(String(err));
  process.exit(1);
});
