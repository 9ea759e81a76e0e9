"""The bad-input battery every importer faces (issue 3, "Bad input").

Usage in an importer's test module::

    from tests.helpers.battery import run_battery
    def test_bad_input(tmp_path):
        run_battery(get_importer("nmap"), VALID_BYTES, fmt="xml", tmp_path=tmp_path,
                    required="host")

Each case must raise exactly one ``InvalidRecordError`` whose message names the file (and,
where it makes sense, the line/record/field) — never another exception type, never records.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cmdb_graph.errors import InvalidRecordError
from importers.base import Importer
from importers.readers import MAX_LINE_BYTES

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>
"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>
"""


def _expect_error(importer: Importer, path: Path, *, contains: str | None = None) -> None:
    with pytest.raises(InvalidRecordError) as info:
        list(importer.parse(path))
    msg = str(info.value)
    assert str(path) in msg, f"error does not name the file: {msg}"
    if contains is not None:
        assert contains.lower() in msg.lower(), f"{contains!r} not in {msg!r}"


def run_battery(
    importer: Importer,
    valid: bytes,
    *,
    fmt: str,
    tmp_path: Path,
    missing_required: Callable[[bytes], bytes] | None = None,
    required_field: str | None = None,
) -> None:
    """Run every bad-input case against ``importer``.

    Parameters
    ----------
    importer : Importer
        The importer under test.
    valid : bytes
        A small valid input (the battery first checks it parses).
    fmt : {"json", "xml", "csv", "yaml"}
        The input format, which selects the format-specific cases.
    missing_required : callable, optional
        Turns ``valid`` into input lacking a required column/element/field.
    required_field : str, optional
        The name that the missing-required error must mention.
    """
    ok = tmp_path / f"valid.{fmt}"
    ok.write_bytes(valid)
    assert list(importer.parse(ok)), "the valid sample yields no records"

    cases: dict[str, bytes] = {
        "empty": b"",
        "blank": b"  \n\n ",
        "truncated": valid[: max(1, len(valid) * 2 // 3)],
        "wrong_encoding": valid.decode("utf-8").replace("a", "\u00e9", 1).encode("latin-1")
        if "a" in valid.decode("utf-8")
        else b"\xff\xfe\xfa" + valid,
        "huge_line": valid + b"x" * (MAX_LINE_BYTES + 10) + b"\n",
    }
    if fmt == "xml":
        cases["malformed_xml"] = b"<root><unclosed></root>"
        cases["xxe"] = XXE
        cases["billion_laughs"] = BILLION_LAUGHS
    if fmt == "json":
        cases["malformed_json"] = b'{"a": [1, 2,,]}'
    if fmt == "yaml":
        cases["malformed_yaml"] = b"a: [1, 2\nb: {c"
    for name, data in cases.items():
        path = tmp_path / f"{name}.{fmt}"
        path.write_bytes(data)
        if name == "truncated" and fmt == "csv":
            # a CSV cut on a line boundary can still be valid: cut inside a quoted field
            path.write_bytes(valid + b'\n"unterminated')
        _expect_error(importer, path)
    if missing_required is not None:
        path = tmp_path / f"missing_required.{fmt}"
        path.write_bytes(missing_required(valid))
        _expect_error(importer, path, contains=required_field)
