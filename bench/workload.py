"""The benchmark's workload: the synthetic estate as rows, models and importer records."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cmdb_graph.model import Registry
from cmdb_graph.model.records import CIRecord, Identifiers, Origin, RelationshipRecord
from cmdb_graph.store.base import GraphStore, WriteBatch
from cmdb_graph.synthetic import NODE_LABELS, REL, CIIndex, generate_rows, models_from_rows

__all__ = ["SCALES", "Workload", "build_workload", "bulk_load", "import_records"]

#: Number of CIs per named scale.
SCALES: dict[str, int] = {"tiny": 2_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}

#: Data source name of the benchmark's import runs.
SOURCE = "bench-synthetic"

#: CI fields an importer would deliver as attributes (the ones impact and identification read).
_ATTRIBUTES = (
    "operational_status",
    "environment",
    "business_criticality",
    "redundancy",
    "description",
    "fqdn",
    "hostname",
    "domain",
    "serial_number",
    "asset_tag",
    "ip_addresses",
    "manufacturer",
    "model",
    "os_name",
    "os_version",
    "version",
)

Row = dict[str, Any]


@dataclass
class Workload:
    """The estate of one scale, as store rows, plus the CI index to pick query seeds from."""

    size: int
    seed: int
    batches: list[tuple[str, list[Row]]] = field(default_factory=list)
    index: CIIndex = field(default_factory=CIIndex)

    def rows(self, label: str) -> Iterator[Row]:
        """Every row of ``label`` (a node label or ``REL``)."""
        for lb, rows in self.batches:
            if lb == label:
                yield from rows

    def counts(self) -> dict[str, int]:
        """Rows per label."""
        out: dict[str, int] = {}
        for lb, rows in self.batches:
            out[lb] = out.get(lb, 0) + len(rows)
        return out

    def import_slice(self, limit: int) -> tuple[list[Row], list[Row]]:
        """The first ``limit`` CI rows and the CI-to-CI relationships among them.

        CIs come in generation order (datacenters and network first, then whole service
        stacks), so a slice is a self-contained smaller estate.
        """
        cis: list[Row] = []
        for row in self.rows("CI"):
            if len(cis) >= limit:
                break
            cis.append(row)
        keep = {r["ci_id"] for r in cis}
        rels = [r for r in self.rows(REL) if r["source"] in keep and r["target"] in keep]
        return cis, rels


def build_workload(size: int, seed: int = 42) -> Workload:
    """Generate the estate's rows once (all of them kept in memory)."""
    wl = Workload(size=size, seed=seed)
    for label, rows in generate_rows(size, seed=seed):
        wl.batches.append((label, rows))
        if label == "CI":
            wl.index.add(rows)
    return wl


def import_records(ci_rows: list[Row], rel_rows: list[Row]) -> list[CIRecord | RelationshipRecord]:
    """Importer records for CI and relationship rows, as a discovery source would send them.

    Each CI carries its source key (``native_key`` = the generator's ``ci_id``) and its
    identifying and descriptive attributes; relationships name their ends by source key. The
    generator plants CIs that share a serial number (a duplicate to merge); the second of each
    such pair is sent without its serial number, so identification creates exactly one CI per
    row and the result can be compared with a loader that MERGEs by ``ci_id``.
    """
    out: list[CIRecord | RelationshipRecord] = []
    serials: set[str] = set()
    was_enabled = gc.isenabled()
    gc.disable()  # building many small models: the collector would dominate (not timed)
    try:
        for i, row in enumerate(ci_rows):
            attrs: dict[str, Any] = {}
            for key in _ATTRIBUTES:
                value = row.get(key)
                if value is None or value == []:
                    continue
                attrs[key] = value
            serial = attrs.get("serial_number")
            if serial is not None:
                if serial in serials:
                    del attrs["serial_number"]
                serials.add(serial)
            out.append(
                CIRecord(
                    ci_class=row["ci_class"],
                    name=row["name"],
                    identifiers=Identifiers(native_key=row["ci_id"]),
                    attributes=attrs,
                    origin=Origin(file="synthetic-cis", record=i + 1),
                )
            )
        for i, row in enumerate(rel_rows):
            out.append(
                RelationshipRecord(
                    rel_type=row["rel_type"],
                    source=Identifiers(native_key=row["source"]),
                    target=Identifiers(native_key=row["target"]),
                    optional=bool(row["optional"]),
                    origin=Origin(file="synthetic-relationships", record=i + 1),
                )
            )
    finally:
        if was_enabled:
            gc.enable()
    return out


def bulk_load(store: GraphStore, wl: Workload, *, chunk: int = 50_000) -> None:
    """Load the whole estate through the store's batch path (``apply``), as ``cmdb-graph demo``.

    Nodes of every label first (in dependency-safe order), then the CI-to-CI relationships.
    """
    for label in (*NODE_LABELS, REL):
        pending: list[Row] = []
        for row in wl.rows(label):
            pending.append(row)
            if len(pending) >= chunk:
                _apply(store, label, pending)
                pending = []
        if pending:
            _apply(store, label, pending)


def _apply(store: GraphStore, label: str, rows: list[Row]) -> None:
    models = models_from_rows(label, rows)
    if label == REL:
        store.apply(WriteBatch(relationships=models))
    else:
        store.apply(WriteBatch(nodes=models))


def pick_seeds(wl: Workload, count: int, kind: str, seed: int) -> list[str]:
    """``count`` seeds of a kind: ``vm`` / ``host`` (distinct random CIs) or ``core``."""
    if kind == "core":
        return [wl.index.core_switch]
    rng = random.Random(f"{seed}-{kind}")
    pool = wl.index.by_class.get("VirtualMachine", []) if kind == "vm" else (
        wl.index.by_class.get("Hypervisor", []) + wl.index.by_class.get("Server", [])
    )
    if not pool:
        raise LookupError(f"no CI for {kind}")
    return rng.sample(pool, min(count, len(pool)))


def impact_types(registry: Registry) -> tuple[list[str], list[str]]:
    """Relationship types whose failure travels end->start (``up``) and start->end (``down``)."""
    from cmdb_graph.model.registry import ImpactDirection

    up: list[str] = []
    down: list[str] = []
    for name, direction in sorted(registry.impacting_types().items()):
        (up if direction is ImpactDirection.END_TO_START else down).append(name)
    return up, down
