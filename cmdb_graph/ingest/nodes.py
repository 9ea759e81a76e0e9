"""Records of everything but CIs: groups, people, locations, assets, software, entitlements and
CI-to-CI relationships, each turned into upserts.

Each ``ingest_*`` function applies one record and returns the key it was applied to (a node key,
or the ``(rel_type, source, target)`` of a relationship), or ``None`` when it was skipped.

Keys: support groups ``grp-<slug of name>``, people ``per-<slug of username, e-mail or name>``
(a person already known by one of them keeps its key), locations ``loc-<slug>``, assets
``ast-<hash>`` of the first of native key, asset tag and serial number, software products
``sw-<slug of vendor and name>``, entitlements ``ent-<slug of source and native key, or of
name>``. Two locations (or groups) with the same name are one node.
"""

from __future__ import annotations

from typing import Any

from cmdb_graph.ingest.identify import RecordKeys, norm_serial, norm_text, oldest, short_hash, slug
from cmdb_graph.ingest.references import (
    group_ref,
    location_ref,
    person_ref,
    product_ref,
    resolve_ci,
)
from cmdb_graph.ingest.state import RunState
from cmdb_graph.ingest.upsert import free_attributes, record_values, upsert, upsert_rel
from cmdb_graph.ingest.workset import RelKey
from cmdb_graph.model import (
    AssetRecord,
    EntitlementRecord,
    GroupRecord,
    LocationRecord,
    PersonRecord,
    RelationshipBasis,
    RelationshipRecord,
    SoftwareRecord,
)

__all__ = [
    "ingest_asset",
    "ingest_entitlement",
    "ingest_group",
    "ingest_location",
    "ingest_person",
    "ingest_relationship",
    "ingest_software",
    "link_assets_by_serial",
]


def ingest_group(run: RunState, rec: GroupRecord) -> str:
    """A support group by name."""
    values = record_values({"name": rec.name.strip(), "email": rec.email,
                            "manager": rec.manager}, rec.attributes)
    gid = f"grp-{slug(rec.name)}"
    upsert(run, "SupportGroup", gid, values, rec.origin)
    return gid


def ingest_person(run: RunState, rec: PersonRecord) -> str:
    """A person; the key comes from the username, else the e-mail, else the name."""
    alias = run.ws.person_alias
    pid = None
    for v in (rec.username, rec.email, rec.name):
        if v and slug(v) in alias:
            pid = alias[slug(v)]
            break
    if pid is None:
        pid = f"per-{slug(rec.username or rec.email or rec.name)}"
    groups = sorted({g for g in (group_ref(run, x, rec.origin) for x in rec.groups) if g})
    values = record_values({"name": rec.name.strip(), "email": rec.email,
                            "username": rec.username, "groups": groups}, rec.attributes)
    upsert(run, "Person", pid, values, rec.origin)
    return pid


def ingest_location(run: RunState, rec: LocationRecord) -> str:
    """A location; its parent (by name) is created on first sight."""
    parent = location_ref(run, rec.parent, rec.origin)
    values = record_values({"name": rec.name.strip(), "kind": rec.kind, "parent_id": parent},
                           rec.attributes)
    lid = f"loc-{slug(rec.name)}"
    upsert(run, "Location", lid, values, rec.origin)
    return lid


def _native_key(run: RunState, key: str | None) -> str | None:
    return f"{run.src}:{key.strip()}" if key and key.strip() else None


def _find_asset(run: RunState, nk: str | None, tag: str | None, serial: str | None) -> str | None:
    """The asset with this native key, else asset tag, else serial number."""
    if tag:
        run.cands.nodes_where("Asset", "asset_tag", tag)
    if serial:
        run.cands.nodes_where("Asset", "serial_number", serial)
    if nk:
        run.cands.node("Asset", f"ast-{short_hash('native_key', nk, length=16)}")
    probes = (("native_key", nk), ("asset_tag", tag.upper() if tag else None),
              ("serial_number", serial.upper() if serial else None))
    for kind, value in probes:
        if value is None:
            continue
        ids = run.ws.asset_keys.get((kind, value))
        if ids:
            return sorted(ids)[0]
    return None


def _ci_by_serial(run: RunState, serial: str) -> str | None:
    run.cands.cis_for(RecordKeys(serial=serial))
    found = run.ws.index.lookup("serial_number", serial.upper())
    return oldest(found).ci_id if found else None


