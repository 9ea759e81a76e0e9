"""The shared reading step and the guard: limits, control characters, repeated keys and
columns, the warnings channel into the run's report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.ingest import run_import
from cmdb_graph.model.records import CIRecord, InputWarning
from cmdb_graph.store.memory import MemoryStore
from importers import get_importer
from importers._template import AcmeInventoryImporter
from importers.readers import MAX_DEPTH, check_depth, load_yaml_documents, read_bytes, read_csv


def _nested(depth: int) -> object:
    """``depth`` lists, one in the other."""
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_is_checked_up_to_the_limit_exactly(tmp_path: Path) -> None:
    # decoded values, and YAML while it is composed, count their lists and mappings alike
    check_depth(_nested(MAX_DEPTH), "f")
    with pytest.raises(InvalidRecordError, match=f"deeper than {MAX_DEPTH}"):
        check_depth(_nested(MAX_DEPTH + 1), "f")
    for depth in (MAX_DEPTH, MAX_DEPTH + 1):
        path = tmp_path / f"{depth}.yaml"
        path.write_text(json.dumps(_nested(depth)))
        if depth == MAX_DEPTH:
            assert load_yaml_documents(path).items == [_nested(depth)]
        else:
            with pytest.raises(InvalidRecordError, match=f"deeper than {MAX_DEPTH}"):
                load_yaml_documents(path)


def test_yaml_anchors_within_reason_load_and_self_reference_does_not(tmp_path: Path) -> None:
    # Arrange: the common compose idiom, and an alias inside its own anchor
    ok = tmp_path / "ok.yaml"
    ok.write_text("x-base: &base {image: app, restart: always}\n"
                  "services:\n  a: {<<: *base}\n  b: {<<: *base, image: other}\n")
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &a [1, *a]\n")

    # Act / Assert
    [doc] = load_yaml_documents(ok).items
    assert doc["services"]["b"] == {"image": "other", "restart": "always"}
    with pytest.raises(InvalidRecordError, match="refers to the node that holds it") as info:
        load_yaml_documents(loop)
    assert info.value.line == 1


def test_a_yaml_mapping_that_repeats_a_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  web: {image: a}\n  db: {image: b}\n  web: {image: c}\n")
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("compose").parse(path))
    assert (info.value.line, info.value.field) == (4, "web")
    assert "line 2 and line 4" in str(info.value)


@pytest.mark.parametrize(("kind", "text"), [
    ("compose", 'services:\n  web:\n    image: "a\x01b"\n'),
    ("kubernetes", 'apiVersion: v1\nkind: Service\nmetadata:\n  name: "we\x01b"\n'),
])
def test_a_raw_control_character_in_yaml_is_one_located_error(tmp_path: Path, kind: str,
                                                               text: str) -> None:
    # PyYAML's reader refuses it before parsing starts: still one error naming file and line
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    with pytest.raises(InvalidRecordError, match="control character U\\+0001") as info:
        list(get_importer(kind).parse(path))
    assert (info.value.file, info.value.line) == (str(path), text.count("\n", 0,
                                                                       text.index("\x01")) + 1)


def test_a_regular_file_of_size_zero_is_read_to_its_end(tmp_path: Path) -> None:
    # /proc files report size 0 but have content; a plain empty file is just empty
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    assert read_bytes(empty) == b""
    assert read_bytes(Path("/proc/self/status")).startswith(b"Name:")


def test_repeated_csv_columns_read_the_first_and_warn(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "dup.csv"
    path.write_text("id,name,name,serial\n1,first,second,S1\n")

    # Act
    table = read_csv(path)

    # Assert
    assert table.rows == [(2, {"id": "1", "name": "first", "serial": "S1"})]
    [warning] = table.warnings
    assert warning.origin.line == 1 and "'name' 2 times (columns 2, 3)" in warning.reason


def test_control_characters_are_removed_with_a_warning_per_record() -> None:
    # Arrange: NUL, escape, DEL, a C1 control and a lone surrogate (JSON "\ud800"); tab kept
    doc = json.loads('{"hosts": [{"id": "h\\u0000-1", "name": "web\\u001b01\\tx",'
                     ' "serial": "S\\u007f\\u0090N\\ud800"}, {"id": "h-2"}]}')

    # Act
    items = AcmeInventoryImporter().records(doc, "page")

    # Assert
    [warning] = [i for i in items if isinstance(i, InputWarning)]
    assert warning.origin.record == "/hosts/0"
    for name in ("identifiers.native_key", "name", "identifiers.serial_number"):
        assert name in warning.reason
    ci = next(i for i in items if isinstance(i, CIRecord))
    assert (ci.identifiers.native_key, ci.name, ci.identifiers.serial_number) == (
        "h-1", "web01\tx", "SN")


def test_a_value_of_nothing_but_control_characters_is_an_error() -> None:
    with pytest.raises(InvalidRecordError) as info:
        AcmeInventoryImporter().records({"hosts": [{"id": "\x00\x01", "name": "a"}]}, "page")
    assert (info.value.file, info.value.record) == ("page", "/hosts/0")
    assert info.value.field == "identifiers.native_key"


def test_an_error_message_never_carries_a_raw_control_character() -> None:
    with pytest.raises(InvalidRecordError) as info:
        AcmeInventoryImporter().records({"hosts": [{"name": "a"}, "\x07bell"]}, "page\x1b")
    assert "\x07" not in str(info.value)


def test_repeated_native_keys_are_reported_with_both_locations() -> None:
    # Act
    items = AcmeInventoryImporter().records(
        {"hosts": [{"id": "h-1"}, {"id": "h-2"}, {"id": "h-1", "name": "again"}]}, "page")

    # Assert: both rows stay (ingestion makes them one CI), the later one is reported
    [warning] = [i for i in items if isinstance(i, InputWarning)]
    assert warning.origin.record == "/hosts/2"
    assert "'h-1'" in warning.reason and "record /hosts/0" in warning.reason
    assert len([i for i in items if isinstance(i, CIRecord)]) == 3


def test_a_file_that_yields_nothing_is_an_error_but_an_empty_page_is_not(
        tmp_path: Path) -> None:
    path = tmp_path / "nothing.json"
    path.write_text('{"hosts": []}')
    with pytest.raises(InvalidRecordError, match="yields no records"):
        list(AcmeInventoryImporter().parse(path))
    assert AcmeInventoryImporter().records({"hosts": []}, "page 9") == []


def test_warnings_reach_the_runs_report_and_are_not_applied(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "dup.csv"
    path.write_text("sys_id,name,name,sys_class_name\n"
                    "a1,web\x0001,other,cmdb_ci_linux_server\n"
                    "a1,web01,other,cmdb_ci_linux_server\n")
    store = MemoryStore()

    # Act
    result = run_import(store, get_importer("servicenow-ci").parse(path), source="snow",
                        importer="servicenow-ci")

    # Assert
    reasons = sorted(w.reason for w in result.plan.warnings)
    assert len(reasons) == 3, reasons
    assert any("column 'name' 2 times" in r for r in reasons)
    assert any("control characters removed from name" in r for r in reasons)
    assert any("native key 'a1' repeats that of" in r for r in reasons)
    assert [c.name for c in store.list_cis().items] == ["web01"]
    assert result.counts["skipped"] == 0
