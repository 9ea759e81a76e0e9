"""Fixtures for tests that need a Neo4j server (marker ``neo4j``).

``scripts/test`` starts a server and exports ``NEO4J_URI``, ``NEO4J_USER`` and
``NEO4J_PASSWORD``, plus ``CMDB_REQUIRE_NEO4J=1`` so that a missing server is a failure rather
than a silent skip. Run by hand without those variables, Neo4j tests are skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Neo4jEnv:
    """Connection settings of the Neo4j server under test."""

    uri: str
    user: str
    password: str


@pytest.fixture(scope="session")
def neo4j_env() -> Neo4jEnv:
    """Connection settings from ``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD``.

    Fails when ``NEO4J_URI`` is missing and ``CMDB_REQUIRE_NEO4J=1``; skips otherwise.
    """
    uri = os.environ.get("NEO4J_URI", "").strip()
    if not uri:
        message = "NEO4J_URI is not set (scripts/test starts Neo4j and sets it)"
        if os.environ.get("CMDB_REQUIRE_NEO4J") == "1":
            pytest.fail(f"{message}, and CMDB_REQUIRE_NEO4J=1 requires a server", pytrace=False)
        pytest.skip(message)
    return Neo4jEnv(
        uri=uri,
        user=os.environ.get("NEO4J_USER", "neo4j"),
        password=os.environ.get("NEO4J_PASSWORD", ""),
    )
