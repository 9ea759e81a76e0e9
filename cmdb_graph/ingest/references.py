"""References: the one place where a reference becomes a ``ci_id`` or a node key.

A *CI reference* is a set of :class:`~cmdb_graph.model.Identifiers` (a relationship's end, the
CI an asset tracks or software is installed on, the host of a dependent CI, the CI a change or
incident names through the API). :func:`resolve_ci` tries :data:`REF_RULES` in order, each as
:func:`cmdb_graph.ingest.identify.match_rule` defines it: the first rule that matches exactly
one CI decides; a rule that matches several makes the reference ambiguous. A reference with a
host resolves the host first, so that ``name_host`` (a dependent CI's name on its host) applies.

Import runs and every API mutation resolve through the same function; the API uses
:func:`require_ci` (errors instead of reasons) on a :func:`lookup` working set, and
:func:`identifiers_for` to turn a ``ci_id`` into identifiers an import record can carry.

Other references are names, and the node they name is created on first sight:
:func:`group_ref` (``grp-<slug of name>``), :func:`location_ref` (``loc-<slug>``),
:func:`person_ref` (a known person by username, e-mail or name, else ``per-<slug>``) and
:func:`product_ref` (``sw-<slug of vendor and name>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cmdb_graph.errors import CINotFoundError, InvalidRecordError
from cmdb_graph.ingest.candidates import Candidates
from cmdb_graph.ingest.identify import RecordKeys, match_rule, norm_text, slug
from cmdb_graph.ingest.state import RunState
from cmdb_graph.ingest.upsert import upsert
from cmdb_graph.ingest.workset import WorkSet
from cmdb_graph.model import IDENTIFIER_RULES, ConfigurationItem, Identifiers, Origin
from cmdb_graph.store.base import GraphStore

__all__ = [
    "REF_RULES",
    "Resolution",
    "group_ref",
    "identifiers_for",
    "location_ref",
    "lookup",
    "person_ref",
    "product_ref",
    "require_ci",
    "resolve_ci",
]

#: The identifier rules a CI reference is resolved by, in order: every rule but
#: ``mac_address`` (a reference never rests on MAC addresses).
REF_RULES: tuple[str, ...] = tuple(r for r in IDENTIFIER_RULES if r != "mac_address")

ResolutionKind = Literal["found", "empty", "missing", "ambiguous"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a CI reference resolved to.

    Attributes
    ----------
    ci_id : str or None
        The CI, or ``None``.
    reason : str
        Why not, in words (empty when found).
    kind : str
        ``"found"``, ``"empty"`` (no identifier at all), ``"missing"`` (no CI matches, or the
        host was not found) or ``"ambiguous"`` (a rule matches several CIs).
    """

    ci_id: str | None
    reason: str = ""
    kind: ResolutionKind = "found"


def resolve_ci(cands: Candidates, ids: Identifiers, source: str) -> Resolution:
    """The CI a reference identifies.

    Parameters
    ----------
    cands : Candidates
        Where CIs are looked up (read from the store on demand into its working set).
    ids : Identifiers
        The reference; a ``native_key`` is one of ``source``.
    source : str
        The data source the reference comes from.

    Returns
    -------
    Resolution
        The ``ci_id``, or why there is none.
    """
    keys = RecordKeys.of(ids, source)
    cands.cis_for(keys)
    host_id: str | None = None
    if ids.host is not None:
        host = resolve_ci(cands, ids.host, source)
        if host.ci_id is None:
            kind: ResolutionKind = "ambiguous" if host.kind == "ambiguous" else "missing"
            return Resolution(None, f"host not found ({host.reason})", kind)
        host_id = host.ci_id
    if ids.is_empty():
        return Resolution(None, "no identifiers", "empty")
    index, registry = cands.ws.index, cands.registry
    for rule in REF_RULES:
        found = match_rule(index, registry, rule, keys, ci_class=keys.ci_class, host_id=host_id)
        if rule == "name" and host_id is not None:
            found = [c for c in found if c.host_id == host_id]
        if len(found) == 1:
            return Resolution(found[0].ci_id)
        if len(found) > 1:
            ids_txt = ", ".join(c.ci_id for c in found[:5])
            return Resolution(None, f"ambiguous: {rule} matches {len(found)} CIs ({ids_txt})",
                              "ambiguous")
    return Resolution(None, f"no CI matches {keys.describe()}", "missing")


