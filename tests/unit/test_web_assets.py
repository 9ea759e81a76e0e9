"""The web UI's files: every asset a page loads is served by us, vendored files are the ones
recorded (with their licences), and GraphiQL's page names no other host."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest

from cmdb_graph.api.app import create_app
from cmdb_graph.settings import Settings
from cmdb_graph.store.memory import MemoryStore
from cmdb_graph.web import STATIC, graphiql_html

VENDOR = STATIC / "vendor"


def _vendored() -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads((VENDOR / "VENDORED.json").read_text())
    return entries


def test_vendored_files_match_their_recorded_hashes_and_licences() -> None:
    for entry in _vendored():
        folder = VENDOR / f"{entry['name']}@{entry['version']}"
        files = entry["files"]
        assert isinstance(files, dict) and files
        for rel, integrity in files.items():
            digest = hashlib.sha384((folder / rel).read_bytes()).digest()
            assert integrity == "sha384-" + base64.b64encode(digest).decode(), rel
        licence_files = entry["license_files"]
        assert isinstance(licence_files, list)
        assert all((folder / f).is_file() for f in licence_files)
        assert entry["license"] in ("MIT", "EPL-2.0"), entry["name"]
    readme = (VENDOR / "README.md").read_text()
    assert all(f"| {e['name']} | {e['version']} |" in readme for e in _vendored())


def test_pages_load_only_files_we_serve() -> None:
    index = (STATIC / "index.html").read_text()
    graphiql = graphiql_html()
    for page in (index, graphiql):
        # Arrange: every script, stylesheet and module the page names
        refs = re.findall(r'(?:src|href)="([^"]+)"', page)
        # Assert: our own paths only, each a file of the package
        assert not [r for r in refs if "://" in r and not r.startswith("data:")]
        for ref in refs:
            if ref.startswith("/static/"):
                assert (STATIC / ref.removeprefix("/static/")).is_file(), ref
    modules = re.findall(r'from "\./([^"]+)"', "".join(
        p.read_text() for p in STATIC.glob("*.js")))
    assert modules and all((STATIC / m).is_file() for m in modules)
    assert "https://" not in "".join(p.read_text() for p in STATIC.glob("*.js")
                                     ).replace("http://www.w3.org/2000/svg", "")


@pytest.mark.parametrize("path,kind", [("/", "text/html"), ("/graphql", "text/html"),
                                       ("/static/app.js", "javascript"),
                                       ("/static/vendor/VENDORED.json", "json")])
def test_the_app_serves_the_ui(path: str, kind: str, tmp_path: Path) -> None:
    # Arrange
    app = create_app(Settings(), MemoryStore(database_path=tmp_path / "s"))
    transport = httpx.ASGITransport(app=app)

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.get(path, headers={"accept": "text/html"})

    # Act
    resp = asyncio.run(get())

    # Assert
    assert resp.status_code == 200
    assert kind in resp.headers["content-type"]
    if path == "/":
        assert "script-src 'self'" in resp.headers["content-security-policy"]
    if path == "/graphql":
        assert "/static/vendor/graphiql@" in resp.text and "unpkg" not in resp.text
