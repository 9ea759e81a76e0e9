"""The Neo4j store: :class:`Neo4jStore` and what only it needs.

* :mod:`~cmdb_graph.store.neo4j.store`: the store (driver plumbing, primitive reads/writes);
* :mod:`~cmdb_graph.store.neo4j.cypher`, :mod:`~cmdb_graph.store.neo4j.cypher_reads`: every
  Cypher statement;
* :mod:`~cmdb_graph.store.neo4j.props`: rows to Neo4j properties and back;
* :mod:`~cmdb_graph.store.neo4j.writes`: the statements that write one batch.
"""

from cmdb_graph.store.neo4j.store import GRAPH_PAGE, Neo4jStore

__all__ = ["Neo4jStore", "GRAPH_PAGE"]
