"""Property check shared by the XML importer tests: a valid document with one element removed,
or one text or attribute value replaced, gives records or one ``InvalidRecordError`` naming the
file, never another exception."""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from importers.base import Importer

TEXTS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12
) | st.sampled_from(["", "0", "-1", "99999999999999999999", "²", "up", "open", "mac"])


def check_xml_mutant(importer: Importer, document: bytes, data: st.DataObject) -> None:
    """Mutate one element of ``document`` and parse the result with ``importer``."""
    root = ET.fromstring(document)
    parents = {child: parent for parent in root.iter() for child in parent}
    elements = list(root.iter())
    elem = data.draw(st.sampled_from(elements))
    action = data.draw(st.sampled_from(["remove", "text", "attribute"]))
    if action == "remove" and elem in parents:
        parents[elem].remove(elem)
    elif action == "attribute" and elem.attrib:
        elem.set(data.draw(st.sampled_from(sorted(elem.attrib))), data.draw(TEXTS))
    else:
        elem.text = data.draw(TEXTS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutant.xml"
        path.write_bytes(ET.tostring(root, encoding="utf-8"))
        try:
            records = list(importer.parse(path))
        except InvalidRecordError as exc:
            assert str(path) in str(exc), f"error does not name the file: {exc}"
        else:
            assert all(r.origin.file == str(path) for r in records)
