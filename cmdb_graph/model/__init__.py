"""The graph model: registries, stored entities and importer records."""

from cmdb_graph.model.entities import *  # noqa: F403
from cmdb_graph.model.entities import __all__ as _entities_all
from cmdb_graph.model.records import *  # noqa: F403
from cmdb_graph.model.records import __all__ as _records_all
from cmdb_graph.model.registry import *  # noqa: F403
from cmdb_graph.model.registry import __all__ as _registry_all

__all__ = [*_entities_all, *_records_all, *_registry_all]
