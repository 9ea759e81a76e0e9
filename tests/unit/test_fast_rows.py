"""``fast_row`` gives exactly pydantic's lean JSON row, or refuses (and pydantic decides)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.ingest.reconcile import fast_lineage, fast_seen
from cmdb_graph.model import (
    NODE_SPECS,
    Asset,
    AttributeSource,
    ConfigurationItem,
    DataSource,
    ImportRun,
    Lineage,
    OperationalStatus,
    Registry,
    Relationship,
    RunMode,
    RunStatus,
    SourceSeen,
)
from cmdb_graph.store.batch import WriteBatch, prepare_batch
from cmdb_graph.store.neo4j.props import from_props, to_props
from cmdb_graph.store.rows import REL_KEY_FIELDS, decode_lineage, encode_lineage, fast_row
from cmdb_graph.synthetic import NODE_LABELS, REL, generate_rows, models_from_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _exclude(model: BaseModel) -> set[str]:
    label = getattr(type(model), "LABEL", "")
    return {NODE_SPECS[label].key} if label in NODE_SPECS else set(REL_KEY_FIELDS)


def _pydantic(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_defaults=True, exclude=_exclude(model))


def _synthetic_models() -> list[Any]:
    out: list[Any] = []
    for label, rows in generate_rows(1000, seed=7, now=T0):
        if label in NODE_LABELS or label == REL:
            out.extend(models_from_rows(label, rows[:300]))
    return out


def test_synthetic_estate_rows_equal_pydantic() -> None:
    models = _synthetic_models()
    labels = {getattr(type(m), "LABEL", "rel") for m in models}
    assert {"CI", "Asset", "rel"} <= labels
    memo: dict[int, Any] = {}
    for m in models:
        fast = fast_row(m, _exclude(m), memo)
        assert fast is not None, type(m).__name__
        assert fast == _pydantic(m)


LINEAGE = Lineage(
    sources={"a": SourceSeen(first_seen=T0, last_seen=T0 + timedelta(days=1), native_key="a:1",
                             missed_full_runs=2),
             "b": SourceSeen(first_seen=T0, last_seen=T0)},
    attributes={"name": AttributeSource(source="a", asserted_at=T0),
                "fqdn": AttributeSource(source="b", asserted_at=T0.replace(microsecond=123000))},
)


@pytest.mark.parametrize(
    "model",
    [
        ConfigurationItem(ci_id="c1", name="n", ci_class="Server"),
        ConfigurationItem(ci_id="c1", name="n", ci_class="Server", lineage=LINEAGE,
                          operational_status=OperationalStatus.RETIRED, business_criticality=1,
                          mac_addresses=["00:11:22:33:44:55"], attributes={"x": 1.5, "y": None,
                                                                           "z": True, "w": "s"},
                          first_seen=T0, last_seen=T0),
        ConfigurationItem(ci_id="c1", name="n", ci_class="Server",
                          lineage=Lineage(sources={"a": SourceSeen(first_seen=T0, last_seen=T0)})),
        ConfigurationItem(ci_id="c1", name="n", ci_class="Server",
                          first_seen=datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=2)))),
        Asset(asset_id="a1", cost=0.0, purchase_date=date(2020, 2, 29), lineage=LINEAGE),
        Relationship(rel_type="RUNS_ON", source="a", target="b", optional=True, lineage=LINEAGE,
                     properties={"k": 3}),
        DataSource(name="src", priority=70, stale_after_days=3),
        ImportRun(run_id="r", source="s", importer="i", mode=RunMode.FULL,
                  status=RunStatus.SUCCEEDED, started_at=T0, counts={"created": 3}),
        ConfigurationItem(ci_id="c1", name="n", ci_class="Server",
                          lineage=fast_lineage({"s": fast_seen(T0, T0, None, 0)},
                                               {"name": AttributeSource(source="s",
                                                                        asserted_at=T0)})),
    ],
    ids=lambda m: type(m).__name__,
)
def test_edge_cases_equal_pydantic(model: BaseModel) -> None:
    fast = fast_row(model, _exclude(model))
    assert fast is not None
    assert fast == _pydantic(model)


@pytest.mark.parametrize(
    "model",
    [
        ConfigurationItem.model_construct(ci_id="x", name=42, ci_class="Server"),
        ConfigurationItem.model_construct(ci_id="x", name="x", ci_class="Server",
                                          operational_status="operational"),
        ConfigurationItem.model_construct(ci_id="x", name="x", ci_class="Server",
                                          attributes={"k": float("nan")}),
        ConfigurationItem.model_construct(ci_id="x", name="x", ci_class="Server",
                                          mac_addresses=["a", 1]),
        Asset.model_construct(asset_id="a", purchase_date="2020-13-45"),
        Relationship.model_construct(rel_type="RUNS_ON", source="a", target="b",
                                     first_seen="yesterday"),
    ],
    ids=str,
)
def test_values_of_the_wrong_type_are_left_to_pydantic(model: BaseModel) -> None:
    assert fast_row(model, _exclude(model)) is None


def test_prepare_batch_still_reports_bad_values() -> None:
    bad = ConfigurationItem.model_construct(ci_id="x", name=42, ci_class="Server")
    with pytest.raises(InvalidRecordError) as info:
        prepare_batch(WriteBatch(nodes=[bad]), Registry(), existing=None)
    assert info.value.field == "name"


def test_lineage_json_is_compact_and_round_trips() -> None:
    row = LINEAGE.model_dump(mode="json", exclude_defaults=True)
    row["attributes"]["os_name"] = dict(row["attributes"]["name"])
    text = encode_lineage(row)
    assert text.count('"source"') == 0 and "stamps" in text
    assert len(text) < len(json.dumps(row))
    back = decode_lineage(json.loads(text))
    assert back == row
    assert list(back["attributes"]) == sorted(row["attributes"])
    assert Lineage.model_validate(back) == Lineage.model_validate(row)


def test_lineage_json_reads_the_plain_form_and_keeps_odd_entries_plain() -> None:
    plain = {"sources": {"a": {"first_seen": "2026-01-01T00:00:00Z",
                               "last_seen": "2026-01-01T00:00:00Z"}},
             "attributes": {"n": {"source": "a", "asserted_at": "2026-01-01T00:00:00Z"}}}
    assert decode_lineage(json.loads(json.dumps(plain))) == plain
    odd = {"attributes": {"n": {"source": "a", "asserted_at": "t", "extra": 1}}}
    assert json.loads(encode_lineage(odd)) == odd
    assert decode_lineage(json.loads(encode_lineage({}))) == {}


def test_props_round_trip_with_compact_lineage() -> None:
    ci = ConfigurationItem(ci_id="c1", name="n", ci_class="Server", lineage=LINEAGE,
                           first_seen=T0)
    row = _pydantic(ci)
    props = to_props(ConfigurationItem, row)
    assert "stamps" in props["lineage"]
    assert from_props(ConfigurationItem, props, skip=("ci_id",)) == row


def test_props_fill_scalar_defaults_and_drop_empty_values() -> None:
    row = {"name": "n", "ci_class": "Server", "mac_addresses": [], "attributes": {},
           "operational_status": None, "fqdn": None, "native_keys": ["s:1"]}
    props = to_props(ConfigurationItem, row)
    assert props == {"name": "n", "ci_class": "Server", "native_keys": ["s:1"]}
    props = to_props(ConfigurationItem, {"name": "n", "ci_class": "Server"})
    assert props == {"name": "n", "ci_class": "Server", "operational_status": "operational"}
    rel = to_props(Relationship, {"properties": {"b": 1, "a": 2}})
    assert rel == {"optional": False, "basis": "declared", "source_label": "CI",
                   "target_label": "CI", "properties": '{"a":2,"b":1}'}
