"""The template importer a newcomer copies: the pattern works as its docstring says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, RelationshipRecord
from importers import IMPORTERS
from importers._template import AcmeInventoryImporter

DOC = {"hosts": [{"id": "h-1", "name": "web01", "serial": "SN1", "runs": ["h-2"]},
                 {"id": "h-2", "name": "hv01"}]}


def test_a_file_and_an_api_page_give_the_same_records(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(DOC), encoding="utf-8")
    importer = AcmeInventoryImporter()

    # Act
    from_file = list(importer.parse(path))
    from_page = importer.records(DOC, "https://acme.example/api/hosts?page=1")

    # Assert
    assert [type(r) for r in from_file] == [CIRecord, RelationshipRecord, CIRecord]
    assert [r.model_dump(exclude={"origin"}) for r in from_file] == [
        r.model_dump(exclude={"origin"}) for r in from_page]
    assert from_page[0].origin.file == "https://acme.example/api/hosts?page=1"
    assert from_file[0].origin.record == "/hosts/0"


@pytest.mark.parametrize(
    ("doc", "record", "field"),
    [({"hosts": [{"name": "no id"}]}, "/hosts/0", "id"),
     ({"hosts": [{"id": "a"}, {"id": "b", "serial": ["not", "text"]}]}, "/hosts/1",
      "serial_number"),
     ({"hosts": [{"id": "a"}, 7]}, "/hosts/1", None),
     ({"hosts": {"id": "a"}}, "/", "hosts")],
)
def test_bad_input_is_one_located_error(doc: object, record: str, field: str | None) -> None:
    with pytest.raises(InvalidRecordError) as info:
        AcmeInventoryImporter().records(doc, "page-1")
    assert (info.value.file, info.value.record, info.value.field) == ("page-1", record, field)
    assert "\n" not in str(info.value)


def test_the_template_is_not_a_registered_kind() -> None:
    assert not any("_template" in target for target in IMPORTERS.values())
