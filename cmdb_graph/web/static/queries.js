// The GraphQL operations the map sends (all of them documented in graphql/schema.graphql).

const CI_BRIEF = "ciId name ciClass operationalStatus environment businessCriticality";

export const SEARCH = `query($t: String!, $cls: String, $st: OperationalStatus) {
  search(text: $t, ciClass: $cls, status: $st, first: 15) { __typename
    ... on SearchResults { truncated hits { matchedOn value ci { ${CI_BRIEF} } } }
    ... on UserError { code message } } }`;

export const NEIGHBOURHOOD = `query($c: ID!, $d: Int!, $dir: TraversalDirection!,
    $rel: [String!], $max: Int) {
  neighbourhood(ciId: $c, depth: $d, direction: $dir, relTypes: $rel, maxNodes: $max) {
    __typename
    ... on Neighbourhood { totalNodes truncated
      nodes { ciId name ciClass distance ci { operationalStatus environment businessCriticality } }
      edges { source target relType optional } }
    ... on UserError { code message } } }`;

export const DETAILS = `query($c: ID!) { ci(ciId: $c) {
  ${CI_BRIEF} description fqdn hostname serialNumber assetTag cloudId ipAddresses
  redundancy lastSeen duplicateOf lineage { sources { source nativeKey lastSeen } }
  supportGroup { name email } owner { name email } } }`;

export const FLAGS = `query($ids: [ID!]!) { qualityFlags(ciIds: $ids) { __typename
  ... on QualityFlags { cis { ciId flags { badge report detail } } }
  ... on UserError { code message } } }`;

export const SERVICES = `{ services(kind: "BusinessService", first: 100) { totalCount
  edges { node { ciId name businessCriticality } } } }`;

export const CHANGES = `{ changes(first: 500) { edges { node {
  changeId title state windowStart windowEnd ciIds risk supportGroup } } } }`;

export const INCIDENTS = `{ incidents(first: 500) { edges { node {
  incidentId title state priority openedAt ciIds } } } }`;

export const WINDOWS = `{ windows(first: 500) { edges { node {
  windowId name kind start end recurrence ciIds } } } }`;

export const IMPACT = `query($ids: [ID!], $chg: String) {
  changeImpact(ciIds: $ids, changeId: $chg, pathsPerCi: 3) { __typename
    ... on ChangeImpact { changed truncated depthLimit
      impacted { ciId name ciClass kind status depth businessCriticality paths inService
                 operationalStatus confidence links { basis confidence evidence }
                 ci { operationalStatus environment } }
      summary { total servicesHit mostCriticalService mostCriticalLevel
                byStatus { key count } } }
    ... on UserError { code message } } }`;

const CONFLICT_FIELDS = `__typename
  ... on ChangeConflicts { hasConflicts change { changeId title windowStart windowEnd ciIds }
    conflicts { kind otherChangeIds windowId ciIds detail } }
  ... on UserError { code message }`;

export const CONFLICTS = `query($chg: String!) {
  changeConflicts(changeId: $chg) { ${CONFLICT_FIELDS} } }`;

export const PROPOSED_CONFLICTS = `query($p: ProposedChangeInput!) {
  changeConflicts(proposed: $p) { ${CONFLICT_FIELDS} } }`;

export const ROUTE = `query($c: ID!) { routeIncident(ciId: $c) { __typename
  ... on Routing { supportGroupId routedVia path reason
                   supportGroup { name email manager } }
  ... on UserError { code message } } }`;

export const CAUSE = `query($ids: [ID!]!) { probableCause(ciIds: $ids) { __typename
  ... on ProbableCauses { affected candidates { ciId name ciClass explains distance
    recentChanges openIncidents supportGroup { name email } } }
  ... on UserError { code message } } }`;

/** One query asking the same field for several arguments, as aliases a0, a1, ... */
export function aliased(field, args, selection, count) {
  const vars = [];
  const parts = [];
  for (let i = 0; i < count; i++) {
    vars.push(...args.map(([name, type]) => `$${name}${i}: ${type}`));
    const call = args.map(([name]) => `${name}: $${name}${i}`).join(", ");
    parts.push(`a${i}: ${field}(${call}) { ${selection} }`);
  }
  return `query(${vars.join(", ")}) { ${parts.join("\n")} }`;
}

export const CI_SELECTION = CI_BRIEF;
export const PATH_SELECTION = `__typename ... on Paths { paths { ciIds relTypes } }
  ... on UserError { code message }`;
export const REL_SELECTION = "relType sourceId targetId optional";
export const NB_SELECTION = `__typename ... on Neighbourhood {
  nodes { ciId name ciClass distance } edges { source target relType optional } }
  ... on UserError { code message }`;
