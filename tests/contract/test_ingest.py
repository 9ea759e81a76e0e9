"""Contract tests of ingestion (identification, reconciliation, runs) on every store.

Small hand-written records, no importers: each test states the records it feeds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cmdb_graph.errors import (
    ImportAbortedError,
    InvalidRecordError,
    UnknownCIClassError,
    UnknownRelationshipTypeError,
)
from cmdb_graph.ingest import ReconciliationPolicy, lineage_of, run_import
from cmdb_graph.model import (
    NODE_SPECS,
    Asset,
    AssetRecord,
    CIRecord,
    ConfigurationItem,
    DataSource,
    EntitlementRecord,
    GroupRecord,
    Identifiers,
    ImportRun,
    Origin,
    PersonRecord,
    Relationship,
    RelationshipRecord,
    RunMode,
    RunStatus,
    SoftwareRecord,
)
from cmdb_graph.store.base import GraphStore

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


def at(line: int, file: str = "export.csv") -> Origin:
    return Origin(file=file, line=line)


def server(name: str, *, line: int = 1, file: str = "export.csv", ci_class: str = "Server",
           attrs: dict[str, Any] | None = None, **ids: Any) -> CIRecord:
    return CIRecord(ci_class=ci_class, name=name, identifiers=Identifiers(**ids),
                    attributes=attrs or {}, origin=at(line, file))


def all_nodes(store: GraphStore, label: str) -> list[Any]:
    out: list[Any] = []
    after = None
    while True:
        page = store.list_nodes(label, after=after, limit=1000)
        out.extend(page.items)
        if page.next_cursor is None:
            return out
        after = page.next_cursor


def dump(store: GraphStore, *, without: tuple[str, ...] = ("ImportRun",)) -> dict[str, Any]:
    """Everything in the store as JSON values, except the labels in ``without``."""
    counts = {k: v for k, v in store.counts().items() if k not in without}
    out: dict[str, Any] = {"counts": counts}
    for label in sorted(NODE_SPECS):
        if label not in without:
            out[label] = [n.model_dump(mode="json") for n in all_nodes(store, label)]
    out["relationships"] = [r.model_dump(mode="json") for r in store.relationships(None)]
    return out


def strip_times(value: Any) -> Any:
    """``value`` without seen-times (they move on every run)."""
    if isinstance(value, dict):
        return {k: strip_times(v) for k, v in value.items()
                if k not in ("last_seen", "asserted_at")}
    if isinstance(value, list):
        return [strip_times(v) for v in value]
    return value


def cis(store: GraphStore) -> list[ConfigurationItem]:
    return [n for n in all_nodes(store, "CI") if isinstance(n, ConfigurationItem)]


def runs(store: GraphStore) -> list[ImportRun]:
    return [n for n in all_nodes(store, "ImportRun") if isinstance(n, ImportRun)]


# -- multi-source reconciliation ------------------------------------------------------------
GLPI = DataSource(name="glpi", kind="itam", priority=40)
SCCM = DataSource(name="sccm", kind="discovery", priority=80)


def glpi_records() -> list[Any]:
    return [
        CIRecord(ci_class="Computer", name="PC-ACCT-07",
                 identifiers=Identifiers(native_key="17", serial_number="CZC1234XYZ",
                                         hostname="pc-acct-07"),
                 attributes={"os_version": "10.0.19045", "manufacturer": "HP",
                             "ram_mb": 16384},
                 support_group="Service Desk", origin=at(2, "glpi.json")),
        AssetRecord(native_key="A17", asset_tag="A-0007", serial_number="CZC1234XYZ",
                    attributes={"cost": 899.0, "currency": "EUR"},
                    tracks=Identifiers(native_key="17"), origin=at(3, "glpi.json")),
    ]


def sccm_records() -> list[Any]:
    return [
        CIRecord(ci_class="Computer", name="PCACCT07.corp.example",
                 identifiers=Identifiers(native_key="GUID-1", serial_number="CZC1234XYZ",
                                         fqdn="pcacct07.corp.example"),
                 attributes={"os_version": "10.0.22631"}, origin=at(5, "sccm.csv")),
    ]


def test_one_machine_in_two_sources_is_one_ci_with_one_asset(store: GraphStore) -> None:
    # Arrange / Act
    first = run_import(store, glpi_records(), source=GLPI, importer="test", now=NOW)
    second = run_import(store, sccm_records(), source=SCCM, importer="test",
                        now=NOW + timedelta(minutes=5))

    # Assert: one CI, one asset tracking it
    assert first.counts["created"] >= 2
    assert second.counts["created"] == 0 and second.counts["updated"] == 1
    assert second.plan.by_kind["CI"]["updated"] == 1
    found = cis(store)
    assert len(found) == 1
    ci = found[0]
    assets = [a for a in all_nodes(store, "Asset") if isinstance(a, Asset)]
    assert [a.ci_id for a in assets] == [ci.ci_id]
    assert store.counts()["CI"] == 1 and store.counts()["Asset"] == 1
    # attributes by priority: sccm (80) beats glpi (40); glpi fills what sccm left empty
    assert ci.name == "PCACCT07.corp.example"
    assert ci.os_version == "10.0.22631"
    assert ci.manufacturer == "HP"
    assert ci.attributes["ram_mb"] == 16384
    assert sorted(ci.native_keys) == ["glpi:17", "sccm:GUID-1"]
    # lineage shows both sources, and where each value came from
    lin = lineage_of(store, ci.ci_id)
    assert set(lin.sources) == {"glpi", "sccm"}
    assert lin.sources["glpi"].first_seen == NOW
    assert lin.sources["sccm"].first_seen == NOW + timedelta(minutes=5)
    assert lin.source_of("name") == "sccm"
    assert lin.source_of("os_version") == "sccm"
    assert lin.source_of("manufacturer") == "glpi"
    assert lin.attributes["os_version"].value == "10.0.22631"
    assert lin.attributes["manufacturer"].asserted_at == NOW
    assert list(lin.assets) == [assets[0].asset_id]
    assert set(lin.assets[assets[0].asset_id]) == {"glpi"}


def test_rerunning_both_imports_changes_nothing(store: GraphStore) -> None:
    # Arrange
    run_import(store, glpi_records(), source=GLPI, importer="test", now=NOW)
    run_import(store, sccm_records(), source=SCCM, importer="test", now=NOW)
    before = dump(store)

    # Act: the same imports again, later, and at the same time
    later = NOW + timedelta(hours=6)
    again_glpi = run_import(store, glpi_records(), source=GLPI, importer="test", now=later)
    again_sccm = run_import(store, sccm_records(), source=SCCM, importer="test", now=later)
    after_later = dump(store)
    same_glpi = run_import(store, glpi_records(), source=GLPI, importer="test", now=later)
    same_sccm = run_import(store, sccm_records(), source=SCCM, importer="test", now=later)

    # Assert
    for result in (again_glpi, again_sccm, same_glpi, same_sccm):
        assert result.counts["created"] == 0
        assert result.counts["updated"] == 0
        assert result.counts["merged"] == 0
        assert result.counts["unchanged"] >= 1
        assert result.plan.creates == [] and result.plan.updates == []
    assert strip_times(after_later) == strip_times(before)
    assert dump(store) == after_later
    ci = cis(store)[0]
    assert ci.last_seen == later
    assert ci.lineage.sources["glpi"].last_seen == later
    assert ci.lineage.sources["glpi"].first_seen == NOW


def test_policy_overrides_priority_per_class_and_attribute(store: GraphStore) -> None:
    # Arrange
    policy = ReconciliationPolicy({"Hardware": {"os_version": ["glpi", "sccm"]}})

    # Act
    run_import(store, sccm_records(), source=SCCM, importer="test", now=NOW, policy=policy)
    run_import(store, glpi_records(), source=GLPI, importer="test", now=NOW, policy=policy)

    # Assert: glpi wins os_version through the policy, sccm keeps the name by priority
    ci = cis(store)[0]
    assert ci.os_version == "10.0.19045"
    assert ci.name == "PCACCT07.corp.example"
    assert lineage_of(store, ci.ci_id).source_of("os_version") == "glpi"


def test_lower_source_takes_over_a_stale_value(store: GraphStore) -> None:
    # Arrange: sccm's assertions go stale after 2 days
    sccm = SCCM.model_copy(update={"stale_after_days": 2})
    run_import(store, sccm_records(), source=sccm, importer="test", now=NOW)

    # Act: glpi a day later cannot override; five days later it can
    run_import(store, glpi_records(), source=GLPI, importer="test", now=NOW + timedelta(days=1))
    day1 = cis(store)[0]
    run_import(store, glpi_records(), source=GLPI, importer="test", now=NOW + timedelta(days=5))
    day5 = cis(store)[0]

    # Assert
    assert day1.os_version == "10.0.22631"
    assert day5.os_version == "10.0.19045"
    assert day5.lineage.attributes["os_version"].source == "glpi"


def test_a_value_beats_an_empty_one(store: GraphStore) -> None:
    # Arrange
    run_import(store, [server("db01", serial_number="S1", attrs={"environment": "prod"})],
               source=DataSource(name="low", priority=10), importer="test", now=NOW)

    # Act: a higher source without environment
    run_import(store, [server("DB01", serial_number="S1")],
               source=DataSource(name="high", priority=90), importer="test", now=NOW)

    # Assert
    ci = cis(store)[0]
    assert ci.environment == "prod"
    assert ci.name == "DB01"


# -- retirement ------------------------------------------------------------------------------
DISCO = DataSource(name="disco", priority=60)


def fleet(n: int, *, skip: tuple[int, ...] = ()) -> list[CIRecord]:
    return [server(f"srv-{i:02d}", line=i + 2, native_key=f"n{i}", serial_number=f"SER{i:04d}")
            for i in range(n) if i not in skip]


def status_of(store: GraphStore, name: str) -> str:
    return next(c.operational_status.value for c in cis(store) if c.name == name)


def test_ci_missing_from_n_consecutive_full_runs_is_retired_not_before(store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(10), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)

    # Act / Assert: two missed full runs leave it operational
    for i in (1, 2):
        res = run_import(store, fleet(10, skip=(9,)), source=DISCO, importer="test",
                         mode=RunMode.FULL, retire_after=3, now=NOW + timedelta(days=i))
        assert res.counts["retired"] == 0
        assert status_of(store, "srv-09") == "operational"
        ci = next(c for c in cis(store) if c.name == "srv-09")
        assert ci.lineage.sources["disco"].missed_full_runs == i

    third = run_import(store, fleet(10, skip=(9,)), source=DISCO, importer="test",
                       mode=RunMode.FULL, retire_after=3, now=NOW + timedelta(days=3))

    # Assert: the third miss retires it; it is not deleted
    assert third.counts["retired"] == 1
    assert [r.ci_id for r in third.plan.retirements] == [
        c.ci_id for c in cis(store) if c.name == "srv-09"]
    assert status_of(store, "srv-09") == "retired"
    assert store.counts()["CI"] == 10
    assert [status_of(store, f"srv-{i:02d}") for i in range(9)] == ["operational"] * 9


def test_ci_seen_again_resets_the_count_and_comes_back(store: GraphStore) -> None:
    # Arrange: retired after one missed run
    run_import(store, fleet(10), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)
    run_import(store, fleet(10, skip=(9,)), source=DISCO, importer="test", mode=RunMode.FULL,
               retire_after=1, now=NOW + timedelta(days=1))
    assert status_of(store, "srv-09") == "retired"

    # Act
    run_import(store, fleet(10), source=DISCO, importer="test", mode=RunMode.FULL,
               retire_after=1, now=NOW + timedelta(days=2))

    # Assert
    ci = next(c for c in cis(store) if c.name == "srv-09")
    assert ci.operational_status.value == "operational"
    assert ci.lineage.sources["disco"].missed_full_runs == 0
    assert store.counts()["CI"] == 10


def test_a_ci_another_source_still_sees_is_not_retired(store: GraphStore) -> None:
    # Arrange: srv-09 is also asserted by the CMDB team's catalogue (delta runs only)
    run_import(store, fleet(10), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)
    run_import(store, [server("srv-09", serial_number="SER0009")],
               source=DataSource(name="catalogue", priority=30, stale_after_days=30),
               importer="test", now=NOW)

    # Act
    res = run_import(store, fleet(10, skip=(9,)), source=DISCO, importer="test",
                     mode=RunMode.FULL, retire_after=1, now=NOW + timedelta(days=1))

    # Assert
    assert res.counts["retired"] == 0
    assert status_of(store, "srv-09") == "operational"


def failing(records: list[Any], after: int) -> Iterator[Any]:
    """Yield ``after`` records, then fail as a broken importer would."""
    for i, rec in enumerate(records):
        if i == after:
            raise InvalidRecordError("unterminated quote", file="broken.csv", line=i + 2,
                                     field="name")
        yield rec


def test_failed_run_retires_nothing_and_writes_only_the_failed_run(store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(10), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)
    before = dump(store)
    runs_before = len(runs(store))

    # Act
    with pytest.raises(InvalidRecordError) as info:
        run_import(store, failing(fleet(10, skip=(7, 8, 9)), after=4), source=DISCO,
                   importer="test", mode=RunMode.FULL, retire_after=1,
                   now=NOW + timedelta(days=1))

    # Assert
    assert "broken.csv" in str(info.value) and "line 6" in str(info.value)
    assert dump(store) == before
    failed = [r for r in runs(store) if r.status is RunStatus.FAILED]
    assert len(runs(store)) == runs_before + 1 and len(failed) == 1
    assert failed[0].source == "disco" and "unterminated quote" in (failed[0].error or "")
    assert all(c.lineage.sources["disco"].missed_full_runs == 0 for c in cis(store))


def test_delta_run_retires_nothing_and_counts_no_miss(store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(10), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)

    # Act
    res = run_import(store, fleet(10, skip=(5, 6, 7, 8, 9)), source=DISCO, importer="test",
                     mode=RunMode.DELTA, retire_after=1, now=NOW + timedelta(days=1))

    # Assert
    assert res.counts["retired"] == 0 and res.plan.misses == {}
    assert all(c.operational_status.value == "operational" for c in cis(store))
    assert all(c.lineage.sources["disco"].missed_full_runs == 0 for c in cis(store))


def test_circuit_breaker_refuses_a_run_that_retires_half_the_source(store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(4), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)
    before = dump(store, without=())

    # Act / Assert: refused, nothing written (not even an ImportRun)
    with pytest.raises(ImportAbortedError) as info:
        run_import(store, fleet(4, skip=(2, 3)), source=DISCO, importer="test",
                   mode=RunMode.FULL, retire_after=1, now=NOW + timedelta(days=1))
    assert "disco" in str(info.value)
    assert dump(store, without=()) == before

    # Act: forced
    forced = run_import(store, fleet(4, skip=(2, 3)), source=DISCO, importer="test",
                        mode=RunMode.FULL, retire_after=1, force=True,
                        now=NOW + timedelta(days=1))

    # Assert
    assert forced.counts["retired"] == 2
    assert sorted(status_of(store, f"srv-{i:02d}") for i in range(4)) == [
        "operational", "operational", "retired", "retired"]


# -- dry run ---------------------------------------------------------------------------------
def test_dry_run_writes_nothing_and_returns_the_plan(store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(4), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)
    before = dump(store, without=())
    changed = fleet(4, skip=(3,))
    changed[0] = server("srv-00", line=2, native_key="n0", serial_number="SER0000",
                        attrs={"environment": "prod"})
    changed.append(server("srv-new", line=9, native_key="n99", serial_number="SER9999"))

    # Act
    res = run_import(store, changed, source=DISCO, importer="test", mode=RunMode.FULL,
                     retire_after=1, dry_run=True, force=False, now=NOW + timedelta(days=1))

    # Assert
    assert dump(store, without=()) == before
    assert res.dry_run and res.run.status is RunStatus.DRY_RUN
    assert [c.name for c in res.plan.creates if c.label == "CI"] == ["srv-new"]
    assert [(u.name, u.changes) for u in res.plan.updates if u.name == "srv-00"] == [
        ("srv-00", {"environment": (None, "prod")})]
    assert [r.name for r in res.plan.retirements] == ["srv-03"]
    assert res.counts["created"] == 1 and res.counts["retired"] == 1


def test_dry_run_on_an_empty_store_writes_nothing_at_all(store: GraphStore) -> None:
    # Act
    res = run_import(store, glpi_records(), source=GLPI, importer="test", dry_run=True, now=NOW)

    # Assert
    assert all(v == 0 for v in store.counts().values())
    assert res.counts["created"] >= 2


# -- identification rules --------------------------------------------------------------------
def test_mac_address_alone_never_matches(store: GraphStore) -> None:
    # Arrange
    run_import(store, [server("web01", hostname="web01", mac_addresses=("00:1A:2B:3C:4D:5E",))],
               source=DISCO, importer="test", now=NOW)

    # Act
    res = run_import(store, [
        server("mac-only", line=2, mac_addresses=("00-1a-2b-3c-4d-5e",)),
        server("web02", line=3, hostname="web02", mac_addresses=("001a2b3c4d5e",)),
    ], source=DataSource(name="netscan", priority=20), importer="test", now=NOW)

    # Assert: the MAC-only record is skipped; the one whose hostname differs is a new CI
    assert [(s.record_type, s.origin) for s in res.skips] == [("ci", at(2))]
    assert "cannot be identified" in res.skips[0].reason
    assert sorted(c.name for c in cis(store)) == ["web01", "web02"]


def test_mac_address_matches_together_with_an_identifier_absent_on_the_candidate(
    store: GraphStore,
) -> None:
    # Arrange
    run_import(store, [server("web01", hostname="web01", mac_addresses=("00:1A:2B:3C:4D:5E",))],
               source=DISCO, importer="test", now=NOW)

    # Act: a serial the CI does not have yet, plus the shared MAC
    run_import(store, [server("WEB01", serial_number="XYZ1", mac_addresses=("001a2b3c4d5e",))],
               source=DataSource(name="itam", priority=20), importer="test", now=NOW)

    # Assert
    found = cis(store)
    assert len(found) == 1 and found[0].serial_number == "XYZ1"


def test_hostname_and_domain(store: GraphStore) -> None:
    # Act
    run_import(store, [
        server("web01 a", line=2, hostname="web01", domain="a.example"),
        server("web01 b", line=3, hostname="WEB01", domain="b.example"),
        server("web01 a again", line=4, fqdn="web01.a.example"),
    ], source=DISCO, importer="test", now=NOW)

    # Assert: two CIs; the FQDN record found the a.example one by hostname + domain
    found = sorted(cis(store), key=lambda c: c.domain or "")
    assert [(c.hostname, c.domain) for c in found] == [("web01", "a.example"),
                                                       ("web01", "b.example")]
    assert found[0].fqdn == "web01.a.example"


def test_native_key_matches_only_within_the_same_source(store: GraphStore) -> None:
    # Act
    run_import(store, [server("alpha", native_key="1")], source=DISCO, importer="test", now=NOW)
    run_import(store, [server("beta", native_key="1")],
               source=DataSource(name="other", priority=90), importer="test", now=NOW)
    run_import(store, [server("alpha renamed", native_key="1")], source=DISCO, importer="test",
               now=NOW)

    # Assert
    assert sorted(c.name for c in cis(store)) == ["alpha renamed", "beta"]


def test_dependent_ci_is_identified_with_its_host(store: GraphStore) -> None:
    # Arrange
    def records() -> list[Any]:
        return [
            server("host-a", line=2, native_key="ha"),
            server("host-b", line=3, native_key="hb"),
            CIRecord(ci_class="Application", name="nginx",
                     identifiers=Identifiers(host=Identifiers(native_key="ha")), origin=at(4)),
            CIRecord(ci_class="Application", name="nginx",
                     identifiers=Identifiers(host=Identifiers(native_key="hb")), origin=at(5)),
        ]

    # Act
    first = run_import(store, records(), source=DISCO, importer="test", now=NOW)
    second = run_import(store, records(), source=DISCO, importer="test", now=NOW)

    # Assert: same application name on two hosts = two CIs, stable on re-run
    apps = [c for c in cis(store) if c.ci_class == "Application"]
    hosts = {c.name: c.ci_id for c in cis(store) if c.ci_class == "Server"}
    assert sorted(a.host_id for a in apps) == sorted(hosts.values())
    assert first.counts["created"] == 4 and second.counts["created"] == 0
    assert second.counts["unchanged"] == 4


def test_dependent_ci_whose_host_is_unknown_is_skipped(store: GraphStore) -> None:
    # Act
    res = run_import(store, [
        CIRecord(ci_class="Database", name="orders",
                 identifiers=Identifiers(host=Identifiers(native_key="missing")), origin=at(7)),
        server("other", line=8, native_key="x"),
    ], source=DISCO, importer="test", now=NOW)

    # Assert: skipped with the reason and location, the rest applied
    assert len(res.skips) == 1 and res.skips[0].origin == at(7)
    assert "host" in res.skips[0].reason
    assert [c.name for c in cis(store)] == ["other"]


def test_several_matches_merge_into_the_oldest(store: GraphStore) -> None:
    # Arrange: two CIs with the same serial number (entered by hand before)
    old = ConfigurationItem(ci_id="ci-old", name="srv-x", ci_class="Server",
                            serial_number="DUP1", first_seen=NOW - timedelta(days=30),
                            last_seen=NOW - timedelta(days=30))
    young = ConfigurationItem(ci_id="ci-young", name="srv-x (2)", ci_class="Server",
                              serial_number="DUP1", operational_status="repair",
                              environment="prod", first_seen=NOW - timedelta(days=3),
                              last_seen=NOW - timedelta(days=3))
    app = ConfigurationItem(ci_id="ci-app", name="billing", ci_class="Application",
                            first_seen=NOW, last_seen=NOW)
    store.upsert_nodes([old, young, app])
    store.upsert_relationships([Relationship(rel_type="RUNS_ON", source="ci-app",
                                             target="ci-young")])
    store.upsert_nodes([Asset(asset_id="ast-1", serial_number="DUP1", ci_id="ci-young")])

    # Act
    res = run_import(store, [server("srv-x.example", serial_number="DUP1", line=4)],
                     source=DISCO, importer="test", now=NOW)

    # Assert: merged into the oldest, the other records its survivor and keeps its status
    assert [(m.survivor, m.duplicate, m.rule) for m in res.plan.merges] == [
        ("ci-old", "ci-young", "serial_number")]
    assert res.counts["merged"] == 1
    survivor = store.get_ci("ci-old")
    dup = store.get_ci("ci-young")
    assert dup.duplicate_of == "ci-old"
    assert dup.operational_status.value == "repair"
    assert survivor.name == "srv-x.example"
    assert survivor.environment == "prod"
    assert [r.key for r in store.relationships("ci-app")] == [("RUNS_ON", "ci-app", "ci-old")]
    assert store.get_node("Asset", "ast-1").ci_id == "ci-old"  # type: ignore[attr-defined]

    # Act again: the duplicate no longer takes part in identification
    again = run_import(store, [server("srv-x.example", serial_number="DUP1", line=4)],
                       source=DISCO, importer="test", now=NOW)
    assert again.counts["merged"] == 0 and again.counts["unchanged"] == 1


# -- bad input -------------------------------------------------------------------------------
def test_invalid_record_mid_stream_leaves_the_graph_as_before(store: GraphStore) -> None:
    # Arrange
    run_import(store, glpi_records(), source=GLPI, importer="test", now=NOW)
    before = dump(store)

    # Act
    with pytest.raises(InvalidRecordError) as info:
        run_import(store, failing([*sccm_records(), *fleet(5)], after=3), source=SCCM,
                   importer="test", now=NOW)

    # Assert: the graph is exactly as before; only the failed run is recorded
    assert info.value.file == "broken.csv" and info.value.line == 5
    assert dump(store) == before
    assert [r.status for r in runs(store)].count(RunStatus.FAILED) == 1


def test_unknown_ci_class_names_the_record(store: GraphStore) -> None:
    # Arrange
    before = dump(store)

    # Act
    with pytest.raises(UnknownCIClassError) as info:
        run_import(store, [*fleet(2), server("x", ci_class="Toaster", line=42,
                                             file="inv.json", native_key="t")],
                   source=DISCO, importer="test", now=NOW)

    # Assert
    assert "inv.json" in str(info.value) and "line 42" in str(info.value)
    assert "Toaster" in str(info.value)
    assert dump(store) == before


def test_unknown_relationship_type_names_the_record(store: GraphStore) -> None:
    with pytest.raises(UnknownRelationshipTypeError) as info:
        run_import(store, [RelationshipRecord(rel_type="LOVES", source=Identifiers(name="a"),
                                              target=Identifiers(name="b"), origin=at(9))],
                   source=DISCO, importer="test", now=NOW)
    assert "line 9" in str(info.value) and "LOVES" in str(info.value)
    assert store.counts()["CI"] == 0


def test_bad_attribute_value_names_the_record_and_field(store: GraphStore) -> None:
    with pytest.raises(InvalidRecordError) as info:
        run_import(store, [server("x", native_key="1", attrs={"business_criticality": 9},
                                  line=12)], source=DISCO, importer="test", now=NOW)
    assert info.value.line == 12 and info.value.field == "business_criticality"
    assert store.counts()["CI"] == 0


def test_unidentifiable_relationship_end_is_skipped_and_the_run_proceeds(
    store: GraphStore,
) -> None:
    # Act
    res = run_import(store, [
        server("app-host", line=2, native_key="h"),
        CIRecord(ci_class="Application", name="shop", identifiers=Identifiers(native_key="s"),
                 origin=at(3)),
        RelationshipRecord(rel_type="RUNS_ON", source=Identifiers(native_key="s"),
                           target=Identifiers(native_key="h"), origin=at(4)),
        RelationshipRecord(rel_type="DEPENDS_ON", source=Identifiers(native_key="s"),
                           target=Identifiers(native_key="nowhere"), origin=at(5)),
    ], source=DISCO, importer="test", now=NOW)

    # Assert
    assert [(s.record_type, s.origin) for s in res.skips] == [("relationship", at(5))]
    assert "nowhere" in res.skips[0].reason
    rels = store.relationships(None)
    assert [r.rel_type for r in rels] == ["RUNS_ON"]
    assert set(rels[0].lineage.sources) == {"disco"}


# -- other record kinds ----------------------------------------------------------------------
def test_groups_people_software_and_entitlements(store: GraphStore) -> None:
    # Act
    res = run_import(store, [
        GroupRecord(name="Linux Ops", email="linux@example.com", origin=at(1)),
        PersonRecord(name="Ada Lovelace", username="ada", groups=("Linux Ops",), origin=at(2)),
        CIRecord(ci_class="Server", name="srv-1", identifiers=Identifiers(native_key="1"),
                 support_group="Linux Ops", owner="ada", location="Paris DC1", origin=at(3)),
        SoftwareRecord(installed_on=Identifiers(native_key="1"), product="PostgreSQL",
                       vendor="PGDG", version="16.2", origin=at(4)),
        EntitlementRecord(native_key="L-1", name="PG support", product="PostgreSQL",
                          vendor="PGDG", seats=2, assigned_to_cis=(Identifiers(native_key="1"),),
                          assigned_to_people=("ada",), origin=at(5)),
    ], source=DISCO, importer="test", now=NOW)

    # Assert
    assert res.counts["skipped"] == 0
    ci = cis(store)[0]
    assert ci.support_group == "grp-linux-ops"
    assert ci.owner == "per-ada"
    assert ci.location_id == "loc-paris-dc1"
    person = store.get_node("Person", "per-ada")
    assert person.groups == ["grp-linux-ops"]  # type: ignore[attr-defined]
    installed = store.relationships(ci.ci_id, rel_types=["HAS_INSTALLED"])
    assert [(r.target, r.target_label, r.properties) for r in installed] == [
        ("sw-pgdg-postgresql", "SoftwareProduct", {"version": "16.2"})]
    ent = all_nodes(store, "Entitlement")[0]
    assert ent.product_id == "sw-pgdg-postgresql"
    assert ent.assigned_ci_ids == [ci.ci_id] and ent.assigned_person_ids == ["per-ada"]
    assert store.counts()["SupportGroup"] == 1 and store.counts()["Person"] == 1


def test_asset_with_a_serial_and_no_tracks_links_to_the_ci_with_that_serial(
    store: GraphStore,
) -> None:
    # Arrange
    run_import(store, [server("srv-7", serial_number="SN-77")], source=DISCO, importer="test",
               now=NOW)

    # Act
    run_import(store, [AssetRecord(asset_tag="T-77", serial_number="SN-77", origin=at(2))],
               source=GLPI, importer="test", now=NOW)

    # Assert
    asset = all_nodes(store, "Asset")[0]
    assert asset.ci_id == cis(store)[0].ci_id
    assert asset.lineage.sources["glpi"].first_seen == NOW


def test_dependents_listed_before_their_hosts_get_their_hosts_in_one_run(
    store: GraphStore,
) -> None:
    # Arrange: the application comes first, its middleware next, the server last
    records = [
        CIRecord(ci_class="Application", name="shop", origin=at(2),
                 identifiers=Identifiers(native_key="app", host=Identifiers(native_key="mw"))),
        CIRecord(ci_class="Middleware", name="tomcat", origin=at(3),
                 identifiers=Identifiers(native_key="mw", host=Identifiers(native_key="srv"))),
        server("srv-1", line=4, native_key="srv"),
        CIRecord(ci_class="Middleware", name="iis", origin=at(5),
                 identifiers=Identifiers(native_key="iis", host=Identifiers(native_key="gone"))),
        CIRecord(ci_class="Application", name="legacy", origin=at(6),
                 identifiers=Identifiers(native_key="leg", host=Identifiers(native_key="iis"))),
    ]

    # Act
    first = run_import(store, records, source=DISCO, importer="test", now=NOW)
    second = run_import(store, records, source=DISCO, importer="test", now=NOW)

    # Assert
    by_name = {c.name: c for c in cis(store)}
    assert by_name["shop"].host_id == by_name["tomcat"].ci_id
    assert by_name["tomcat"].host_id == by_name["srv-1"].ci_id
    assert by_name["iis"].host_id is None
    assert by_name["legacy"].host_id == by_name["iis"].ci_id
    assert first.counts["created"] == 5
    assert second.counts["updated"] == 0 and second.counts["unchanged"] == 5


def scenario(store: GraphStore, **kw: Any) -> None:
    """A mixed sequence of imports touching every record kind and a merge."""
    run_import(store, glpi_records(), source=GLPI, importer="test", now=NOW, **kw)
    run_import(store, sccm_records(), source=SCCM, importer="test", now=NOW, **kw)
    run_import(store, [
        server("app-host", line=2, native_key="h", serial_number="SN-H"),
        CIRecord(ci_class="Application", name="shop", origin=at(3),
                 identifiers=Identifiers(native_key="s", host=Identifiers(native_key="h"))),
        RelationshipRecord(rel_type="RUNS_ON", source=Identifiers(native_key="s"),
                           target=Identifiers(native_key="h"), origin=at(4)),
        SoftwareRecord(installed_on=Identifiers(native_key="h"), product="nginx",
                       version="1.25", origin=at(5)),
        PersonRecord(name="Ada", username="ada", groups=("Web",), origin=at(6)),
        AssetRecord(asset_tag="T-H", serial_number="SN-H", holder="ada", origin=at(7)),
    ], source=DISCO, importer="test", now=NOW, **kw)
    store.upsert_nodes([ConfigurationItem(ci_id="ci-manual", name="app-host copy",
                                          ci_class="Server", serial_number="SN-H",
                                          first_seen=NOW + timedelta(days=1))])
    store.upsert_relationships([Relationship(rel_type="DEPENDS_ON", source="ci-manual",
                                             target=cis(store)[0].ci_id)])
    run_import(store, [server("app-host", line=2, serial_number="SN-H")],
               source=DataSource(name="netscan", priority=10), importer="test",
               mode=RunMode.FULL, now=NOW + timedelta(days=2), **kw)


def test_large_store_mode_gives_the_same_graph(store: GraphStore, tmp_path: Any) -> None:
    # Arrange: the reference, with every candidate preloaded, in a memory store
    from cmdb_graph.store.memory import MemoryStore

    reference = MemoryStore(registry=store.registry)
    scenario(reference)

    # Act: candidates fetched per identifier (as beyond preload_limit CIs)
    scenario(store, preload_limit=0)

    # Assert
    assert dump(store) == dump(reference)
    assert store.get_ci("ci-manual").duplicate_of is not None
    assert all("ci-manual" not in (r.source, r.target) for r in store.relationships(None))


def test_reference_and_reserved_names_in_attributes(store: GraphStore) -> None:
    # Act: an importer put the group and location in attributes, and keys ingestion owns
    run_import(store, [server("db7", native_key="7", attrs={
        "support_group": "DBA", "location": "Lyon", "last_seen": "2024-03-18T07:12:45+00:00",
        "ci_id": "forged", "os_name": "Linux"})], source=DISCO, importer="test", now=NOW)

    # Assert
    ci = cis(store)[0]
    assert (ci.support_group, ci.location_id) == ("grp-dba", "loc-lyon")
    assert ci.ci_id != "forged" and ci.last_seen == NOW
    assert ci.attributes == {"source_last_seen": "2024-03-18T07:12:45+00:00",
                             "source_ci_id": "forged"}
    assert ci.os_name == "Linux"


def test_any_importer_error_is_recorded_as_a_failed_run_and_reraised(store: GraphStore) -> None:
    # Arrange
    def broken() -> Iterator[Any]:
        yield from fleet(3)
        raise OSError("connection reset while reading the export")

    # Act
    with pytest.raises(OSError):
        run_import(store, broken(), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)

    # Assert: no CI, no data source, one failed run naming the error
    assert store.counts()["CI"] == 0 and store.counts()["DataSource"] == 0
    [run] = runs(store)
    assert run.status is RunStatus.FAILED and "connection reset" in (run.error or "")
    assert run.mode is RunMode.FULL


def test_dry_run_of_a_failing_import_writes_nothing(store: GraphStore) -> None:
    with pytest.raises(InvalidRecordError):
        run_import(store, failing(fleet(3), after=1), source=DISCO, importer="test",
                   dry_run=True, now=NOW)
    assert all(v == 0 for v in store.counts().values())


def test_hostname_matching_two_different_machines_is_ambiguous_not_merged(
    store: GraphStore,
) -> None:
    # Arrange
    run_import(store, [server("a", line=2, hostname="web01", domain="a.example"),
                       server("b", line=3, hostname="web01", domain="b.example")],
               source=DISCO, importer="test", now=NOW)

    # Act
    res = run_import(store, [server("web01", line=9, hostname="web01")],
                     source=DataSource(name="ping", priority=5), importer="test", now=NOW)

    # Assert
    assert [(s.origin, "ambiguous" in s.reason) for s in res.skips] == [(at(9), True)]
    assert res.plan.merges == [] and store.counts()["CI"] == 2


def test_large_store_mode_looks_candidates_up_in_bulk(tmp_path: Any) -> None:
    # Arrange: a store that counts its identifier lookups
    from cmdb_graph.store.memory import MemoryStore

    class Counting(MemoryStore):
        calls: Counter[str] = Counter()

        def find_cis(self, identifiers: Any) -> Any:
            self.calls["find_cis"] += 1
            return super().find_cis(identifiers)

        def find_cis_bulk(self, field: str, values: Any) -> Any:
            self.calls[f"bulk:{field}"] += 1
            return super().find_cis_bulk(field, values)

    store = Counting()
    run_import(store, fleet(40), source=DISCO, importer="test", now=NOW)
    Counting.calls.clear()

    # Act: the same 40 servers again, beyond the preload limit, plus 40 relationships
    rels = [RelationshipRecord(rel_type="DEPENDS_ON", source=Identifiers(native_key=f"n{i}"),
                               target=Identifiers(native_key=f"n{(i + 1) % 40}"), origin=at(i))
            for i in range(40)]
    result = run_import(store, [*fleet(40), *rels], source=DISCO, importer="test", now=NOW,
                        preload_limit=0)

    # Assert: one lookup per identifier kind, none per record; same CIs found
    assert Counting.calls["find_cis"] == 0
    assert max(Counting.calls.values()) == 1
    assert result.counts["created"] == 40 and result.counts["unchanged"] == 40
    assert len(cis(store)) == 40


def test_large_store_delta_run_reads_what_its_records_name_not_the_source(
        tmp_path: Any) -> None:
    # Arrange: a store that notes the CIs its pages and lookups return
    from cmdb_graph.store.memory import MemoryStore

    class Noting(MemoryStore):
        paged: set[str] = set()
        looked_up: set[str] = set()

        def list_cis(self, flt: Any = None, **kw: Any) -> Any:
            page = super().list_cis(flt, **kw)
            self.paged.update(c.ci_id for c in page.items)
            return page

        def find_cis_bulk(self, field: str, values: Any) -> Any:
            found = super().find_cis_bulk(field, values)
            self.looked_up.update(c.ci_id for c in found)
            return found

    store = Noting()
    run_import(store, fleet(40), source=DISCO, importer="test", mode=RunMode.FULL, now=NOW)
    Noting.paged.clear()
    Noting.looked_up.clear()

    # Act: a delta run of 2 of the source's 40 servers, then a full run without one of them,
    # both beyond the preload limit
    delta = run_import(store, fleet(2), source=DISCO, importer="test", preload_limit=0,
                       now=NOW + timedelta(hours=1))
    delta_read = (set(Noting.paged), set(Noting.looked_up))
    Noting.paged.clear()
    full = run_import(store, fleet(40, skip=(7,)), source=DISCO, importer="test",
                      mode=RunMode.FULL, preload_limit=0, now=NOW + timedelta(hours=2))

    # Assert: the delta run read its 2 CIs and counted no miss; the full run paged through
    # the source's 40 and counted the one it missed
    assert delta_read == (set(), {c.ci_id for c in cis(store) if c.name in ("srv-00", "srv-01")})
    assert delta.counts["unchanged"] == 2 and delta.plan.misses == {}
    assert len(Noting.paged) == 40
    assert list(full.plan.misses.values()) == [1] and full.counts["unchanged"] == 39


# -- one service across sources (name_system) -------------------------------------------------
def service(name: str, service_name: str, system: str | None, *, key: str,
            ci_class: str = "Container") -> CIRecord:
    attrs: dict[str, Any] = {"service_name": service_name}
    if system is not None:
        attrs["system"] = system
    return CIRecord(ci_class=ci_class, name=name, identifiers=Identifiers(native_key=key),
                    attributes=attrs, origin=at(1, f"{key}.yaml"))


@pytest.mark.parametrize("preload_limit", [0, 50_000])
def test_one_service_from_two_sources_is_one_ci_with_the_rule_recorded(
        store: GraphStore, preload_limit: int) -> None:
    # Arrange: compose names the service 'cart', Kubernetes 'shop/cart'; both of system shop
    run_import(store, [service("cart", "cart", "shop", key="shop/cart")], source="compose",
               importer="compose", now=NOW, preload_limit=preload_limit)

    # Act: Kubernetes, then a Backstage database resource of the same service
    k8s = run_import(store, [service("shop/cart", "cart", "Shop", key="shop/deployment/cart")],
                     source="k8s", importer="kubernetes", now=NOW + timedelta(hours=1),
                     preload_limit=preload_limit)
    run_import(store, [service("cart", "CART", "shop", key="resource:cart", ci_class="Database")],
               source="backstage", importer="backstage", now=NOW + timedelta(hours=2),
               preload_limit=preload_limit)

    # Assert: one CI, each later source's lineage names the rule, value and CI it matched
    (ci,) = cis(store)
    assert set(ci.native_keys) == {"compose:shop/cart", "k8s:shop/deployment/cart",
                                   "backstage:resource:cart"}
    seen = ci.lineage.sources
    assert seen["compose"].matched_by is None
    assert seen["k8s"].matched_by == (f"name_system 'cart@shop' matched {ci.ci_id} 'cart' "
                                      "(seen by compose)")
    assert seen["backstage"].matched_by is not None
    assert "seen by compose, k8s" in seen["backstage"].matched_by
    assert k8s.plan.warnings == []


def test_same_service_name_in_another_system_is_a_duplicate_candidate(store: GraphStore) -> None:
    # Arrange
    run_import(store, [service("cart", "cart", "shop", key="shop/cart")], source="compose",
               importer="compose", now=NOW)

    # Act: a service 'cart' of another system, and one with no system at all
    result = run_import(store, [service("billing/cart", "cart", "billing", key="b/cart"),
                                service("cart-x", "cart", None, key="x/cart")],
                        source="k8s", importer="kubernetes", now=NOW)

    # Assert: three CIs, the run warns of each pair of candidates, naming both systems
    assert len(cis(store)) == 3
    reasons = [w.reason for w in result.plan.warnings]
    assert len(reasons) == 3
    assert all(r.startswith("duplicate candidate: Container ") for r in reasons)
    assert any("system 'billing' here and 'shop' on" in r for r in reasons)
    assert any("system 'not stated' here and 'shop' on" in r for r in reasons)


# -- runs tell the truth (issue 17) ----------------------------------------------------------
def _run_records(store: GraphStore, start: int, run_id: str) -> list[Any]:
    return [r for r in store.feed_since(start, limit=10_000) if r.actor.run_id == run_id]


def _run_status(record: Any, run_id: str) -> str | None:
    for change in record.nodes:
        if change.label == "ImportRun" and change.key == run_id and change.new:
            # lean rows leave the default out: a run is "running" unless it says otherwise
            return str(change.new.get("status", RunStatus.RUNNING.value))
    return None


@pytest.mark.parametrize("large", [False, True], ids=["one-write", "many-writes"])
def test_a_run_is_stored_before_its_data_and_succeeded_only_by_its_last_write(
    store: GraphStore, large: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: on Neo4j a "large" run is larger than one transaction; the embedded store
    # writes any run at once
    if large and hasattr(store, "tx_limit"):
        monkeypatch.setattr(store, "tx_limit", 5)
        monkeypatch.setattr(store, "batch_size", 3)
    start = store.feed_head()

    # Act
    res = run_import(store, fleet(12), source=DISCO, importer="test", now=NOW)

    # Assert: the run's first record holds the run, its last marks it succeeded and no
    # record before the last says succeeded
    records = _run_records(store, start, res.run.run_id)
    statuses = [_run_status(r, res.run.run_id) for r in records]
    assert statuses[0] is not None
    assert statuses[-1] == RunStatus.SUCCEEDED.value
    assert RunStatus.SUCCEEDED.value not in statuses[:-1]
    many = large and hasattr(store, "tx_limit")
    assert (len(records) > 1) is many
    if many:
        assert statuses[0] == RunStatus.RUNNING.value
    assert [r.status for r in runs(store)] == [RunStatus.SUCCEEDED]


def test_a_run_left_running_is_marked_failed_by_the_next_run(store: GraphStore) -> None:
    # Arrange: what a process killed between its first and last write leaves
    killed = ImportRun(run_id="run-killed", source="disco", importer="test",
                       status=RunStatus.RUNNING, started_at=NOW - timedelta(hours=1))
    store.upsert_nodes([killed])

    # Act
    res = run_import(store, fleet(2), source=DISCO, importer="test", now=NOW)

    # Assert
    by_id = {r.run_id: r for r in runs(store)}
    assert by_id["run-killed"].status is RunStatus.FAILED
    assert "interrupted" in (by_id["run-killed"].error or "")
    assert by_id[res.run.run_id].status is RunStatus.SUCCEEDED


def test_a_merge_moves_and_deletes_the_duplicates_relationships_in_the_runs_one_write(
    store: GraphStore,
) -> None:
    # Arrange: two CIs with one serial; an application runs on the younger
    old = ConfigurationItem(ci_id="ci-old", name="srv-x", ci_class="Server",
                            serial_number="DUP1", first_seen=NOW - timedelta(days=30))
    young = ConfigurationItem(ci_id="ci-young", name="srv-x (2)", ci_class="Server",
                              serial_number="DUP1", first_seen=NOW - timedelta(days=3))
    app = ConfigurationItem(ci_id="ci-app", name="billing", ci_class="Application")
    store.upsert_nodes([old, young, app])
    store.upsert_relationships([Relationship(rel_type="RUNS_ON", source="ci-app",
                                             target="ci-young")])
    start = store.feed_head()

    # Act
    res = run_import(store, [server("srv-x.example", serial_number="DUP1")], source=DISCO,
                     importer="test", now=NOW)

    # Assert: one record holds the merge, the moved relationship and the deleted one
    records = _run_records(store, start, res.run.run_id)
    assert len(records) == 1
    rels = {(r.key, r.op.value) for r in records[0].relationships}
    assert ((("RUNS_ON", "ci-app", "ci-old"), "added") in rels
            and (("RUNS_ON", "ci-app", "ci-young"), "removed") in rels)
    assert [r.key for r in store.relationships("ci-app")] == [("RUNS_ON", "ci-app", "ci-old")]


def test_control_characters_of_any_runs_records_are_removed_with_a_warning(
    store: GraphStore,
) -> None:
    # Arrange: records that did not pass an importer (the API's, a connector's)
    rec = server("bad\x01name\x00", fqdn="ctl.example", attrs={"description": "a\x0bb\tc"},
                 line=7, file="api")

    # Act
    res = run_import(store, [rec], source=DISCO, importer="test", now=NOW)

    # Assert: stored without them, one warning naming the record and its fields
    [ci] = cis(store)
    assert (ci.name, ci.description) == ("badname", "ab\tc")
    [warning] = res.plan.warnings
    assert warning.origin is not None and warning.origin.line == 7
    assert "control characters removed from name, attributes.description" in warning.reason


def test_a_value_of_nothing_but_control_characters_refuses_the_run(store: GraphStore) -> None:
    # Act / Assert: one located error; nothing but the failed run is written
    with pytest.raises(InvalidRecordError, match="nothing but control characters") as info:
        run_import(store, [server("\x00\x01", fqdn="x.example", line=3, file="api")],
                   source=DISCO, importer="test", now=NOW)
    assert info.value.line == 3 and info.value.field == "name"
    assert cis(store) == []


# -- relationships a full run no longer asserts ------------------------------------------------
def links(*targets: int) -> list[Any]:
    """``srv-00`` DEPENDS_ON each of ``targets`` (ends by serial number)."""
    return [RelationshipRecord(rel_type="DEPENDS_ON", source=Identifiers(serial_number="SER0000"),
                               target=Identifiers(serial_number=f"SER{t:04d}"), origin=at(20 + t))
            for t in targets]


def rel_keys(store: GraphStore) -> list[tuple[str, str, str]]:
    names = {c.ci_id: c.name for c in cis(store)}
    return sorted((r.rel_type, names[r.source], names[r.target])
                  for r in store.relationships(None) if r.rel_type == "DEPENDS_ON")


def test_full_run_removes_a_relationship_it_no_longer_asserts(store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(4) + links(1, 2, 3), source=DISCO, importer="test",
               mode=RunMode.FULL, now=NOW)
    head = store.feed_head()

    # Act
    res = run_import(store, fleet(4) + links(1, 2), source=DISCO, importer="test",
                     mode=RunMode.FULL, breaker_share=0.5, now=NOW + timedelta(days=1))

    # Assert: removed, counted, and in the change feed
    assert rel_keys(store) == [("DEPENDS_ON", "srv-00", "srv-01"),
                               ("DEPENDS_ON", "srv-00", "srv-02")]
    assert res.counts["relationships_removed"] == 1
    gone = [(r.rel_type, r.new) for c in store.feed_since(head) for r in c.relationships
            if r.rel_type == "DEPENDS_ON" and r.new is None]
    assert gone == [("DEPENDS_ON", None)]

    # Act: the same full run again removes nothing
    again = run_import(store, fleet(4) + links(1, 2), source=DISCO, importer="test",
                       mode=RunMode.FULL, now=NOW + timedelta(days=2))

    # Assert
    assert again.counts["relationships_removed"] == 0
    assert len(rel_keys(store)) == 2


def test_delta_run_removes_no_relationship(store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(4) + links(1, 2, 3), source=DISCO, importer="test",
               mode=RunMode.FULL, now=NOW)

    # Act
    res = run_import(store, fleet(4) + links(1, 2), source=DISCO, importer="test",
                     now=NOW + timedelta(days=1))

    # Assert
    assert res.counts["relationships_removed"] == 0
    assert len(rel_keys(store)) == 3


def test_relationship_another_source_asserts_stays_without_this_source(
        store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(4) + links(1, 2, 3), source=DISCO, importer="test",
               mode=RunMode.FULL, now=NOW)
    run_import(store, links(3), source=GLPI, importer="test", now=NOW)

    # Act
    res = run_import(store, fleet(4) + links(1, 2), source=DISCO, importer="test",
                     mode=RunMode.FULL, breaker_share=0.5, now=NOW + timedelta(days=1))

    # Assert
    assert res.counts["relationships_removed"] == 0
    assert len(rel_keys(store)) == 3
    kept = [r for r in store.relationships(None) if r.rel_type == "DEPENDS_ON"
            and "disco" not in r.lineage.sources]
    assert [sorted(r.lineage.sources) for r in kept] == [["glpi"]]


def test_breaker_refuses_a_run_that_drops_most_relationships(store: GraphStore) -> None:
    # Arrange
    run_import(store, fleet(4) + links(1, 2, 3), source=DISCO, importer="test",
               mode=RunMode.FULL, now=NOW)
    before = dump(store, without=())

    # Act / Assert: refused, nothing removed
    with pytest.raises(ImportAbortedError) as info:
        run_import(store, fleet(4) + links(1), source=DISCO, importer="test",
                   mode=RunMode.FULL, breaker_share=0.5, now=NOW + timedelta(days=1))
    assert "2 of its 3 relationships" in str(info.value)
    assert dump(store, without=()) == before
