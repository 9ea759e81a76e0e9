"""SWID tag importer: the rpm2swidtag samples, supplemental and patch tags, bad input."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import Identifiers, InputWarning, SoftwareRecord
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.xml_fuzz import check_xml_mutant

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata" / "swid"
TAGS = REPO / "tests" / "fixtures" / "importers" / "swid_tags"

VALID = (TAGS / "editor-4.2.swidtag").read_bytes()


def _software(path: Path, **options: str) -> list[SoftwareRecord]:
    records = list(get_importer("swid", **options).parse(path))
    assert all(isinstance(r, SoftwareRecord | InputWarning) for r in records)
    return [r for r in records if isinstance(r, SoftwareRecord)]


def test_real_tags_folder() -> None:
    # Arrange / Act
    records = _software(REALDATA, host="build01.example.test")

    # Assert: two primary tags; the supplemental s1 selects @name='Primary SWID tag', which is
    # neither of them, so it adds nothing
    got = {(r.installed_on.fqdn, r.product, r.version, r.vendor) for r in records}
    assert got == {
        ("build01.example.test", "Example OS Distribution", "3.x86_64",
         "Example A Organization"),
        # the tag creator's name is empty: no vendor
        ("build01.example.test", "pkg1", "1.2.0-1.fc28.x86_64", None),
    }
    pkg1 = next(r for r in records if r.product == "pkg1")
    assert pkg1.attributes["swid_meta_summary"] == "Example rpm package"
    assert pkg1.attributes["swid_version_scheme"] == "rpm"
    assert "swid_supplemental_tags" not in pkg1.attributes


def test_a_supplemental_tag_without_its_primary_is_a_warning_not_an_error() -> None:
    # Act: the supplemental tag alone (the command line reads each file on its own)
    path = REALDATA / "rpm2swidtag-supplemental-s1.swidtag"
    items = list(get_importer("swid", host="h1").parse(path))

    # Assert
    [warning] = items
    assert isinstance(warning, InputWarning)
    assert warning.origin.file == str(path) and "test.a.s1" in warning.reason


def test_evidence_device_id_is_the_default_host() -> None:
    # Arrange / Act
    [pkg1] = _software(REALDATA / "rpm2swidtag-pkg1-1.2.0-1.fc28.x86_64.swidtag")

    # Assert
    assert pkg1.installed_on == Identifiers(
        fqdn="machine.example.test", hostname="machine", domain="example.test"
    )
    assert pkg1.attributes["swid_evidence_date"] == "2018-01-01T12:13:14Z"


def test_supplemental_patch_and_corpus_tags() -> None:
    # Arrange / Act
    records = _software(TAGS, host="WS-001")

    # Assert
    by_product = {r.product: r for r in records}
    assert set(by_product) == {"Acme Editor", "Acme Editor hotfix", "Acme Viewer"}  # no corpus
    editor = by_product["Acme Editor"]
    assert editor.installed_on == Identifiers(hostname="ws-001")
    assert (editor.vendor, editor.version) == ("Acme Software Ltd", "4.2.0")  # softwareCreator
    # supplemental by swid:<tagId> adds its Meta
    assert editor.attributes["swid_meta_language"] == "de-DE"
    assert editor.attributes["swid_meta_edition"] == "Professional"
    assert editor.attributes["swid_supplemental_tags"] == "com.acme.editor-4.2.0-lang"
    # supplemental by swidpath [@name='Acme Viewer'] supplies the missing vendor
    viewer = by_product["Acme Viewer"]
    assert viewer.vendor == "Acme Software Ltd"
    assert viewer.attributes["vendor_regid"] == "acme.com"
    assert viewer.installed_on.hostname == "ws-001"  # the host option beats deviceId
    assert by_product["Acme Editor hotfix"].attributes["swid_patch"] is True


def test_default_host_refuses_localhost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange: a machine that only knows itself as localhost
    monkeypatch.setattr(socket, "getfqdn", lambda: "localhost")
    monkeypatch.setattr(socket, "gethostname", lambda: "localhost")

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("swid").parse(TAGS / "editor-4.2.swidtag"))

    # Assert
    assert info.value.field == "Evidence/@deviceId"
    assert "host=" in str(info.value)


def test_default_host_is_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # Arrange
    monkeypatch.setattr(socket, "getfqdn", lambda: "localhost")
    monkeypatch.setattr(socket, "gethostname", lambda: "Laptop-42")

    # Act
    [editor] = _software(TAGS / "editor-4.2.swidtag")

    # Assert
    assert editor.installed_on == Identifiers(hostname="laptop-42")


def test_wrong_root_element(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "x.swidtag"
    path.write_text('<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2009/'
                    'schema.xsd" name="a" tagId="b"/>')

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("swid", host="h").parse(path))

    # Assert
    assert info.value.file == str(path)
    assert "2015" in str(info.value)


def test_bad_input_battery(tmp_path: Path) -> None:
    run_battery(
        get_importer("swid", host="ws-001"),
        VALID,
        fmt="xml",
        tmp_path=tmp_path,
        missing_required=lambda data: data.replace(b'tagId="com.acme.editor-4.2.0" ', b""),
        required_field="tagId",
    )


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_xml_mutants_give_records_or_one_clear_error(data: st.DataObject) -> None:
    check_xml_mutant(get_importer("swid", host="ws-001"), VALID, data)