def ingest_asset(run: RunState, rec: AssetRecord) -> str | None:
    """An ITAM asset, identified by native key, asset tag or serial; linked to its CI."""
    o = rec.origin
    nk = _native_key(run, rec.native_key)
    tag = norm_text(rec.asset_tag)
    serial = norm_serial(rec.serial_number)
    if not (nk or tag or serial):
        run.skip("asset", "asset record has no native key, asset tag or serial number", o)
        return None
    asset_id = _find_asset(run, nk, tag, serial)
    if asset_id is None:
        if nk:
            asset_id = f"ast-{short_hash('native_key', nk, length=16)}"
        elif tag:
            asset_id = f"ast-{short_hash('asset_tag', tag.upper(), length=16)}"
        else:
            assert serial is not None
            asset_id = f"ast-{short_hash('serial_number', serial.upper(), length=16)}"
    ci_id: str | None = None
    if rec.tracks is not None:
        found = resolve_ci(run.cands, rec.tracks, run.src)
        ci_id = found.ci_id
        if ci_id is None:
            run.warn("asset", f"asset {asset_id} is linked to no CI: {found.reason}", o)
    elif serial:
        ci_id = _ci_by_serial(run, serial)
    values = record_values({
        "name": norm_text(rec.name),
        "asset_tag": tag,
        "serial_number": serial,
        "lifecycle_stage": rec.lifecycle_stage,
        "ci_id": ci_id,
        "holder": person_ref(run, rec.holder, o),
        "location_id": location_ref(run, rec.location, o),
    }, rec.attributes)
    upsert(run, "Asset", asset_id, values, o, native_key=nk)
    return asset_id


def link_assets_by_serial(run: RunState) -> None:
    """Assets without a CI link to a CI this run saw with the same serial number."""
    ws = run.ws
    for k, node in sorted(ws.nodes.items()):
        if k[0] != "Asset" or getattr(node, "ci_id", None) is not None:
            continue
        serial = norm_serial(getattr(node, "serial_number", None))
        if not serial:
            continue
        found = [c for c in ws.index.lookup("serial_number", serial.upper())
                 if c.ci_id in run.seen_cis]
        if found:
            upsert(run, "Asset", k[1], {"ci_id": oldest(found).ci_id}, ws.touched.get(k))


def ingest_software(run: RunState, rec: SoftwareRecord) -> RelKey | None:
    """A software installation: a product node and ``HAS_INSTALLED {version}``."""
    o = rec.origin
    found = resolve_ci(run.cands, rec.installed_on, run.src)
    if found.ci_id is None:
        run.skip("software", f"{rec.product!r}: installed_on: {found.reason}", o)
        return None
    pid = product_ref(run, rec.product, rec.vendor, o)
    props: dict[str, Any] = free_attributes(rec.attributes)
    if rec.version:
        props["version"] = rec.version
    if rec.installed_at is not None:
        props["installed_at"] = rec.installed_at.isoformat()
    key = ("HAS_INSTALLED", found.ci_id, pid)
    upsert_rel(run, key, {"properties": props}, o, target_label="SoftwareProduct",
               seen_at=run.observed.get(found.ci_id))
    return key


def ingest_entitlement(run: RunState, rec: EntitlementRecord) -> str:
    """A licence entitlement with its product and the CIs and people it is assigned to."""
    o = rec.origin
    nk = _native_key(run, rec.native_key)
    eid = f"ent-{slug(f'{run.src}-{rec.native_key}')}" if nk else f"ent-{slug(rec.name)}"
    pid = product_ref(run, rec.product, rec.vendor, o)
    cis: set[str] = set()
    for ids in rec.assigned_to_cis:
        found = resolve_ci(run.cands, ids, run.src)
        if found.ci_id is None:
            run.warn("entitlement", f"{rec.name!r}: assignment not applied: {found.reason}", o)
        else:
            cis.add(found.ci_id)
    people = {p for p in (person_ref(run, x, o) for x in rec.assigned_to_people) if p}
    values = record_values({
        "name": rec.name.strip(), "product_id": pid, "seats": rec.seats,
        "expires": rec.expires, "purchase_date": rec.purchase_date, "cost": rec.cost,
        "licensed_to": rec.licensed_to, "assigned_ci_ids": sorted(cis),
        "assigned_person_ids": sorted(people),
    }, rec.attributes)
    upsert(run, "Entitlement", eid, values, o, native_key=nk)
    return eid


def ingest_relationship(run: RunState, rec: RelationshipRecord) -> RelKey | None:
    """A CI-to-CI relationship; skipped when an end cannot be identified."""
    o = rec.origin
    s = resolve_ci(run.cands, rec.source, run.src)
    t = resolve_ci(run.cands, rec.target, run.src)
    if s.ci_id is None or t.ci_id is None:
        end = "source" if s.ci_id is None else "target"
        run.skip("relationship", f"{rec.rel_type}: {end} end: {s.reason or t.reason}", o)
        return None
    if s.ci_id == t.ci_id:
        run.skip("relationship", f"{rec.rel_type}: both ends are {s.ci_id}", o)
        return None
    basis = rec.basis or RelationshipBasis.DECLARED
    props = dict(rec.properties)
    if basis is RelationshipBasis.INFERRED and rec.evidence is not None:
        props.setdefault("evidence_file", o.file)
    values: dict[str, Any] = {"optional": rec.optional, "basis": basis,
                              "confidence": rec.confidence, "evidence": rec.evidence,
                              "properties": props}
    key = (rec.rel_type, s.ci_id, t.ci_id)
    seen = [run.observed[c] for c in (s.ci_id, t.ci_id) if c in run.observed]
    upsert_rel(run, key, values, o, seen_at=max(seen) if seen else None)
    return key
