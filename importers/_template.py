"""Template importer: copy this module to add a source format (it is not a registered kind).

This example reads a made-up "Acme inventory" JSON export::

    {"hosts": [{"id": "h-1", "name": "web01", "serial": "SN1", "runs": ["h-2"]}, ...]}

Write the module docstring of a real importer like this paragraph: name the source format and
the document it follows (vendor reference, schema, API operation), then the mapping decisions
(what becomes which CI class, native key, identifiers, attributes, relationships), so that a
reader can check the code against it.

To add an importer:

1. Copy this file to ``importers/<format>.py`` and rename the class.
2. ``read``: one JSON or XML document per file needs nothing (derive from
   :class:`~importers.base.JSONImporter` or :class:`~importers.base.XMLImporter`, as here);
   otherwise derive from :class:`~importers.base.Importer` and implement ``read`` with a reader
   of :mod:`importers.readers` (``load_yaml_documents``, ``read_csv``, ...). Only what needs
   the file itself belongs in ``read`` (e.g. telling JSON from XML by the first character).
3. ``transform``: map the parsed document to records. Keep it pure (no files, no network,
   no store): it must work the same on an API page. Raise
   :class:`~cmdb_graph.errors.InvalidRecordError` for bad input, naming the record (a JSON
   pointer, a line, an element path) and the field; wrap the work on each item in
   :func:`~importers.base.guard` so that anything unexpected is reported at that item.
4. Register ``"<kind>": "importers.<format>:<Class>"`` in ``importers/__init__.py`` and test
   it on a real file from ``../shared/realdata``.
5. Only if needed: set ``folder_suffixes`` (e.g. ``(".yaml", ".yml")``) to accept a folder,
   and, when the format's objects refer to each other across files (a Kubernetes Service in
   its own file selects a Deployment in another), set ``folds_files = True`` and implement
   ``fold`` (several files' parsed documents -> one document whose records still name their
   own file; see :mod:`importers.kubernetes`).

Connectors (a source's API instead of its export file) call the same transform through
:meth:`~importers.base.Importer.records`, one page at a time::

    importer = AcmeInventoryImporter()
    for page in pages:                     # e.g. httpx responses, one per page
        records += importer.records(page.json(), origin=str(page.url))

``records`` applies the same guard as ``parse``, so errors name the page's URL instead of a
file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cmdb_graph.model.records import CIRecord, Identifiers, Origin, Record, RelationshipRecord
from importers.base import JSONImporter, guard, mapping_items, require

__all__ = ["AcmeInventoryImporter"]


class AcmeInventoryImporter(JSONImporter):
    """Acme inventory JSON -> Server CIs and RUNS_ON relationships (see the module docstring).

    Parameters
    ----------
    ci_class : str
        The class of every host (an example of an importer option).
    """

    kind = "acme-inventory"
    description = "Acme inventory JSON export (made-up example)"

    def __init__(self, *, ci_class: str = "Server") -> None:
        self.ci_class = ci_class

    def transform(self, doc: Any, origin: str) -> Iterator[Record]:
        """A Server CI per host, then RUNS_ON per entry of its ``runs``."""
        hosts = doc.get("hosts") if isinstance(doc, Mapping) else None
        for where, host in mapping_items(hosts, file=origin, pointer="/hosts", what="a host"):
            with guard(origin, record=where):
                yield from self._host(host, Origin(file=origin, record=where))

    def _host(self, host: Mapping[str, Any], origin: Origin) -> Iterator[Record]:
        key = str(require(host, "id", file=origin.file, record=origin.record))
        me = Identifiers(native_key=key, serial_number=host.get("serial"))
        yield CIRecord(ci_class=self.ci_class, name=str(host.get("name") or key),
                       identifiers=me, origin=origin)
        for target in host.get("runs") or []:
            yield RelationshipRecord(rel_type="RUNS_ON", source=Identifiers(native_key=key),
                                     target=Identifiers(native_key=str(target)), origin=origin)
