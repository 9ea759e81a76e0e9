"""CI records: identified against the working set, duplicates merged, values upserted.

A CI record is identified by its class's identifier rules
(:attr:`cmdb_graph.model.CIClass.identification`, see :mod:`cmdb_graph.ingest.identify`): the
first rule that matches decides. Several matches are merged into the oldest
(:mod:`cmdb_graph.ingest.merge`) unless two of them contradict each other (different serial
numbers, cloud ids, FQDNs or domains): the record is then skipped as ambiguous. No match creates
a CI whose ``ci_id`` is ``ci-<hash of class group, first usable rule, its value>``, so
re-running an import is idempotent.

Dependent CIs (``host`` in their identifiers) are identified after their hosts: CIs without a
host first, then, pass after pass, those whose host is known (a host may itself be a dependent
CI of the same run).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.ingest.identify import (
    ID_ATTRIBUTES,
    RecordKeys,
    cis_conflict,
    class_group,
    match_rule,
    oldest,
    record_identifiers,
    same_service_elsewhere,
    short_hash,
)
from cmdb_graph.ingest.merge import merge
from cmdb_graph.ingest.references import group_ref, location_ref, person_ref, resolve_ci
from cmdb_graph.ingest.state import RunState
from cmdb_graph.ingest.upsert import RESERVED_FIELDS, upsert
from cmdb_graph.model import CIRecord, ConfigurationItem

__all__ = ["ingest_ci", "ingest_cis"]


def ingest_cis(run: RunState, records: Sequence[tuple[int, CIRecord]]) -> None:
    """Identify and apply CI records, hosts before the CIs they host.

    ``records`` are ``(position, record)`` pairs; ``run.plan.applied[position]`` gets the
    ``ci_id`` each record was applied to.
    """
    applied = run.plan.applied
    pending: list[tuple[int, CIRecord]] = []
    for i, rec in records:
        if rec.identifiers.host is None:
            applied[i] = ingest_ci(run, rec)
        else:
            pending.append((i, rec))
    while pending:
        waiting = [p for p in pending if not _host_known(run, p[1])]
        if len(waiting) == len(pending):
            # stuck: hosts that are missing themselves; take those others are hosted on first
            wanted = {r.identifiers.host.native_key for _, r in pending
                      if r.identifiers.host is not None and r.identifiers.host.native_key}
            hosts = [p for p in pending if p[1].identifiers.native_key in wanted]
            for i, rec in hosts or pending:
                applied[i] = ingest_ci(run, rec)
            if not hosts:
                break
            pending = [p for p in pending if p[1].identifiers.native_key not in wanted]
            continue
        for i, rec in pending:
            if _host_known(run, rec):
                applied[i] = ingest_ci(run, rec)
        pending = waiting


def _host_known(run: RunState, rec: CIRecord) -> bool:
    """Whether the host of a dependent CI record resolves to a CI already."""
    host = rec.identifiers.host
    return host is None or resolve_ci(run.cands, host, run.src).ci_id is not None


def ingest_ci(run: RunState, rec: CIRecord) -> str | None:
    """Identify one CI record, merge duplicates, reconcile its values.

    Returns
    -------
    str or None
        The ``ci_id`` the record was applied to; ``None`` when it was skipped (no usable
        identifier, host not found, ambiguous).
    """
    o = rec.origin
    ids = record_identifiers(rec)
    keys = RecordKeys.of(ids, run.src)
    run.cands.cis_for(keys)
    host_id: str | None = None
    host_why = ""
    if ids.host is not None:
        host = resolve_ci(run.cands, ids.host, run.src)
        host_id, host_why = host.ci_id, host.reason
    rules = run.registry.get_class(rec.ci_class).identification
    usable = [r for r in rules if r != "mac_address" and keys.rule_value(r, host_id) is not None]
    if not usable:
        if ids.host is not None and host_id is None:
            run.skip("ci", f"{rec.ci_class} {rec.name!r}: host {host_why}", o)
        else:
            run.skip(
                "ci",
                f"{rec.ci_class} {rec.name!r} cannot be identified: the class is identified "
                f"by {', '.join(rules)} and the record has none of them ({keys.describe()})",
                o,
            )
        return None
    found: list[ConfigurationItem] = []
    rule = ""
    for rule in rules:
        found = match_rule(run.ws.index, run.registry, rule, keys, ci_class=rec.ci_class,
                           host_id=host_id)
        if found:
            break
    matched_by: str | None = None
    if found:
        ci_id = _merge_found(run, rec, rule, found)
        if ci_id is None:
            return None
        if rule != "native_key":
            matched_by = _matched_by(run, rule, keys.rule_value(rule, host_id) or "", found)
    else:
        ci_id = _new_ci_id(run, rec.ci_class, usable[0], keys.rule_value(usable[0], host_id) or "")
    run.seen_cis.add(ci_id)
    values = _ci_values(run, rec, keys, host_id)
    current = run.ws.index.get(ci_id) if found else None
    if (current is not None and (keys.system or keys.service)
            and current.ci_class != rec.ci_class):
        # one service seen as a container, an application, a Service object: the CI keeps
        # the class and name it was created with (on every run, so re-runs change nothing)
        values.pop("ci_class")
        values.pop("name")
    seen_at = _observed_at(rec)
    if seen_at is not None and seen_at > run.now + _SKEW:
        run.warn("ci", f"{rec.ci_class} {rec.name!r}: observed_at {seen_at.isoformat()} is in "
                       "the future: taken as the run's time", o)
        seen_at = None
    if seen_at is not None:
        run.observed[ci_id] = max(seen_at, run.observed.get(ci_id, seen_at))
    upsert(run, "CI", ci_id, values, o, native_key=keys.native_key,
           scope=rec.ci_class, what=f"{rec.ci_class} {rec.name!r}",
           new={"name": rec.name.strip(), "ci_class": rec.ci_class}, matched_by=matched_by,
           seen_at=seen_at)
    if ids.host is None and (keys.system or keys.service):
        for other, why in same_service_elsewhere(run.ws.index, run.registry, keys,
                                                 ci_class=rec.ci_class, ci_id=ci_id):
            run.warn("ci", f"duplicate candidate: {rec.ci_class} {rec.name!r} ({ci_id}) and "
                           f"{other.ci_class} {other.name!r} ({other.ci_id}): {why}", o)
    return ci_id


def _matched_by(run: RunState, rule: str, value: str, found: list[ConfigurationItem]) -> str:
    """In words: the rule, its value, the CI it matched and who had seen that CI."""
    survivor = oldest(found)
    seen_by = sorted(survivor.lineage.sources) or ["no source"]
    return (f"{rule} {value!r} matched {survivor.ci_id} {survivor.name!r} "
            f"(seen by {', '.join(seen_by)})")


#: How far past the run's time a source's observed-at time may be (clock skew) before it is
#: taken for a mistake (a future audit date would keep the CI from ever looking stale).
_SKEW = timedelta(days=1)


def _observed_at(rec: CIRecord) -> datetime | None:
    """When the source saw the record's CI: its ``observed_at`` attribute (ISO 8601; a time
    without a zone is UTC), else ``None`` (the run's time)."""
    v = rec.attributes.get("observed_at")
    if not isinstance(v, str) or not v.strip():
        return None
    try:
        t = datetime.fromisoformat(v.strip())
    except ValueError as exc:
        o = rec.origin
        raise InvalidRecordError(f"not an ISO 8601 time: {v!r}", file=o.file, line=o.line,
                                 record=o.record, field="observed_at") from exc
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _merge_found(run: RunState, rec: CIRecord, rule: str,
                 found: list[ConfigurationItem]) -> str | None:
    """The oldest of the CIs a rule matched, the others merged into it; ``None``: ambiguous."""
    survivor = oldest(found)
    for other in found:
        field = cis_conflict(survivor, other) if other is not survivor else None
        if field is not None:
            run.skip(
                "ci",
                f"{rec.ci_class} {rec.name!r}: ambiguous, rule {rule} matches "
                f"{survivor.ci_id} and {other.ci_id}, which differ in {field}",
                rec.origin,
            )
            return None
    for other in sorted(found, key=lambda c: c.ci_id):
        if other.ci_id != survivor.ci_id:
            merge(run, survivor.ci_id, other.ci_id, rule, rec.origin)
    return survivor.ci_id


def _new_ci_id(run: RunState, ci_class: str, rule: str, value: str) -> str:
    """``ci-<hash of class group, rule, value>``, with ``-2``, ``-3``... when taken."""
    base = "ci-" + short_hash(class_group(run.registry, ci_class), rule, value, length=16)
    cand, n = base, 1
    while run.cands.ci_id_taken(cand):
        n += 1
        cand = f"{base}-{n}"
    return cand


def _ci_values(run: RunState, rec: CIRecord, keys: RecordKeys,
               host_id: str | None) -> dict[str, Any]:
    """What a CI record asserts: identifiers, attributes and resolved references."""
    values: dict[str, Any] = {
        "name": rec.name.strip(),
        "ci_class": rec.ci_class,
        "serial_number": keys.serial,
        "asset_tag": keys.asset_tag,
        "cloud_id": keys.cloud_id,
        "fqdn": keys.fqdn,
        "hostname": keys.hostname,
        "domain": keys.domain,
        "mac_addresses": list(keys.macs),
        "host_id": host_id,
    }
    refs = {"support_group": rec.support_group, "owner": rec.owner, "location_id": rec.location}
    fields = ConfigurationItem.model_fields
    for attr, value in rec.attributes.items():
        if attr in ID_ATTRIBUTES or attr in ("mac_addresses", "observed_at"):
            continue
        ref = "location_id" if attr == "location" else attr
        if ref in refs:  # a name, resolved like the record's own field
            if refs[ref] is None and isinstance(value, str):
                refs[ref] = value
            continue
        if attr in RESERVED_FIELDS:
            attr = f"source_{attr}"
        if attr in fields:
            values[attr] = list(value) if isinstance(value, list | tuple) else value
        else:
            values[attr] = ", ".join(map(str, value)) if isinstance(value, list) else value
    o = rec.origin
    values["support_group"] = group_ref(run, refs["support_group"], o)
    values["owner"] = person_ref(run, refs["owner"], o)
    values["location_id"] = location_ref(run, refs["location_id"], o)
    return values
