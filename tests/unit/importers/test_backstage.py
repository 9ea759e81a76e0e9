"""Backstage catalog importer: the Backstage example entities, relations, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import (
    CIRecord,
    GroupRecord,
    PersonRecord,
    Record,
    RelationshipRecord,
)
from importers import get_importer
from importers.backstage import parse_entity_ref
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_yaml_mutant

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "backstage"
RELATIONS = REPO / "tests" / "fixtures" / "importers" / "backstage_relations.yaml"

VALID = b"""apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: shop
spec:
  owner: team-a
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: web
spec:
  lifecycle: production
  system: shop
  type: website
  owner: team-a
"""


def _all_real() -> list[Record]:
    importer = get_importer("backstage")
    return [r for p in sorted(REALDATA.glob("*.yaml")) for r in importer.parse(p)]


def _rels(records: list[Record]) -> set[tuple[str, str, str]]:
    return {
        (str(r.source.native_key), r.rel_type, str(r.target.native_key))
        for r in records
        if isinstance(r, RelationshipRecord)
    }


def test_real_entities_classes_and_owners() -> None:
    # Arrange / Act
    records = _all_real()

    # Assert
    cis = {
        (r.identifiers.native_key, r.ci_class, r.name, r.support_group)
        for r in records
        if isinstance(r, CIRecord)
    }
    assert cis == {
        ("system:default/artist-engagement-portal", "ApplicationService",
         "artist-engagement-portal", "team-a"),
        ("component:default/artist-lookup", "Application", "artist-lookup", "team-a"),
        ("resource:default/artists-db", "Database", "artists-db", "team-a"),
        ("domain:default/artists", "BusinessService", "artists", "team-a"),
        ("api:default/wayback-archive", "Application", "wayback-archive", "team-a"),
        ("component:default/wayback-archive", "Application", "wayback-archive", "team-a"),
        ("component:default/wayback-archive-ingestion", "Application",
         "wayback-archive-ingestion", "team-d"),
    }
    api = next(r for r in records if isinstance(r, CIRecord)
               and r.identifiers.native_key == "api:default/wayback-archive")
    assert (api.attributes["backstage_kind"], api.attributes["api_type"]) == ("API", "openapi")


def test_real_relations_point_from_dependent_to_dependency() -> None:
    # Arrange / Act
    records = _all_real()

    # Assert
    assert _rels(records) == {
        # System.spec.domain: the domain needs its system
        ("domain:default/artists", "DEPENDS_ON", "system:default/artist-engagement-portal"),
        # Component.spec.system, Resource.spec.system
        ("system:default/artist-engagement-portal", "DEPENDS_ON",
         "component:default/artist-lookup"),
        ("system:default/artist-engagement-portal", "DEPENDS_ON", "resource:default/artists-db"),
        # dependsOn: ['resource:artists-db']
        ("component:default/artist-lookup", "DEPENDS_ON", "resource:default/artists-db"),
        # providesApis: the API needs the component that provides it
        ("api:default/wayback-archive", "DEPENDS_ON", "component:default/wayback-archive"),
        # subcomponentOf: the parent needs its subcomponent
        ("component:default/wayback-archive", "DEPENDS_ON",
         "component:default/wayback-archive-ingestion"),
    }
    assert not any(r.inferred for r in records if isinstance(r, RelationshipRecord))


def test_real_group_and_users() -> None:
    # Arrange / Act
    records = list(get_importer("backstage").parse(REALDATA / "team-a-group.yaml"))

    # Assert
    [group] = [r for r in records if isinstance(r, GroupRecord)]
    assert (group.name, group.email) == ("team-a", "team-a@example.com")
    assert group.attributes["group_parent"] == "backstage"
    people = {(p.username, p.name, p.email, p.groups) for p in records
              if isinstance(p, PersonRecord)}
    assert people == {
        ("breanna.davison", "breanna.davison", "breanna-davison@example.com", ("team-a",)),
        ("janelle.dawe", "Janelle Dawe", "janelle-dawe@example.com", ("team-a",)),
        ("nigel.manning", "Nigel Manning", "nigel-manning@example.com", ("team-a",)),
        ("guest", "Guest User", "guest@example.com", ("team-a",)),
        # memberOf: [group:default/team-a] from the development namespace
        ("development/guest", "Guest User", "guest@example.com", ("team-a",)),
    }
    assert [p.origin.line for p in records if isinstance(p, PersonRecord)] == [15, 26, 37, 51, 64]


def test_fixture_relations_namespaces_and_user_owner() -> None:
    # Arrange / Act
    records = list(get_importer("backstage").parse(RELATIONS))

    # Assert
    assert _rels(records) == {
        ("component:payments/checkout", "DEPENDS_ON", "resource:payments/payments-queue"),
        ("component:payments/checkout", "DEPENDS_ON", "api:payments/payments-api"),
        ("component:payments/checkout", "DEPENDS_ON", "api:default/fraud-api"),
        ("system:payments/shop", "DEPENDS_ON", "component:payments/checkout"),
        # dependencyOf: [component:checkout] on payments-core
        ("component:payments/checkout", "DEPENDS_ON", "component:payments/payments-core"),
        ("api:payments/payments-api", "DEPENDS_ON", "component:payments/payments-core"),
        ("domain:payments/payments", "DEPENDS_ON", "domain:payments/card-payments"),
    }
    cis = {r.identifiers.native_key: r for r in records if isinstance(r, CIRecord)}
    checkout = cis["component:payments/checkout"]
    assert (checkout.owner, checkout.support_group) == ("jane.doe", None)
    assert checkout.name == "payments/checkout"
    assert cis["resource:payments/payments-queue"].ci_class == "CloudResource"
    assert cis["resource:payments/payments-queue"].support_group == "payments/payments-team"
    assert "location:default/payments-catalog" not in cis  # Location carries no CI


def test_parse_entity_ref_defaults_and_errors() -> None:
    assert parse_entity_ref("artists-db", default_kind="resource") == (
        "resource", "default", "artists-db")
    assert parse_entity_ref("Group:ops/sre", default_kind=None) == ("group", "ops", "sre")
    with pytest.raises(ValueError):
        parse_entity_ref("artists-db", default_kind=None)
    with pytest.raises(ValueError):
        parse_entity_ref("a/b/c", default_kind="component")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ("apiVersion: backstage.io/v9\nkind: Component\nmetadata: {name: a}\n", "apiVersion"),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n"
         "spec: {type: service, owner: x, dependsOn: ['a/b/c']}\n", "spec.dependsOn"),
        ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n"
         "spec: {type: service}\n", "owner"),
    ],
)
def test_bad_entities_name_document_and_field(tmp_path: Path, doc: str, field: str) -> None:
    # Arrange
    path = tmp_path / "catalog-info.yaml"
    path.write_text("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: g}\n"
                    "---\n" + doc)

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("backstage").parse(path))

    # Assert
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 5, field)
    assert info.value.record == "document 2"


def test_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("backstage"),
        VALID,
        fmt="yaml",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b"  name: web\n", b""),
        required_field="metadata.name",
    )


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_gives_records_or_one_clear_error(data: st.DataObject) -> None:
    # one value of a valid file replaced by arbitrary YAML-able data
    documents = list(yaml.safe_load_all(RELATIONS.read_text()))
    check_yaml_mutant(get_importer("backstage"), documents, data)
