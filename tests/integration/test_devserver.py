"""The Neo4j dev server: its configuration (no Java needed) and a live round trip."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Protocol

import neo4j
import pytest

from cmdb_graph import devserver


class Neo4jEnv(Protocol):
    """What the ``neo4j_env`` fixture (tests/integration/conftest.py) provides."""

    uri: str
    user: str
    password: str


def test_conf_binds_loopback_on_the_chosen_port(tmp_path: Path) -> None:
    conf_path = devserver.write_conf(tmp_path / "instance", 17999)

    assert conf_path == (tmp_path / "instance" / "conf" / "neo4j.conf").resolve()
    settings = dict(
        line.split("=", 1)
        for line in conf_path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert settings["server.default_listen_address"] == "127.0.0.1"
    assert settings["server.bolt.listen_address"] == "127.0.0.1:17999"
    assert settings["server.http.enabled"] == "false"
    assert settings["server.https.enabled"] == "false"
    assert settings["dbms.security.auth_enabled"] == "true"
    assert settings["dbms.usage_report.enabled"] == "false"
    assert settings["server.memory.pagecache.size"] == "512m"
    home = (tmp_path / "instance").resolve()
    for key, sub in (("data", "data"), ("logs", "logs"), ("run", "run")):
        assert settings[f"server.directories.{key}"] == str(home / sub)
        assert (home / sub).is_dir()
    # Nothing listens beyond loopback.
    addresses = [v for k, v in settings.items() if k.endswith("_address")]
    assert all(v.startswith("127.0.0.1") for v in addresses)


def test_conf_rejects_a_bad_port(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        devserver.render_conf(tmp_path, 0)


def test_pom_pins_the_same_neo4j_version() -> None:
    pom = Path(__file__).resolve().parents[2] / "scripts" / "neo4j" / "pom.xml"
    match = re.search(r"<neo4j\.version>([^<]+)</neo4j\.version>", pom.read_text(encoding="utf-8"))
    assert match is not None
    assert match.group(1) == devserver.NEO4J_VERSION
    assert devserver.NEO4J_VERSION.startswith("5.26.")


def test_server_info_exports_are_shell_quoted() -> None:
    info = devserver.ServerInfo(
        uri="bolt://127.0.0.1:7687", user="neo4j", password="a b'c", pid=42, home=Path("/x y")
    )
    exports = info.exports()
    assert "export NEO4J_URI=bolt://127.0.0.1:7687\n" in exports
    assert "export NEO4J_PASSWORD='a b'\"'\"'c'\n" in exports
    assert "export CMDB_NEO4J_INSTANCE='/x y'\n" in exports


@pytest.mark.neo4j
def test_round_trip_against_the_server(neo4j_env: Neo4jEnv) -> None:
    token = uuid.uuid4().hex
    driver = neo4j.GraphDatabase.driver(neo4j_env.uri, auth=(neo4j_env.user, neo4j_env.password))
    try:
        driver.verify_connectivity()
        records, _, _ = driver.execute_query("RETURN 1 AS one")
        assert records[0]["one"] == 1

        def create(tx: neo4j.ManagedTransaction) -> str:
            record = tx.run(
                "CREATE (n:DevserverSmokeTest {token: $token}) RETURN n.token AS token",
                token=token,
            ).single(strict=True)
            return str(record["token"])

        def read(tx: neo4j.ManagedTransaction) -> list[str]:
            result = tx.run(
                "MATCH (n:DevserverSmokeTest {token: $token}) RETURN n.token AS token",
                token=token,
            )
            return [str(r["token"]) for r in result]

        with driver.session() as session:
            assert session.execute_write(create) == token
        with driver.session() as session:
            assert session.execute_read(read) == [token]
    finally:
        driver.execute_query("MATCH (n:DevserverSmokeTest {token: $token}) DELETE n", token=token)
        driver.close()


def test_provision_writes_the_marker_only_after_a_complete_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CMDB_NEO4J_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(devserver, "ensure_java_and_maven", lambda: None)
    calls: list[list[str]] = []
    fail = True

    def fake_mvn(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        out = Path(next(a for a in cmd if a.startswith("-DoutputDirectory=")).split("=", 1)[1])
        out.mkdir(parents=True)
        (out / f"neo4j-{devserver.NEO4J_VERSION}.jar").write_bytes(b"jar")
        return subprocess.CompletedProcess(cmd, 1 if fail else 0, "", "network down")

    monkeypatch.setattr(subprocess, "run", fake_mvn)
    with pytest.raises(devserver.DevServerError, match="maven failed"):
        devserver.provision()
    cache = tmp_path / "cache"
    assert not (cache / ".provisioned").exists()
    assert not (cache / "lib").exists()

    fail = False
    lib = devserver.provision()
    assert lib == cache.resolve() / "lib"
    assert (lib / f"neo4j-{devserver.NEO4J_VERSION}.jar").is_file()
    assert (cache / ".provisioned").is_file()
    assert calls[-1][:3] == ["mvn", "-q", "-B"]
    assert "dependency:copy-dependencies" in calls[-1]

    devserver.provision()  # cached: maven is not run again
    assert len(calls) == 2


def test_missing_tools_without_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devserver, "_missing_tools", lambda: ["mvn (Apache Maven)"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(devserver.DevServerError, match="openjdk-17-jre-headless maven"):
        devserver.ensure_java_and_maven()


def test_start_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(devserver.DevServerError, match="already in use"):
            devserver.start(port, tmp_path / "instance")


def test_stop_and_status_without_a_server(tmp_path: Path) -> None:
    assert devserver.status(tmp_path) is None
    assert devserver.stop(tmp_path) is False
