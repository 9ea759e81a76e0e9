"""The pure rules behind the API guard: Host header matching, Accept negotiation, the import
folder (no server needed)."""

from __future__ import annotations

import doctest
import importlib
import os
from pathlib import Path

import pytest

from cmdb_graph.api.app import prefers_graphql_response
from cmdb_graph.api.guard import HostRule
from cmdb_graph.api.import_worker import resolve_import_paths
from cmdb_graph.errors import ConfigurationError


@pytest.mark.parametrize("name", ["cmdb_graph.api.guard", "cmdb_graph.api.app"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))

    assert result.failed == 0


@pytest.mark.parametrize(("header", "allowed"), [
    ("localhost:8000", True), ("LOCALHOST.", True), ("ui.localhost", True),
    ("127.0.0.1:8000", True), ("127.1.2.3", True), ("[::1]:8000", True), ("::1", True),
    ("cmdb.example.org", True), ("a.corp:443", True), ("corp", False),
    ("evil.example", False), ("127.0.0.1.nip.io", False), ("localhost.evil.example", False),
    ("[::ffff:8.8.8.8]", False), ("", False), (None, False),
])
def test_host_rule(header: str | None, allowed: bool) -> None:
    rule = HostRule(["cmdb.example.org", "*.corp"])

    assert rule.allows(header) is allowed


def test_any_host_rule() -> None:
    assert HostRule([], any_host=True).allows("anything.example")
    assert HostRule(["*"]).allows(None)


@pytest.mark.parametrize(("accept", "modern"), [
    (None, False), ("", False), ("*/*", False), ("application/json", False),
    ("application/graphql-response+json", True),
    ("application/graphql-response+json, application/json;q=0.9", True),
    ("application/json, application/graphql-response+json", True),
    ("application/json, application/graphql-response+json;q=0.5", False),
    ("application/graphql-response+json;q=0", False),
    ("Application/GraphQL-Response+JSON; charset=utf-8", True),
])
def test_accept_negotiation(accept: str | None, modern: bool) -> None:
    assert prefers_graphql_response(accept) is modern


def test_import_paths_resolve_inside_the_folder_only(tmp_path: Path) -> None:
    # Arrange
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.csv").write_text("x\n", encoding="utf-8")
    (root / "link.csv").symlink_to(root / "sub" / "a.csv")
    (root / "out.csv").symlink_to(tmp_path / "secret.csv")
    (tmp_path / "secret.csv").write_text("secret\n", encoding="utf-8")
    os.mkfifo(root / "fifo.csv")

    # Act
    found = resolve_import_paths(root, ["sub/a.csv", str(root / "sub" / "a.csv"), "link.csv",
                                        "sub/../sub/a.csv"])

    # Assert
    assert found == ["sub/a.csv"] * 4
    for bad, message in [
        ("out.csv", "'out.csv' is outside the import folder (CMDB_IMPORT_FOLDER): refused"),
        ("../secret.csv",
         "'../secret.csv' is outside the import folder (CMDB_IMPORT_FOLDER): refused"),
        (str(tmp_path / "secret.csv"),
         f"'{tmp_path / 'secret.csv'}' is outside the import folder (CMDB_IMPORT_FOLDER): "
         "refused"),
        ("fifo.csv", "'fifo.csv' is not a regular file: refused"),
        ("nope.csv", "'nope.csv': no such file in the import folder"),
    ]:
        with pytest.raises(ConfigurationError) as caught:
            resolve_import_paths(root, [bad])
        assert str(caught.value) == message
        assert "secret" not in str(caught.value).replace("secret.csv", "")
    with pytest.raises(ConfigurationError, match="none is configured"):
        resolve_import_paths(None, ["sub/a.csv"])
