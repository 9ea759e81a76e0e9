"""Which CI a person means (``resolve_ci``), and ids back to names, on a real MemoryStore."""

from __future__ import annotations

import doctest

import pytest

import cmdb_graph.service.resolve
from cmdb_graph.errors import AmbiguousCIError, CINotFoundError
from cmdb_graph.model import (
    ConfigurationItem,
    OperationalStatus,
    Person,
    Relationship,
    SupportGroup,
)
from cmdb_graph.service.resolve import (
    ci_names,
    ids_in,
    resolve_ci,
    support_contact,
    with_names,
)
from cmdb_graph.store.base import WriteBatch
from cmdb_graph.store.memory import MemoryStore


def ci(ci_id: str, name: str, ci_class: str = "Server", **fields: object) -> ConfigurationItem:
    return ConfigurationItem(ci_id=ci_id, name=name, ci_class=ci_class, **fields)  # type: ignore[arg-type]


@pytest.fixture
def store() -> MemoryStore:
    """web01 with every kind of identifier; two CIs named alike; a merged duplicate; a host
    name that is another CI's name; a support group with its people."""
    s = MemoryStore()
    s.apply(WriteBatch(nodes=[
        Person(person_id="p1", name="Ada Lovelace", email="ada@example.com"),
        Person(person_id="p2", name="Alan Turing"),
        SupportGroup(group_id="grp-web", name="Web Team", email="web@example.com",
                     on_call="p1", manager="p2"),
        ci("ci-web", "web01", fqdn="web01.example.net", hostname="WEB01",
           serial_number="SN-1", asset_tag="AT-1", cloud_id="i-0abc",
           mac_addresses=["00:11:22:33:44:55"], ip_addresses=["10.1.4.7"],
           native_keys=["glpi:42"], support_group="grp-web"),
        ci("ci-api1", "orders-api", "Application"),
        ci("ci-api2", "Orders-API", "ApplicationService"),
        ci("ci-mail", "mail", "Application"),
        ci("ci-mail-old", "mail", "Application", duplicate_of="ci-mail",
           operational_status=OperationalStatus.RETIRED),
        ci("ci-db", "DB", "Database"),
        ci("ci-db2", "db-replica", "Database"),
        ci("ci-cache1", "cache"),
        ci("ci-cache2", "cache-host", hostname="cache"),
        ci("ci-redis", "default/redis-cart", "Container"),
        ci("ci-cart", "default/cartservice", "Container"),
    ]))
    s.apply(WriteBatch(relationships=[
        Relationship(rel_type="RUNS_ON", source="ci-api1", target="ci-web"),
    ]))
    return s


@pytest.mark.parametrize("text,field", [
    ("ci-web", "ci_id"),
    ("web01.example.net", "fqdn"),
    ("web01", "hostname"),  # the host name WEB01, case-insensitively, before the name
    ("SN-1", "serial_number"),
    ("AT-1", "asset_tag"),
    ("i-0abc", "cloud_id"),
    ("00:11:22:33:44:55", "mac_addresses"),
    ("glpi:42", "native_keys"),
    ("10.1.4.7", "ip_addresses"),
    ("  web01.EXAMPLE.net ", "fqdn"),
])
def test_every_identifier_names_the_ci(store: MemoryStore, text: str, field: str) -> None:
    # Act
    hit = resolve_ci(store, text, graph=store.dependency_graph)

    # Assert
    assert (hit.ci.ci_id, hit.matched_on) == ("ci-web", field)


def test_a_unique_part_of_a_name_names_the_ci(store: MemoryStore) -> None:
    hit = resolve_ci(store, "redis-cart")

    assert (hit.ci.ci_id, hit.matched_on, hit.value) == ("ci-redis", "name", "default/redis-cart")


def test_a_whole_name_wins_over_names_that_contain_it(store: MemoryStore) -> None:
    hit = resolve_ci(store, "db")

    assert (hit.ci.ci_id, hit.matched_on) == ("ci-db", "name")


def test_one_ci_s_identifier_and_another_s_name_are_ambiguous(store: MemoryStore) -> None:
    with pytest.raises(AmbiguousCIError) as caught:
        resolve_ci(store, "cache")

    found = {(h.ci.ci_id, h.matched_on) for h in caught.value.candidates}
    assert found == {("ci-cache1", "name"), ("ci-cache2", "hostname")}


def test_names_that_differ_only_in_case_are_ambiguous(store: MemoryStore) -> None:
    with pytest.raises(AmbiguousCIError) as caught:
        resolve_ci(store, "orders-api")

    assert {h.ci.ci_id for h in caught.value.candidates} == {"ci-api1", "ci-api2"}
    assert not caught.value.truncated
    assert str(caught.value) == ("'orders-api' matches 2 CIs: name one by its ci_id or a more "
                                 "exact name or identifier")


def test_parts_of_several_names_are_ambiguous(store: MemoryStore) -> None:
    with pytest.raises(AmbiguousCIError) as caught:
        resolve_ci(store, "cart")

    assert {h.ci.ci_id for h in caught.value.candidates} == {"ci-redis", "ci-cart"}


def test_a_merged_duplicate_gives_way_to_its_survivor(store: MemoryStore) -> None:
    assert resolve_ci(store, "mail").ci.ci_id == "ci-mail"
    assert resolve_ci(store, "ci-mail-old").ci.ci_id == "ci-mail-old"  # its own ci_id still works


def test_more_candidates_than_listed_are_flagged(store: MemoryStore) -> None:
    with pytest.raises(AmbiguousCIError) as caught:
        resolve_ci(store, "c", max_candidates=2)

    assert len(caught.value.candidates) == 2 and caught.value.truncated
    assert "matches 2+ CIs" in str(caught.value)


@pytest.mark.parametrize("text", ["nothing-like-it", "   ", "10.9.9.9"])
def test_no_match_is_not_found(store: MemoryStore, text: str) -> None:
    with pytest.raises(CINotFoundError):
        resolve_ci(store, text, graph=store.dependency_graph)


def test_ip_addresses_need_the_graph(store: MemoryStore) -> None:
    with pytest.raises(CINotFoundError):
        resolve_ci(store, "10.1.4.7")


def test_names_replace_ids_that_stand_alone(store: MemoryStore) -> None:
    # Arrange
    names = ci_names(store, ["ci-web", "ci-api1", "ci-gone"])

    # Act
    text = with_names("RUNS_ON:ci-api1->ci-web; ci-web-2 and xci-web stay; (ci-web).", names)

    # Assert
    assert names == {"ci-web": "web01", "ci-api1": "orders-api"}
    assert text == "RUNS_ON:orders-api->web01; ci-web-2 and xci-web stay; (web01)."
    assert ids_in("a ci-1->ci-2, 'x:y'") >= {"ci-1", "ci-2", "x", "y", "x:y", "a"}


def test_support_contact_names_the_group_and_its_people(store: MemoryStore) -> None:
    # Act
    known = support_contact(store, "grp-web")
    unknown = support_contact(store, "grp-nobody")

    # Assert
    assert known.name == "Web Team"
    assert known.contact() == ("web@example.com, on call Ada Lovelace <ada@example.com>, "
                               "manager Alan Turing")
    assert (unknown.name, unknown.contact()) == ("grp-nobody", "")


def test_docstring_examples() -> None:
    assert doctest.testmod(cmdb_graph.service.resolve).failed == 0
