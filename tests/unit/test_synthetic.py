"""The seeded synthetic estate behind ``cmdb-graph demo`` and the benchmarks."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import networkx as nx
import pytest

from cmdb_graph.model import (
    Asset,
    Change,
    ConfigurationItem,
    ImpactDirection,
    Incident,
    Location,
    Person,
    Registry,
    Relationship,
    SupportGroup,
    Window,
)
from cmdb_graph.model.entities import dump_flat
from cmdb_graph.synthetic import (
    DEFAULT_NOW,
    NODE_LABELS,
    REL,
    CIIndex,
    Estate,
    ci_ids_by_class,
    generate_estate,
    generate_rows,
)

REGISTRY = Registry()


@pytest.fixture(scope="module")
def estate() -> Estate:
    return generate_estate(1000, seed=42)


@pytest.fixture(scope="module")
def estate_5k() -> Estate:
    return generate_estate(5000, seed=42)


def needs_graph(estate: Estate) -> nx.DiGraph:
    """Edges ``a -> b``: a needs b (a failure of b impacts a)."""
    g = nx.DiGraph()
    g.add_nodes_from(ci.ci_id for ci in estate.cis)
    impacts = REGISTRY.impacting_types()
    for rel in estate.relationships:
        direction = impacts[rel.rel_type]
        if direction is ImpactDirection.END_TO_START:
            g.add_edge(rel.source, rel.target)
        else:
            g.add_edge(rel.target, rel.source)
    return g


def ci_by_id(estate: Estate) -> dict[str, ConfigurationItem]:
    return {ci.ci_id: ci for ci in estate.cis}


# -- determinism and size ---------------------------------------------------------------------


def test_same_seed_gives_the_same_estate(estate: Estate) -> None:
    # Arrange / Act
    again = generate_estate(1000, seed=42)

    # Assert
    assert [ci.ci_id for ci in again.cis] == [ci.ci_id for ci in estate.cis]
    assert [dump_flat(ci) for ci in again.cis] == [dump_flat(ci) for ci in estate.cis]
    assert [r.key for r in again.relationships] == [r.key for r in estate.relationships]
    assert [dump_flat(a) for a in again.assets] == [dump_flat(a) for a in estate.assets]


def test_default_now_is_fixed(estate: Estate) -> None:
    # Act
    explicit = generate_estate(1000, seed=42, now=DEFAULT_NOW)

    # Assert
    assert DEFAULT_NOW == datetime(2026, 1, 1, tzinfo=UTC)
    assert [dump_flat(c) for c in explicit.changes] == [dump_flat(c) for c in estate.changes]


def test_another_seed_gives_another_estate(estate: Estate) -> None:
    # Act
    other = generate_estate(1000, seed=7)

    # Assert
    assert {r.key for r in other.relationships} != {r.key for r in estate.relationships}
    assert [ci.name for ci in other.cis] != [ci.name for ci in estate.cis]


@pytest.mark.parametrize("size", [1000, 5000])
def test_size_is_within_two_percent(size: int, estate: Estate, estate_5k: Estate) -> None:
    # Arrange
    generated = estate if size == 1000 else estate_5k

    # Act
    n = len(generated.cis)

    # Assert
    assert abs(n - size) <= 0.02 * size


@pytest.mark.parametrize("size", [999, 1_000_001])
def test_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="size must be between"):
        generate_estate(size)


# -- structure ------------------------------------------------------------------------------


def test_every_application_service_reaches_hardware(estate_5k: Estate) -> None:
    # Arrange
    g = needs_graph(estate_5k)
    cis = ci_by_id(estate_5k)
    hardware = {c for c in REGISTRY.classes if REGISTRY.is_a(c, "Hardware")}
    services = [ci.ci_id for ci in estate_5k.cis if ci.ci_class == "ApplicationService"]

    # Act
    without = [s for s in services if not any(
        cis[d].ci_class in hardware for d in nx.descendants(g, s))]  # fmt: skip

    # Assert
    assert services
    assert without == []


@pytest.mark.parametrize("size", [1000, 5000])
def test_core_switch_blast_radius_is_most_of_the_estate(
    size: int, estate: Estate, estate_5k: Estate
) -> None:
    # Arrange
    generated = estate if size == 1000 else estate_5k
    g = needs_graph(generated)
    core = CIIndex.from_estate(generated).core_switch

    # Act: the upstream closure = every CI that needs the core switch, directly or not.
    upstream = nx.ancestors(g, core)

    # Assert
    assert ci_by_id(generated)[core].name == "sw-core-fra1-01"
    assert len(upstream) > 0.5 * len(generated.cis)


def test_every_class_and_relationship_type_is_registered(estate: Estate) -> None:
    # Act
    classes = {ci.ci_class for ci in estate.cis}
    types = {r.rel_type for r in estate.relationships}

    # Assert
    assert classes <= set(REGISTRY.classes)
    assert types <= set(REGISTRY.impacting_types())
    assert {
        "BusinessService", "ApplicationService", "Application", "Database", "Cluster",
        "VirtualMachine", "Hypervisor", "Server", "NetworkDevice", "StorageDevice", "Datacenter",
    } <= classes  # fmt: skip
    assert {"DEPENDS_ON", "RUNS_ON", "HOSTED_ON", "CONNECTS_TO", "LOCATED_IN", "MEMBER_OF"} <= types


def test_every_reference_points_at_an_existing_node(estate: Estate) -> None:
    # Arrange
    cis = ci_by_id(estate)
    groups = {g.group_id for g in estate.groups}
    people = {p.person_id for p in estate.people}
    locations = {loc.location_id for loc in estate.locations}

    # Act / Assert
    for rel in estate.relationships:
        assert rel.source in cis and rel.target in cis, rel.key
    for ci in estate.cis:
        assert ci.support_group is None or ci.support_group in groups
        assert ci.owner is None or ci.owner in people
        assert ci.location_id is None or ci.location_id in locations
        assert ci.duplicate_of is None or ci.duplicate_of in cis
    for asset in estate.assets:
        assert asset.ci_id is None or asset.ci_id in cis
        assert asset.location_id is None or asset.location_id in locations
    for person in estate.people:
        assert set(person.groups) <= groups
    for loc in estate.locations:
        assert loc.parent_id is None or loc.parent_id in locations
    for record in (*estate.changes, *estate.windows, *estate.incidents):
        assert record.ci_ids and set(record.ci_ids) <= set(cis)


def test_keys_are_unique(estate_5k: Estate) -> None:
    # Act
    ci_ids = [ci.ci_id for ci in estate_5k.cis]
    rel_keys = [r.key for r in estate_5k.relationships]
    asset_ids = [a.asset_id for a in estate_5k.assets]

    # Assert
    assert len(set(ci_ids)) == len(ci_ids)
    assert len(set(rel_keys)) == len(rel_keys)
    assert len(set(asset_ids)) == len(asset_ids)


def test_names_are_realistic(estate: Estate) -> None:
    # Arrange
    by_class: dict[str, list[str]] = {}
    for ci in estate.cis:
        by_class.setdefault(ci.ci_class, []).append(ci.name)

    # Assert
    assert {"Payments", "Online Shop"} <= set(by_class["BusinessService"])
    assert any(re.fullmatch(r"vm-fra1-pay-\d{3}", n) for n in by_class["VirtualMachine"])
    hypervisors = [n for n in by_class["Hypervisor"] if n.islower()]  # not the duplicates
    assert len(hypervisors) >= len(by_class["Hypervisor"]) - 2
    assert all(re.fullmatch(r"hv-[a-z]{3}\d-r\d{2}-\d{2}", n) for n in hypervisors)
    assert "sw-core-fra1-01" in by_class["NetworkDevice"]
    assert any(n.startswith("sw-acc-fra1-r01") for n in by_class["NetworkDevice"])


def test_names_are_unique_per_class(estate_5k: Estate) -> None:
    # Act: the planted duplicates share a serial number, not a name
    names = Counter((ci.ci_class, ci.name) for ci in estate_5k.cis)

    # Assert
    assert [key for key, n in names.items() if n > 1] == []


def test_services_have_criticality_one_to_four(estate_5k: Estate) -> None:
    # Act
    crits = [ci.business_criticality for ci in estate_5k.cis if REGISTRY.is_service(ci.ci_class)]

    # Assert
    assert crits and all(c is not None and 1 <= c <= 4 for c in crits)
    assert set(crits) == {1, 2, 3, 4}


# -- planted features -----------------------------------------------------------------------


def test_two_of_three_cluster_exists(estate: Estate) -> None:
    # Arrange
    members = Counter(r.target for r in estate.relationships if r.rel_type == "MEMBER_OF")

    # Act
    two_of_three = [
        ci for ci in estate.cis
        if ci.ci_class == "Cluster" and ci.redundancy == "2" and members[ci.ci_id] == 3
    ]  # fmt: skip

    # Assert
    assert two_of_three


def test_retired_and_disposed_assets_of_operational_cis(estate: Estate) -> None:
    # Arrange
    cis = ci_by_id(estate)

    # Act
    orphans = {
        a.lifecycle_stage.value
        for a in estate.assets
        if a.lifecycle_stage.value in ("retired", "disposed")
        and a.ci_id is not None
        and cis[a.ci_id].operational_status.value == "operational"
    }

    # Assert
    assert orphans == {"retired", "disposed"}


def test_unmanaged_hardware_exists(estate: Estate) -> None:
    # Arrange
    tracked = {a.ci_id for a in estate.assets}

    # Act
    unmanaged = [
        ci for ci in estate.cis
        if REGISTRY.get_class(ci.ci_class).asset_expected and ci.ci_id not in tracked
        and ci.duplicate_of is None
    ]  # fmt: skip

    # Assert
    assert unmanaged


def test_stale_cis_exist(estate: Estate) -> None:
    # Act
    stale = [ci for ci in estate.cis if ci.last_seen and ci.last_seen < DEFAULT_NOW - timedelta(90)]
    fresh = [ci for ci in estate.cis if ci.last_seen and ci.last_seen >= DEFAULT_NOW - timedelta(1)]

    # Assert
    assert 1 <= len(stale) < 20
    assert len(fresh) > 900


def test_duplicate_serial_numbers(estate: Estate) -> None:
    # Arrange
    serials = Counter(ci.serial_number for ci in estate.cis if ci.serial_number)
    cis = ci_by_id(estate)

    # Act
    duplicated = {s for s, n in serials.items() if n > 1}
    merged = [ci for ci in estate.cis if ci.duplicate_of is not None]

    # Assert
    assert len(duplicated) == 2
    assert len(merged) == 1
    assert merged[0].serial_number == cis[merged[0].duplicate_of].serial_number  # type: ignore[index]


def test_dependency_cycle_exists(estate: Estate) -> None:
    # Act
    cycle = nx.find_cycle(needs_graph(estate))

    # Assert
    assert cycle


def test_cis_without_support_group_exist(estate: Estate) -> None:
    # Act
    without = [ci for ci in estate.cis if ci.support_group is None]

    # Assert
    assert 1 <= len(without) < 10


def test_hardware_past_warranty_and_end_of_life(estate_5k: Estate) -> None:
    # Arrange
    today = DEFAULT_NOW.date()

    # Act
    past_warranty = [a for a in estate_5k.assets if a.warranty_end and a.warranty_end < today]
    past_eol = [a for a in estate_5k.assets if a.end_of_life and a.end_of_life < today]
    in_warranty = [a for a in estate_5k.assets if a.warranty_end and a.warranty_end >= today]

    # Assert
    assert past_warranty and past_eol and in_warranty


def test_overlapping_changes(estate: Estate) -> None:
    # Arrange
    changes = sorted(estate.changes, key=lambda c: c.window_start)

    # Act
    overlaps = [
        (a.change_id, b.change_id)
        for i, a in enumerate(changes)
        for b in changes[i + 1 :]
        if a.window_start < b.window_end and b.window_start < a.window_end
    ]

    # Assert
    assert len(overlaps) >= 2


def test_concurrent_changes_on_a_two_of_three_cluster(estate: Estate) -> None:
    # Arrange
    member_of = {r.source: r.target for r in estate.relationships if r.rel_type == "MEMBER_OF"}
    cis = ci_by_id(estate)

    # Act: changes whose CIs are members of one cluster, in overlapping windows
    by_cluster: dict[str, list[Change]] = {}
    for change in estate.changes:
        for ci_id in change.ci_ids:
            if ci_id in member_of:
                by_cluster.setdefault(member_of[ci_id], []).append(change)
    hits = [
        cl for cl, chs in by_cluster.items()
        if len(chs) >= 2 and cis[cl].redundancy == "2"
        and chs[0].window_start < chs[1].window_end and chs[1].window_start < chs[0].window_end
    ]  # fmt: skip

    # Assert
    assert hits


def test_windows(estate: Estate) -> None:
    # Arrange
    cis = ci_by_id(estate)

    # Act
    weekly = [
        w
        for w in estate.windows
        if w.kind.value == "maintenance" and (w.recurrence or "").startswith("FREQ=WEEKLY")
    ]
    blackout = [w for w in estate.windows if w.kind.value == "blackout"]

    # Assert
    assert len(weekly) == 1 and weekly[0].start.weekday() == 6  # a Sunday
    assert weekly[0].end > weekly[0].start
    assert len(blackout) == 1
    assert {cis[c].name for c in blackout[0].ci_ids} == {"Payments", "Online Shop"}


def test_open_incidents(estate: Estate) -> None:
    # Act
    open_ = [i for i in estate.incidents if i.state.value in ("new", "in_progress", "on_hold")]

    # Assert
    assert len(open_) >= 3


# -- rows and batches -------------------------------------------------------------------------


MODELS = {
    "Location": Location, "SupportGroup": SupportGroup, "Person": Person,
    "CI": ConfigurationItem, "Asset": Asset, "Change": Change, "Window": Window,
    "Incident": Incident, REL: Relationship,
}  # fmt: skip
KEYS = {"Location": "location_id", "SupportGroup": "group_id", "Person": "person_id",
        "CI": "ci_id", "Asset": "asset_id", "Change": "change_id", "Window": "window_id",
        "Incident": "incident_id"}  # fmt: skip


def test_rows_have_the_store_row_shape_and_a_safe_order() -> None:
    # Arrange
    seen: dict[str, set[str]] = {label: set() for label in NODE_LABELS}
    problems: list[str] = []

    def need(label: str, key: object, what: str) -> None:
        if key is not None and key not in seen[label]:
            problems.append(f"{what}: {key} not yet written")

    # Act
    for label, rows in generate_rows(1000, seed=3, batch_size=500):
        assert len(rows) <= 500
        for row in rows:
            if dump_flat(MODELS[label].model_validate(row)) != row:
                problems.append(f"{label} row differs from dump_flat: {row}")
            if label == REL:
                need("CI", row["source"], "relationship source")
                need("CI", row["target"], "relationship target")
                continue
            if label in ("CI", "Asset"):
                need("Location", row["location_id"], "location")
            if label == "CI":
                need("SupportGroup", row["support_group"], "support group")
                need("Person", row["owner"], "owner")
            if label == "Asset":
                need("CI", row["ci_id"], "asset ci")
            if label == "Location":
                need("Location", row["parent_id"], "parent location")
            if label in ("Change", "Window", "Incident"):
                for ci_id in row["ci_ids"]:
                    need("CI", ci_id, label)
            seen[label].add(row[KEYS[label]])

    # Assert
    assert problems == []
    assert len(seen["CI"]) == 1000


def test_rows_and_estate_agree() -> None:
    # Arrange
    estate = generate_estate(1000, seed=5)

    # Act
    ci_rows = [row for label, rows in generate_rows(1000, seed=5) if label == "CI" for row in rows]

    # Assert
    assert ci_rows == [dump_flat(ci) for ci in estate.cis]


def test_to_batch_orders_nodes_before_relationships(estate: Estate) -> None:
    # Act
    batch = estate.to_batch()

    # Assert
    labels = [type(n).LABEL for n in batch.nodes]
    order = [
        labels.index(label)
        for label in (
            "Location",
            "SupportGroup",
            "Person",
            "CI",
            "Asset",
            "Change",
            "Window",
            "Incident",
        )
    ]
    assert order == sorted(order)
    assert len(batch.nodes) == sum(v for k, v in estate.totals().items() if k != "relationships")
    assert len(batch.relationships) == len(estate.relationships)


def test_summary_counts_cis_per_class(estate: Estate) -> None:
    # Act
    summary = estate.summary()

    # Assert
    assert sum(summary.values()) == len(estate.cis)
    assert summary["VirtualMachine"] > summary["Hypervisor"] > 0
    assert list(summary) == sorted(summary)


# -- the index benchmarks use -----------------------------------------------------------------


def test_index_picks_cis_of_the_asked_class(estate: Estate) -> None:
    # Arrange
    idx = CIIndex.from_estate(estate)
    cis = ci_by_id(estate)

    # Act
    vm = idx.random_vm(random.Random(1))
    host = idx.random_host(random.Random(1))

    # Assert
    assert cis[vm].ci_class == "VirtualMachine"
    assert cis[host].ci_class in ("Hypervisor", "Server")
    assert idx.random_vm(random.Random(1)) == vm
    assert cis[idx.payments_service].name == "Payments"
    assert cis[idx.payments_database].ci_class == "Database"
    assert idx.name_of(idx.core_switch) == "sw-core-fra1-01"


def test_index_from_rows_matches_estate(estate: Estate) -> None:
    # Arrange
    idx = CIIndex()

    # Act
    for label, rows in generate_rows(1000, seed=42):
        if label == "CI":
            idx.add(rows)

    # Assert
    assert idx.by_class == ci_ids_by_class(estate)
    assert idx.core_switch == CIIndex.from_estate(estate).core_switch
    assert {k: len(v) for k, v in sorted(idx.by_class.items())} == estate.summary()


def test_index_without_landmark_says_so() -> None:
    # Arrange
    idx = CIIndex()

    # Act / Assert
    with pytest.raises(LookupError, match="core switch"):
        _ = idx.core_switch
    with pytest.raises(LookupError, match="VirtualMachine"):
        idx.random_vm(random.Random(0))
