"""SPDX 2.x JSON importer: the spdx-examples SBOM, relationship directions, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, RelationshipRecord, SoftwareRecord
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_mutant

REPO = Path(__file__).resolve().parents[3]
REAL = (
    REPO / ".." / "shared" / "realdata" / "spdx" / "spdx-examples-03-SBOMwDependency.spdx.json"
)
TWO = REPO / "tests" / "fixtures" / "importers" / "spdx_two_subjects.spdx.json"

VALID = json.dumps(
    {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "app",
        "documentNamespace": "https://example.com/app-1",
        "packages": [
            {"SPDXID": "SPDXRef-app", "name": "app", "versionInfo": "1.0"},
            {"SPDXID": "SPDXRef-lib", "name": "lib", "versionInfo": "2.0"},
        ],
        "relationships": [
            {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
             "relatedSpdxElement": "SPDXRef-app"},
            {"spdxElementId": "SPDXRef-app", "relationshipType": "DEPENDS_ON",
             "relatedSpdxElement": "SPDXRef-lib"},
        ],
    },
    indent=2,
).encode()


def test_real_sbom_subject_and_its_dynamic_link() -> None:
    # Arrange / Act
    records = list(get_importer("spdx").parse(REAL))

    # Assert
    [subject] = [r for r in records if isinstance(r, CIRecord)]
    assert (subject.ci_class, subject.name, subject.attributes["version"]) == (
        "Application", "tools-java", "1.5.1")
    assert subject.attributes["manufacturer"] == "SPDX"
    # tools-java DYNAMIC_LINK xlsx: xlsx is software the application contains
    installed = {
        (r.installed_on.native_key, "HAS_INSTALLED", r.product, r.version, r.vendor)
        for r in records
        if isinstance(r, SoftwareRecord)
    }
    assert installed == {("tools-java", "HAS_INSTALLED", "xlsx", "0.16.6", "Webjar")}
    xlsx = next(r for r in records if isinstance(r, SoftwareRecord))
    assert xlsx.attributes["spdx_relationship"] == "DYNAMIC_LINK"
    assert xlsx.attributes["purl"] == "pkg:maven/org.webjars.npm/xlsx@0.16.6"
    assert not [r for r in records if isinstance(r, RelationshipRecord)]


def test_relationship_directions_and_two_subjects() -> None:
    # Arrange / Act
    records = list(get_importer("spdx").parse(TWO))

    # Assert: documentDescribes and DESCRIBES both make subjects
    assert {(r.name, r.ci_class) for r in records if isinstance(r, CIRecord)} == {
        ("portal", "Container"),  # primaryPackagePurpose CONTAINER
        ("billing", "Application"),
    }
    rels = [(r.source.native_key, r.rel_type, r.target.native_key, r.optional)
            for r in records if isinstance(r, RelationshipRecord)]
    assert rels == [("portal", "DEPENDS_ON", "billing", False)]
    installed = {
        (r.installed_on.native_key, r.product, r.attributes["dependency"])
        for r in records
        if isinstance(r, SoftwareRecord)
    }
    assert installed == {
        ("portal", "openssl", "direct"),  # STATIC_LINK
        ("portal", "zlib", "transitive"),  # zlib DEPENDENCY_OF openssl (reversed)
        ("billing", "redis-client", "direct"),  # OPTIONAL_DEPENDENCY_OF billing
        # not pytest (TEST_DEPENDENCY_OF), not orphan (two subjects, reached by none),
        # not billing's redis-client on portal (billing is a subject of its own)
    }


@pytest.mark.parametrize(
    ("change", "record", "field"),
    [
        (lambda d: {**d, "spdxVersion": "SPDX-3.0"}, "/", "spdxVersion"),
        (lambda d: {**d, "relationships": d["relationships"][1:]}, "/",
         "documentDescribes"),
        (lambda d: {**d, "relationships": [*d["relationships"], {
            "spdxElementId": "SPDXRef-app", "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-ghost"}]}, "/relationships/2", "relatedSpdxElement"),
        (lambda d: {**d, "relationships": [{"spdxElementId": "SPDXRef-app"}]},
         "/relationships/0", "relationshipType"),
    ],
)
def test_bad_documents_name_record_and_field(tmp_path: Path, change, record: str,
                                             field: str) -> None:
    # Arrange
    path = tmp_path / "sbom.spdx.json"
    path.write_text(json.dumps(change(json.loads(VALID))))

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("spdx").parse(path))

    # Assert
    assert (info.value.file, info.value.record, info.value.field) == (str(path), record, field)


def test_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("spdx"),
        VALID,
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b'"name": "lib",', b""),
        required_field="name",
    )


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_gives_records_or_one_clear_error(data: st.DataObject) -> None:
    check_mutant(get_importer("spdx"), json.loads(TWO.read_text()), data)