# -- outside import runs (API mutations) -------------------------------------------------


def lookup(store: GraphStore) -> Candidates:
    """An empty working set over ``store`` for resolving references outside an import run.

    Share one per mutation: each CI is read from the store at most once.
    """
    return Candidates(store, WorkSet())


def require_ci(cands: Candidates, ids: Identifiers, source: str, field: str) -> str:
    """The ``ci_id`` a reference identifies, or an error naming ``field``.

    Raises
    ------
    CINotFoundError
        No CI matches.
    InvalidRecordError
        The reference has no identifier, or several CIs match.
    """
    found = resolve_ci(cands, ids, source)
    if found.ci_id is not None:
        return found.ci_id
    if found.kind == "empty":
        raise InvalidRecordError("the reference has no identifier", field=field)
    if found.kind == "ambiguous":
        raise InvalidRecordError(found.reason, field=field)
    raise CINotFoundError(f"{field}: {found.reason}")


def identifiers_for(cands: Candidates, ci: ConfigurationItem, source: str) -> Identifiers:
    """Identifiers that resolve to exactly ``ci`` (for records that refer to a stored CI).

    ``source``'s native key of the CI when it has one; else the first of serial number, cloud
    id, asset tag, FQDN and name + class that :func:`resolve_ci` resolves to ``ci`` alone.

    Raises
    ------
    InvalidRecordError
        No identifier of the CI is unique to it.
    """
    prefix = f"{source}:"
    for nk in ci.native_keys:
        if nk.startswith(prefix):
            return Identifiers(native_key=nk[len(prefix):])
    tries = [
        Identifiers(serial_number=ci.serial_number) if ci.serial_number else None,
        Identifiers(cloud_id=ci.cloud_id) if ci.cloud_id else None,
        Identifiers(asset_tag=ci.asset_tag) if ci.asset_tag else None,
        Identifiers(fqdn=ci.fqdn) if ci.fqdn else None,
        Identifiers(name=ci.name, ci_class=ci.ci_class) if ci.name else None,
    ]
    candidates = [ids for ids in tries if ids is not None]
    cands.prefetch(RecordKeys.of(ids, source) for ids in candidates)
    for ids in candidates:
        if resolve_ci(cands, ids, source).ci_id == ci.ci_id:
            return ids
    raise InvalidRecordError(
        f"CI {ci.ci_id} has no identifier unique to it; send identifiers instead of ciId",
        field="ciId",
    )


# -- names: created on first sight ---------------------------------------------------------


def _named(run: RunState, label: str, prefix: str, name: str | None,
           origin: Origin | None) -> str | None:
    """``<prefix>-<slug of name>`` of a node named ``name``; created on first sight."""
    name = norm_text(name)
    if name is None:
        return None
    key = f"{prefix}-{slug(name)}"
    if run.cands.node(label, key) is None:
        upsert(run, label, key, {"name": name}, origin)
    return key


def group_ref(run: RunState, name: str | None, origin: Origin | None) -> str | None:
    """``group_id`` of a support group by name; created on first sight."""
    return _named(run, "SupportGroup", "grp", name, origin)


def location_ref(run: RunState, name: str | None, origin: Origin | None) -> str | None:
    """``location_id`` of a location by name; created on first sight."""
    return _named(run, "Location", "loc", name, origin)


def person_ref(run: RunState, ref: str | None, origin: Origin | None) -> str | None:
    """``person_id`` of a person named by name, username or e-mail; created on first sight."""
    ref = norm_text(ref)
    if ref is None:
        return None
    pid = run.ws.person_alias.get(slug(ref))
    if pid is not None:
        return pid
    pid = f"per-{slug(ref)}"
    if run.cands.node("Person", pid) is None:
        upsert(run, "Person", pid, {"name": ref}, origin)
    return pid


def product_ref(run: RunState, name: str, vendor: str | None, origin: Origin | None) -> str:
    """``product_id`` of a software product; created on first sight."""
    vendor = norm_text(vendor)
    pid = f"sw-{slug(f'{vendor} {name}' if vendor else name)}"
    node = run.cands.node("SoftwareProduct", pid)
    if node is None or (vendor and getattr(node, "vendor", None) is None):
        upsert(run, "SoftwareProduct", pid, {"name": name.strip(), "vendor": vendor}, origin)
    return pid
