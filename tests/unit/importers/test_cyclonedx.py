"""CycloneDX importer: the SaaSBOM example (JSON 1.4), an XML 1.5 BOM, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Record, RelationshipRecord, SoftwareRecord
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_mutant
from tests.unit.importers.xml_fuzz import check_xml_mutant

REPO = Path(__file__).resolve().parents[3]
SAASBOM = (
    REPO / ".." / "shared" / "realdata" / "cyclonedx"
    / "saasbom-apigateway-microservices-datastores.bom.json"
)
XML_BOM = REPO / "tests" / "fixtures" / "importers" / "cyclonedx_webshop_1.5.xml"

VALID_JSON = json.dumps(
    {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "metadata": {"component": {"type": "application", "bom-ref": "app", "name": "shop"}},
        "components": [{"type": "library", "bom-ref": "lib", "name": "left-pad",
                        "version": "1.3.0"}],
        "services": [{"bom-ref": "db", "name": "orders-db"}],
        "dependencies": [{"ref": "app", "dependsOn": ["db", "lib"]}],
    },
    indent=2,
).encode()


def _edges(records: list[Record]) -> set[tuple[str, str, str]]:
    names = {r.identifiers.native_key: r.name for r in records if isinstance(r, CIRecord)}
    return {
        (names[r.source.native_key], r.rel_type, names[r.target.native_key])
        for r in records
        if isinstance(r, RelationshipRecord)
    }


def test_saasbom_services_and_dependency_graph() -> None:
    # Arrange / Act
    records = list(get_importer("cyclonedx").parse(SAASBOM))

    # Assert
    cis = {(r.ci_class, r.name) for r in records if isinstance(r, CIRecord)}
    assert cis == {
        ("Application", "Acme Cloud Example"),  # metadata.component, the subject
        ("Application", "API Gateway"),
        ("Application", "Microservice 1"),
        ("Application", "Microservice 2"),
        ("Application", "Microservice 3"),
        ("Application", "Postgres"),
        ("Application", "S3"),
    }
    assert _edges(records) == {
        ("Acme Cloud Example", "DEPENDS_ON", "API Gateway"),
        ("API Gateway", "DEPENDS_ON", "Microservice 1"),
        ("API Gateway", "DEPENDS_ON", "Microservice 2"),
        ("API Gateway", "DEPENDS_ON", "Microservice 3"),
        ("Microservice 1", "DEPENDS_ON", "Postgres"),
        ("Microservice 3", "DEPENDS_ON", "S3"),
        # nesting under the gateway adds no edge: gateway -> Postgres is not in the BOM
    }
    pg = next(r for r in records if isinstance(r, CIRecord) and r.name == "Postgres")
    assert pg.identifiers.native_key == "org.postgresql/Postgres"
    assert pg.attributes["endpoints"] == ["https://ms-1-pgsql.example.com:5432"]
    assert pg.attributes["data_classifications"] == ["PII"]
    assert pg.attributes["parent_service"] == "API Gateway"
    assert pg.origin.record == "/services/0/services/3"


def test_xml_bom_components_are_software_on_the_subject() -> None:
    # Arrange / Act
    records = list(get_importer("cyclonedx").parse(XML_BOM))

    # Assert
    [subject] = [r for r in records if isinstance(r, CIRecord) and r.name == "webshop"]
    assert subject.ci_class == "Container"
    software = {
        (r.installed_on.native_key, r.product, r.version, r.vendor)
        for r in records
        if isinstance(r, SoftwareRecord)
    }
    assert software == {
        ("example/webshop", "django", "4.2.11", "Django Software Foundation"),
        ("example/webshop", "asgiref", "3.8.1", "Django Software Foundation"),  # nested
        ("example/webshop", "debian", "12.5", None),
    }
    django = next(r for r in records if isinstance(r, SoftwareRecord) and r.product == "django")
    assert django.attributes["licenses"] == "BSD-3-Clause"
    assert django.attributes["purl"] == "pkg:pypi/django@4.2.11"
    # service edges only: webshop -> django and django -> asgiref are software, not CIs
    assert _edges(records) == {
        ("webshop", "DEPENDS_ON", "orders"),
        ("orders", "DEPENDS_ON", "orders-db"),
    }
    orders = next(r for r in records if isinstance(r, CIRecord) and r.name == "orders")
    assert orders.attributes["authenticated"] is True
    assert orders.attributes["provider"] == "Example Ltd"


@pytest.mark.parametrize(
    ("change", "record", "field"),
    [
        (lambda b: {**b, "dependencies": [{"ref": "app", "dependsOn": ["ghost"]}]},
         "/dependencies/0", "ref"),
        (lambda b: {**b, "specVersion": "1.2"}, "/", "specVersion"),
        (lambda b: {**b, "metadata": {}}, "/metadata", "component"),
        (lambda b: {**b, "services": [{"bom-ref": "db"}]}, "/services/0", "name"),
    ],
)
def test_bad_bom_names_record_and_field(tmp_path: Path, change, record: str, field: str) -> None:
    # Arrange
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(change(json.loads(VALID_JSON))))

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("cyclonedx").parse(path))

    # Assert
    assert (info.value.file, info.value.record, info.value.field) == (str(path), record, field)


def test_bad_input_battery_json(tmp_path: Path) -> None:
    run_battery(
        get_importer("cyclonedx"),
        VALID_JSON,
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b'"bomFormat": "CycloneDX",', b""),
        required_field="bomFormat",
    )


def test_bad_input_battery_xml(tmp_path: Path) -> None:
    run_battery(
        get_importer("cyclonedx"),
        XML_BOM.read_bytes(),
        fmt="xml",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b"<name>orders</name>", b""),
        required_field="name",
    )


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_gives_records_or_one_clear_error(data: st.DataObject) -> None:
    check_mutant(get_importer("cyclonedx"), json.loads(SAASBOM.read_text()), data)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_xml_mutants_give_records_or_one_clear_error(data: st.DataObject) -> None:
    check_xml_mutant(get_importer("cyclonedx"), XML_BOM.read_bytes(), data)
