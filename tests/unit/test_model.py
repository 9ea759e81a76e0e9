"""The CI class and relationship-type registries, and the stored models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from cmdb_graph.errors import ConfigurationError, UnknownCIClassError, UnknownRelationshipTypeError
from cmdb_graph.model import (
    NODE_SPECS,
    CIClass,
    ConfigurationItem,
    ImpactDirection,
    Registry,
    RelationshipType,
    ServiceKind,
    to_utc,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_hierarchy(registry: Registry) -> None:
    assert registry.ancestors("Hypervisor") == ["Hypervisor", "Server", "Hardware",
                                                "ConfigurationItem"]
    assert registry.is_a("Database", "Application")
    assert not registry.is_a("VirtualMachine", "Hardware")
    assert registry.subclasses("Service") == {"Service", "BusinessService",
                                              "ApplicationService"}
    assert registry.is_service("BusinessService") and not registry.is_service("Server")
    assert registry.get_class("Server").asset_expected is True


def test_impact_directions(registry: Registry) -> None:
    impacting = registry.impacting_types()

    assert impacting["DEPENDS_ON"] is ImpactDirection.END_TO_START
    assert impacting["MEMBER_OF"] is ImpactDirection.START_TO_END
    assert impacting["CONTAINS"] is ImpactDirection.START_TO_END
    assert "SUPPORTS" not in impacting
    assert "SUPPORTS" not in registry.ci_relationship_types()


def test_add_class_and_type_from_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
ci_classes:
  - name: LoadBalancer
    parent: NetworkDevice
    description: F5, HAProxy
  - name: KubernetesPod
    parent: Container
    identification: [native_key, name_host]
    kind: application
relationship_types:
  - name: BACKS_UP
    impact: none
  - name: REPLICATES_TO
    impact: start_to_end
""",
    )

    reg = Registry.from_file(path)

    lb = reg.get_class("LoadBalancer")
    assert lb.parent == "NetworkDevice"
    assert lb.identification == reg.get_class("NetworkDevice").identification  # inherited
    assert lb.asset_expected is True
    assert reg.is_a("LoadBalancer", "Hardware")
    assert "LoadBalancer" in reg.subclasses("NetworkDevice")
    pod = reg.get_class("KubernetesPod")
    assert pod.identification == ("native_key", "name_host")
    assert pod.kind is ServiceKind.APPLICATION
    assert reg.get_relationship_type("BACKS_UP").impact is ImpactDirection.NONE
    assert reg.impacting_types()["REPLICATES_TO"] is ImpactDirection.START_TO_END
    assert "BACKS_UP" in reg.ci_relationship_types()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ci_classes:\n  - name: load_balancer\n    parent: NetworkDevice\n", "PascalCase"),
        ("ci_classes:\n  - name: Lb\n    parent: Nowhere\n", "Nowhere"),
        ("ci_classes:\n  - name: Server\n    parent: Hardware\n", "declared twice"),
        ("ci_classes:\n  - name: Lb\n    parent: Hardware\n    identification: [dna]\n",
         "dna"),
        ("ci_classes:\n  - parent: Hardware\n", "entry 1"),
        ("relationship_types:\n  - name: backs-up\n", "UPPER_SNAKE"),
        ("relationship_types:\n  - name: BACKS_UP\n    impact: sideways\n", "entry 1"),
        ("relationship_types:\n  - name: DEPENDS_ON\n", "declared twice"),
        ("colours: [red]\n", "unknown keys"),
        ("- just a list\n", "mapping"),
        ("ci_classes: [\n", "cannot read"),
        ("ci_classes:\n  - name: Lb`) DETACH DELETE n //\n    parent: Hardware\n", "PascalCase"),
    ],
)
def test_bad_registry_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigurationError, match=message) as info:
        Registry.from_file(path)

    assert str(path) in str(info.value)


def test_missing_registry_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        Registry.from_file(tmp_path / "absent.yaml")


def test_bad_names_in_code() -> None:
    reg = Registry()
    with pytest.raises(ConfigurationError):
        reg.add_class(CIClass("Bad Name", "Hardware", ("native_key",)))
    with pytest.raises(ConfigurationError):
        reg.add_relationship_type(RelationshipType("lower", ImpactDirection.NONE))


def test_unknown_lookups(registry: Registry) -> None:
    with pytest.raises(UnknownCIClassError) as info:
        registry.get_class("Spaceship")
    assert info.value.field == "ci_class"
    with pytest.raises(UnknownRelationshipTypeError):
        registry.get_relationship_type("LOVES")


def test_labels_are_valid_and_distinct(registry: Registry) -> None:
    assert registry.labels() == sorted(registry.classes)
    assert not set(registry.classes) & set(NODE_SPECS)
    assert {"CI", "Asset", "SupportGroup", "Person", "Location", "SoftwareProduct",
            "Entitlement", "Change", "Window", "Incident", "DataSource",
            "ImportRun"} == set(NODE_SPECS)


def test_ci_model_normalises_times_to_utc() -> None:
    local = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))

    ci = ConfigurationItem(ci_id="a", name="a", ci_class="Server", first_seen=local,
                           last_seen=datetime(2024, 1, 1))

    assert ci.first_seen == datetime(2024, 1, 1, 17, 0, tzinfo=UTC)
    assert ci.first_seen is not None and ci.first_seen.tzinfo is UTC
    assert ci.last_seen == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"business_criticality": 5}, "business_criticality"),
        ({"redundancy": "most"}, "redundancy"),
        ({"ci_id": ""}, "ci_id"),
        ({"colour": "red"}, "colour"),
        ({"operational_status": "broken"}, "operational_status"),
    ],
)
def test_ci_model_rejects_bad_values(fields: dict[str, object], bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        ConfigurationItem.model_validate({"ci_id": "a", "name": "a", "ci_class": "Server",
                                          **fields})

    assert info.value.errors()[0]["loc"][0] == bad


def test_node_specs_keys_and_refs() -> None:
    for label, spec in NODE_SPECS.items():
        assert spec.model.LABEL == label
        assert spec.key in spec.model.model_fields
        for ref in spec.refs:
            assert ref.field in spec.model.model_fields
            assert ref.target_label in NODE_SPECS
            assert ref.rel_type in Registry().relationship_types


def test_to_utc_takes_naive_times_as_utc_and_converts_aware_ones() -> None:
    naive = datetime(2026, 3, 1, 8, 30)
    paris = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))

    assert to_utc(naive) == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    assert to_utc(naive).tzinfo is UTC
    assert to_utc(paris) == to_utc(naive) and to_utc(paris).tzinfo is UTC
