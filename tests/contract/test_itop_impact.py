"""Issue 5 must-show on real data: the iTop sample files, imported through the importers, and
the change impact of one of their servers names the application solutions resting on it, with
the paths that explain it, on both stores.

With the seven sample files alone, only ERP and Sales web site reach a server (Server3, through
the Oracle DB server and the odooprod schema): the web stack runs on ``FunctionalCI:15``, a VM
of iTop's virtualisation module that no sample file defines, so its two links are skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb_graph.ingest import run_import
from cmdb_graph.service.engine import Engine
from cmdb_graph.store.base import GraphStore
from importers import get_importer

REPO = Path(__file__).resolve().parents[2]
REALDATA = REPO / ".." / "shared" / "realdata" / "itop"
FILES = (
    "data.sample.servers.xml",
    "data.sample.dbserver.xml",
    "data.sample.dbschema.xml",
    "data.sample.webserver.xml",
    "data.sample.webapp.xml",
    "data.sample.applications.xml",
    "data.sample.applicationsolutionci.xml",
)

pytestmark = pytest.mark.skipif(
    not all((REALDATA / f).is_file() for f in FILES),
    reason=f"iTop sample data not found in {REALDATA}",
)


def _import(store: GraphStore) -> dict[str, str]:
    importer = get_importer("itop")
    paths = [REALDATA / f for f in FILES]
    records = [r for p in paths for r in importer.parse(p)]
    result = run_import(store, records, source="itop", importer="itop", files=paths)
    # the only links left out are the two to the undefined VM FunctionalCI:15
    assert sorted((s.origin.record if s.origin else None) or "" for s in result.plan.skips) == [
        "WebServer[id=23]", "lnkApplicationSolutionToFunctionalCI[id=2]"
    ]
    assert all("FunctionalCI:15" in s.reason for s in result.plan.skips)
    return {c.name: c.ci_id for c in store.list_cis(limit=1000).items}


def test_server_change_impact_names_the_solutions_with_paths(store: GraphStore) -> None:
    # Arrange
    by_name = _import(store)
    names = {ci_id: name for name, ci_id in by_name.items()}
    engine = Engine(store)

    # Act
    services = engine.change_impact([by_name["Server3"]], services_only=True, paths_per_ci=5)
    full = engine.change_impact([by_name["Server3"]], paths_per_ci=5)

    # Assert: the application solutions, down, with the paths by name
    got = {
        names[c.ci_id]: (c.ci_class, c.status.value, [[names[x] for x in p] for p in c.paths])
        for c in services.impacted
    }
    assert got == {
        "ERP": ("ApplicationService", "down", [["Server3", "Oracle", "odooprod", "ERP"]]),
        "Sales web site": (
            "ApplicationService", "down",
            [["Server3", "Oracle", "odooprod", "ERP", "Sales web site"]],
        ),
    }
    assert services.summary.services_hit == 2
    # ... and the whole blast radius is the DB server, its schema and the two solutions
    assert [(names[c.ci_id], c.depth) for c in full.impacted] == [
        ("Oracle", 1), ("odooprod", 2), ("ERP", 3), ("Sales web site", 4)
    ]


def test_other_servers_carry_no_solution_in_the_sample(store: GraphStore) -> None:
    # Arrange
    by_name = _import(store)
    engine = Engine(store)

    # Act
    hit = {s: engine.change_impact([by_name[s]], services_only=True).summary.services_hit
           for s in ("Server1", "Server2", "Server4")}

    # Assert
    assert hit == {"Server1": 0, "Server2": 0, "Server4": 0}
