"""One module per source API; each defines a :class:`~cmdb_graph.connectors.base.Connector`."""
