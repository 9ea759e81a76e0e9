"""The baselines: a plain ``UNWIND ... MERGE`` loader, hand-written Cypher, networkx, scipy.

None of this is product code. Labels and relationship types come from the product's registry
(never from data); values go as parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import networkx as nx
import numpy as np
from neo4j import Driver
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from cmdb_graph.model import Registry

__all__ = ["PlainLoader", "CypherImpact", "NxImpact", "CsrImpact"]

#: Cartography's batch size.
PLAIN_BATCH = 10_000

#: CI row fields the plain loader writes as node properties (scalars and string lists).
_PLAIN_PROPS = (
    "name", "ci_class", "operational_status", "environment", "business_criticality",
    "description", "fqdn", "hostname", "domain", "serial_number", "asset_tag", "mac_addresses",
    "ip_addresses", "manufacturer", "model", "os_name", "os_version", "version", "redundancy",
    "first_seen", "last_seen",
)  # fmt: skip


def _chunks(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


class PlainLoader:
    """The Cartography-style loader: UNWIND batches of 10,000 rows, MERGE by key, SET props.

    One statement per CI class (the class label is static in the query, as Cartography's schema
    generates it) and one per relationship type; each batch in its own managed write
    transaction. It does no identification, no reconciliation and no lineage: it trusts the
    rows' ``ci_id``.
    """

    def __init__(self, driver: Driver, registry: Registry, database: str = "neo4j") -> None:
        self.driver = driver
        self.registry = registry
        self.database = database

    def _run(self, query: str, rows: Sequence[dict[str, Any]]) -> None:
        def work(tx: Any) -> None:
            tx.run(query, rows=list(rows), tag="bench").consume()

        with self.driver.session(database=self.database) as session:
            session.execute_write(work)

    def load(self, ci_rows: Sequence[dict[str, Any]], rel_rows: Sequence[dict[str, Any]]) -> None:
        """MERGE the CIs, then the relationships."""
        by_class: dict[str, list[dict[str, Any]]] = {}
        for row in ci_rows:
            props = {k: row[k] for k in _PLAIN_PROPS if row.get(k) is not None}
            by_class.setdefault(row["ci_class"], []).append({"ci_id": row["ci_id"], "props": props})
        for cls, rows in sorted(by_class.items()):
            self.registry.get_class(cls)  # labels only from our registry
            query = (
                "UNWIND $rows AS row MERGE (n:CI {ci_id: row.ci_id}) "
                f"SET n:`{cls}`, n += row.props, n.lastupdated = $tag"
            )
            for chunk in _chunks(rows, PLAIN_BATCH):
                self._run(query, chunk)
        by_type: dict[str, list[dict[str, Any]]] = {}
        for row in rel_rows:
            by_type.setdefault(row["rel_type"], []).append(
                {"s": row["source"], "t": row["target"], "optional": bool(row["optional"])}
            )
        for rel_type, rows in sorted(by_type.items()):
            self.registry.get_relationship_type(rel_type)
            query = (
                "UNWIND $rows AS row "
                "MATCH (a:CI {ci_id: row.s}) MATCH (b:CI {ci_id: row.t}) "
                f"MERGE (a)-[r:`{rel_type}`]->(b) "
                "SET r.optional = row.optional, r.lastupdated = $tag"
            )
            for chunk in _chunks(rows, PLAIN_BATCH):
                self._run(query, chunk)

    def counts(self, rel_types: Sequence[str]) -> tuple[int, int]:
        """``(CI nodes, CI-to-CI relationships of rel_types)`` in the database."""
        types = "|".join(f"`{t}`" for t in rel_types)
        with self.driver.session(database=self.database) as session:
            n = session.run("MATCH (c:CI) RETURN count(c) AS n").single(strict=True)["n"]
            r = session.run(
                f"MATCH (:CI)-[r:{types}]->(:CI) RETURN count(r) AS n"
            ).single(strict=True)["n"]
        return int(n), int(r)

    def clear(self) -> None:
        """Delete everything, in batches."""
        with self.driver.session(database=self.database) as session:
            session.run(
                "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
            ).consume()


class CypherImpact:
    """The hand-written Cypher of a change-impact closure: the ids of every impacted CI.

    One quantified path pattern: a hop goes from a failed CI ``a`` to ``b`` over a relationship
    whose impact runs end->start (``b`` needs ``a``: ``(b)-[:RUNS_ON]->(a)``) or start->end
    (``(a)-[:MEMBER_OF]->(b)``). ``DISTINCT`` lets Neo4j plan it as a pruning expand.
    """

    def __init__(self, driver: Driver, registry: Registry, database: str = "neo4j") -> None:
        from bench.workload import impact_types

        self.driver = driver
        self.database = database
        self.up, self.down = impact_types(registry)
        types = "|".join(f"`{t}`" for t in (*self.up, *self.down))
        self.query = (
            "MATCH (s:CI {ci_id: $id}) "
            f"MATCH (s) ((a:CI)-[r:{types}]-(b:CI) WHERE "
            "(type(r) IN $up AND endNode(r) = a) OR (type(r) IN $down AND startNode(r) = a)"
            "){1,} (x:CI) "
            "RETURN DISTINCT x.ci_id AS id"
        )

    def impacted(self, ci_id: str) -> set[str]:
        """Ids of the CIs a failure of ``ci_id`` reaches (``ci_id`` itself excluded)."""

        def work(tx: Any) -> list[str]:
            result = tx.run(self.query, id=ci_id, up=self.up, down=self.down)
            return [r["id"] for r in result]

        with self.driver.session(database=self.database) as session:
            ids = session.execute_read(work)
        return set(ids) - {ci_id}


def impact_digraph(graph: nx.MultiDiGraph, registry: Registry) -> nx.DiGraph:
    """The CI graph with every impacting edge pointing from what fails to what it impacts."""
    from bench.workload import impact_types

    up, down = impact_types(registry)
    up_set, down_set = set(up), set(down)
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    for s, t, k in graph.edges(keys=True):
        if k in up_set:
            g.add_edge(t, s)
        elif k in down_set:
            g.add_edge(s, t)
    return g


class NxImpact:
    """``networkx.descendants`` over impact-oriented edges (= ``ancestors`` over needs-edges)."""

    def __init__(self, impact_graph: nx.DiGraph) -> None:
        # ancestors over the "needs" orientation, as the brief names it
        self.needs = impact_graph.reverse(copy=True)

    def impacted(self, ci_id: str) -> set[str]:
        """Ids of the CIs a failure of ``ci_id`` reaches."""
        return set(nx.ancestors(self.needs, ci_id))


class CsrImpact:
    """A scipy CSR breadth-first search over impact-oriented edges: the reachability floor."""

    def __init__(self, impact_graph: nx.DiGraph) -> None:
        self.ids = list(impact_graph.nodes)
        self.pos = {c: i for i, c in enumerate(self.ids)}
        src = np.fromiter((self.pos[s] for s, _ in impact_graph.edges), dtype=np.int32)
        dst = np.fromiter((self.pos[t] for _, t in impact_graph.edges), dtype=np.int32)
        n = len(self.ids)
        self.csr = csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))

    def reach(self, ci_id: str) -> np.ndarray[Any, Any]:
        """Indexes reached from ``ci_id`` (itself included): the timed part."""
        out: np.ndarray[Any, Any] = breadth_first_order(
            self.csr, self.pos[ci_id], directed=True, return_predecessors=False
        )
        return out

    def impacted(self, ci_id: str) -> set[str]:
        """Ids of the CIs a failure of ``ci_id`` reaches."""
        ids = self.ids
        return {ids[i] for i in self.reach(ci_id).tolist()} - {ci_id}
