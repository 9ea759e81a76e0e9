"""cmdb-graph: a graph-based CMDB and service-impact engine."""

__version__ = "0.1.0"
