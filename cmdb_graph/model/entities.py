"""Pydantic models of everything the CMDB stores.

Every node kind has one model and one key field (see :data:`NODE_SPECS`). Fields that name
another node (``support_group``, ``owner``, ``ci_id`` of an asset, ...) are *reference fields*:
they are kept as properties, and the Neo4j store also materialises them as relationships
(``(:SupportGroup)-[:SUPPORTS]->(:CI)``, ``(:Asset)-[:TRACKS]->(:CI)``, ...; each
:class:`RefSpec` names its type and direction).
The reference field is the single source of truth; the relationship is derived from it.

All times are timezone-aware UTC; a naive datetime is taken as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Scalar",
    "UtcDateTime",
    "OperationalStatus",
    "LifecycleStage",
    "ChangeState",
    "IncidentState",
    "WindowKind",
    "RunMode",
    "RelationshipBasis",
    "DEFAULT_CONFIDENCE",
    "inferred_basis",
    "link_trust",
    "RunStatus",
    "SourceSeen",
    "AttributeSource",
    "Lineage",
    "Node",
    "ConfigurationItem",
    "Asset",
    "SupportGroup",
    "Person",
    "Location",
    "SoftwareProduct",
    "Entitlement",
    "Change",
    "Window",
    "Incident",
    "DataSource",
    "ImportRun",
    "Relationship",
    "RefSpec",
    "NodeSpec",
    "NODE_SPECS",
    "utcnow",
    "to_utc",
]

Scalar = str | int | float | bool | None


def to_utc(value: datetime) -> datetime:
    """``value`` as a timezone-aware UTC datetime; a naive datetime is taken as UTC.

    The one UTC normalisation of the code base (models, stores, importers, impact).

    Examples
    --------
    >>> from datetime import timedelta, timezone
    >>> to_utc(datetime(2026, 1, 1, 12, 0)).isoformat()
    '2026-01-01T12:00:00+00:00'
    >>> to_utc(datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))).isoformat()
    '2026-01-01T10:00:00+00:00'
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


#: A datetime normalised to UTC (naive input is taken as UTC).
UtcDateTime = Annotated[datetime, AfterValidator(to_utc)]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to milliseconds (Neo4j's precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


class OperationalStatus(StrEnum):
    """Operational status of a CI.

    ``operational``: in service; ``non_operational``: out of service; ``repair``: being
    repaired; ``retired``: no longer in use (set by a source, or by safe retirement once no
    source reports the CI any more). A retired CI is kept, never deleted.
    """

    OPERATIONAL = "operational"
    NON_OPERATIONAL = "non_operational"
    REPAIR = "repair"
    RETIRED = "retired"


class LifecycleStage(StrEnum):
    """ITAM lifecycle stage of an asset record."""

    ORDERED = "ordered"
    IN_STOCK = "in_stock"
    IN_USE = "in_use"
    IN_REPAIR = "in_repair"
    RETIRED = "retired"
    DISPOSED = "disposed"
    LOST = "lost"


class ChangeState(StrEnum):
    """State of a change request (ITIL change enablement)."""

    NEW = "new"
    ASSESS = "assess"
    AUTHORIZE = "authorize"
    SCHEDULED = "scheduled"
    IMPLEMENT = "implement"
    REVIEW = "review"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class IncidentState(StrEnum):
    """State of an incident."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"


class WindowKind(StrEnum):
    """A maintenance window allows changes; a blackout window forbids them."""

    MAINTENANCE = "maintenance"
    BLACKOUT = "blackout"


class RunMode(StrEnum):
    """A delta run only adds and updates; a full run may also retire what vanished."""

    DELTA = "delta"
    FULL = "full"


class RelationshipBasis(StrEnum):
    """Why a relationship is believed.

    ``declared``: the data source states it (a CMDB, an inventory's own link, a manifest's
    ``depends_on``); ``discovered``: a discovery tool saw it on the wire or the host (nmap,
    Lansweeper, GLPI's agent, a cloud inventory); ``inferred``: an importer deduced it from
    what the source only implies (an environment variable, an argument, a connection string,
    an application grouping), with its evidence.
    """

    DECLARED = "declared"
    DISCOVERED = "discovered"
    INFERRED = "inferred"


#: The confidence (0 to 1] of a relationship that records none, per basis.
DEFAULT_CONFIDENCE: dict[RelationshipBasis, float] = {
    RelationshipBasis.DECLARED: 1.0,
    RelationshipBasis.DISCOVERED: 0.9,
    RelationshipBasis.INFERRED: 0.5,
}


def inferred_basis(inferred: Any, basis: Any) -> Any:
    """The basis of a relationship given as ``inferred`` and ``basis`` (either may be absent).

    Parameters
    ----------
    inferred : bool or None
        The older flag: true means ``basis="inferred"``.
    basis : RelationshipBasis, str or None
        The basis given, if any.

    Returns
    -------
    RelationshipBasis, str or None
        ``inferred`` when the flag is set, else ``basis`` as given.

    Raises
    ------
    ValueError
        The flag is set with another basis.
    """
    if not inferred:
        return basis
    if basis not in (None, RelationshipBasis.INFERRED):
        raise ValueError(f"an inferred relationship cannot have basis {basis}")
    return RelationshipBasis.INFERRED


def link_trust(attrs: Any) -> tuple[RelationshipBasis, float]:
    """The basis and confidence of a relationship from its graph edge attributes.

    Parameters
    ----------
    attrs : mapping
        Edge attributes as the stores give them (``inferred``, ``basis``, ``confidence``,
        each absent at its default).

    Returns
    -------
    tuple of (RelationshipBasis, float)
        ``inferred`` wins over ``basis``; the confidence is the recorded one, else
        :data:`DEFAULT_CONFIDENCE` of the basis.
    """
    if attrs.get("inferred"):
        basis = RelationshipBasis.INFERRED
    else:
        basis = RelationshipBasis(attrs.get("basis") or RelationshipBasis.DECLARED)
    confidence = attrs.get("confidence")
    return basis, float(confidence) if confidence is not None else DEFAULT_CONFIDENCE[basis]


class RunStatus(StrEnum):
    """Outcome of an import run."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    DRY_RUN = "dry_run"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_enum_values=False)


class SourceSeen(_Model):
    """When one data source asserted a node or relationship.

    ``missed_full_runs`` counts consecutive finished full runs of that source that did not see it.
    ``matched_by`` says how the source's record was identified with an existing CI the first
    time another rule than its own native key decided (``"name_system 'cartservice' in system
    'shop' matched ci-... (first seen by compose)"``); ``None`` when the source created the CI.
    """

    first_seen: UtcDateTime
    last_seen: UtcDateTime
    native_key: str | None = None
    missed_full_runs: int = 0
    matched_by: str | None = None


class AttributeSource(_Model):
    """Which source gave an attribute its current value, and when."""

    source: str
    asserted_at: UtcDateTime


class Lineage(_Model):
    """Provenance of one node or relationship.

    Attributes
    ----------
    sources : dict of str to SourceSeen
        Every data source that asserted it, with first/last seen.
    attributes : dict of str to AttributeSource
        For each attribute, the source whose value it holds.
    """

    sources: dict[str, SourceSeen] = Field(default_factory=dict)
    attributes: dict[str, AttributeSource] = Field(default_factory=dict)


class Node(_Model):
    """Base of every stored node: a key field named by ``KEY`` and the ``LABEL``."""

    LABEL: ClassVar[str] = ""
    KEY: ClassVar[str] = ""

    @property
    def key(self) -> str:
        """The value of the key field."""
        return str(getattr(self, self.KEY))


class ConfigurationItem(Node):
    """A configuration item (CI): anything managed to deliver a service.

    Attributes
    ----------
    ci_id : str
        Stable key; survives merges. Never a Neo4j element id.
    ci_class : str
        A class of the CI class registry (e.g. ``VirtualMachine``).
    business_criticality : int, optional
        1 (most critical) to 4.
    redundancy : str, optional
        Redundancy rule over the CI's members or dependencies: ``"all"``, ``"k"`` (e.g. ``"2"``:
        at least 2 up) or ``"k%"`` (e.g. ``"50%"``). Without a rule any required dependency
        down takes the CI down.
    native_keys : list of str
        ``"source:key"`` strings: the key each source uses for this CI (identification rule 1).
    host_id : str, optional
        ``ci_id`` of the host of a dependent CI (an application on a server).
    duplicate_of : str, optional
        Set when identification merged this CI into another one; points at the survivor.
    attributes : dict
        Further scalar attributes that have no field of their own.
    """

    LABEL: ClassVar[str] = "CI"
    KEY: ClassVar[str] = "ci_id"

    ci_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=500)
    ci_class: str
    operational_status: OperationalStatus = OperationalStatus.OPERATIONAL
    environment: str | None = None
    business_criticality: int | None = Field(default=None, ge=1, le=4)
    description: str | None = None
    fqdn: str | None = None
    hostname: str | None = None
    domain: str | None = None
    serial_number: str | None = None
    asset_tag: str | None = None
    mac_addresses: list[str] = Field(default_factory=list)
    ip_addresses: list[str] = Field(default_factory=list)
    cloud_id: str | None = None
    native_keys: list[str] = Field(default_factory=list)
    host_id: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    version: str | None = None
    redundancy: str | None = Field(default=None, pattern=r"^(all|[0-9]+|[0-9]{1,3}%)$")
    support_group: str | None = None
    owner: str | None = None
    location_id: str | None = None
    duplicate_of: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    first_seen: UtcDateTime | None = None
    last_seen: UtcDateTime | None = None
    lineage: Lineage = Field(default_factory=Lineage)


class Asset(Node):
    """An ITAM asset record: what the organisation owns, tracked through its lifecycle.

    ``ci_id`` links it to the CI it tracks (``(:Asset)-[:TRACKS]->(:CI)``); ``holder`` is the
    ``person_id`` of whoever holds it.
    """

    LABEL: ClassVar[str] = "Asset"
    KEY: ClassVar[str] = "asset_id"

    asset_id: str = Field(min_length=1, max_length=200)
    name: str | None = None
    asset_tag: str | None = None
    serial_number: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    category: str | None = None
    supplier: str | None = None
    order_number: str | None = None
    cost: float | None = Field(default=None, ge=0)
    currency: str | None = None
    purchase_date: date | None = None
    warranty_end: date | None = None
    end_of_life: date | None = None
    lifecycle_stage: LifecycleStage = LifecycleStage.IN_USE
    ci_id: str | None = None
    holder: str | None = None
    location_id: str | None = None
    native_keys: list[str] = Field(default_factory=list)
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    first_seen: UtcDateTime | None = None
    last_seen: UtcDateTime | None = None
    lineage: Lineage = Field(default_factory=Lineage)


class SupportGroup(Node):
    """A support group (resolver group, assignment group) that owns CIs operationally."""

    LABEL: ClassVar[str] = "SupportGroup"
    KEY: ClassVar[str] = "group_id"

    group_id: str = Field(min_length=1, max_length=200)
    name: str
    email: str | None = None
    manager: str | None = None
    on_call: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)


class Person(Node):
    """A person: CI owner, asset holder, support group member."""

    LABEL: ClassVar[str] = "Person"
    KEY: ClassVar[str] = "person_id"

    person_id: str = Field(min_length=1, max_length=200)
    name: str
    email: str | None = None
    username: str | None = None
    groups: list[str] = Field(default_factory=list)
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)


class Location(Node):
    """A place: region, site, building, room or rack position; nests through ``parent_id``."""

    LABEL: ClassVar[str] = "Location"
    KEY: ClassVar[str] = "location_id"

    location_id: str = Field(min_length=1, max_length=200)
    name: str
    kind: str | None = None
    parent_id: str | None = None
    address: str | None = None
    city: str | None = None
    country: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)


class SoftwareProduct(Node):
    """A software product (name + vendor); installations are HAS_INSTALLED relationships."""

    LABEL: ClassVar[str] = "SoftwareProduct"
    KEY: ClassVar[str] = "product_id"

    product_id: str = Field(min_length=1, max_length=300)
    name: str
    vendor: str | None = None
    category: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)


class Entitlement(Node):
    """A licence entitlement: ``seats`` of ``product_id``, assigned to CIs and/or people."""

    LABEL: ClassVar[str] = "Entitlement"
    KEY: ClassVar[str] = "entitlement_id"

    entitlement_id: str = Field(min_length=1, max_length=200)
    name: str
    product_id: str | None = None
    seats: int | None = Field(default=None, ge=0)
    expires: date | None = None
    purchase_date: date | None = None
    cost: float | None = Field(default=None, ge=0)
    licensed_to: str | None = None
    assigned_ci_ids: list[str] = Field(default_factory=list)
    assigned_person_ids: list[str] = Field(default_factory=list)
    native_keys: list[str] = Field(default_factory=list)
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    lineage: Lineage = Field(default_factory=Lineage)


class Change(Node):
    """A change request with its planned window and the CIs it affects."""

    LABEL: ClassVar[str] = "Change"
    KEY: ClassVar[str] = "change_id"

    change_id: str = Field(min_length=1, max_length=200)
    title: str | None = None
    state: ChangeState = ChangeState.SCHEDULED
    window_start: UtcDateTime
    window_end: UtcDateTime
    ci_ids: list[str] = Field(default_factory=list)
    risk: str | None = None
    support_group: str | None = None
    requested_by: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)


class Window(Node):
    """A maintenance or blackout window, once or recurring.

    ``recurrence`` is an RFC 5545 RRULE (e.g. ``FREQ=WEEKLY;BYDAY=SU``) applied from ``start``;
    each occurrence lasts ``end - start``. An empty ``ci_ids`` list applies to every CI.
    """

    LABEL: ClassVar[str] = "Window"
    KEY: ClassVar[str] = "window_id"

    window_id: str = Field(min_length=1, max_length=200)
    name: str | None = None
    kind: WindowKind
    start: UtcDateTime
    end: UtcDateTime
    recurrence: str | None = None
    ci_ids: list[str] = Field(default_factory=list)
    attributes: dict[str, Scalar] = Field(default_factory=dict)


class Incident(Node):
    """An incident reported on one or more CIs."""

    LABEL: ClassVar[str] = "Incident"
    KEY: ClassVar[str] = "incident_id"

    incident_id: str = Field(min_length=1, max_length=200)
    title: str | None = None
    state: IncidentState = IncidentState.NEW
    priority: int | None = Field(default=None, ge=1, le=5)
    opened_at: UtcDateTime
    resolved_at: UtcDateTime | None = None
    ci_ids: list[str] = Field(default_factory=list)
    support_group: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)


class DataSource(Node):
    """A data source: an ITAM tool, a discovery tool, a catalogue or a person.

    ``priority``: higher wins reconciliation. ``stale_after_days``: a value this source asserted
    longer ago than this may be overwritten by a lower-priority source.
    """

    LABEL: ClassVar[str] = "DataSource"
    KEY: ClassVar[str] = "name"

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: str = "discovery"
    priority: int = 50
    stale_after_days: int | None = 30
    attributes: dict[str, Scalar] = Field(default_factory=dict)


class ImportRun(Node):
    """One import run of one data source.

    ``feed_from`` is the change feed's head right before the run's first write (its change
    records come after it); ``undone_at`` is when an interrupted run's writes were undone
    (``error`` says what was undone).
    """

    LABEL: ClassVar[str] = "ImportRun"
    KEY: ClassVar[str] = "run_id"

    run_id: str
    source: str
    importer: str
    mode: RunMode = RunMode.DELTA
    status: RunStatus = RunStatus.RUNNING
    started_at: UtcDateTime
    finished_at: UtcDateTime | None = None
    files: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    error: str | None = None
    feed_from: int | None = None
    undone_at: UtcDateTime | None = None


class Relationship(_Model):
    """A typed relationship ``(source)-[rel_type]->(target)``.

    CI-to-CI relationships point from the dependent to what it needs (see the relationship-type
    registry for each type's impact direction). ``source_label``/``target_label`` are ``"CI"``
    for those; other node labels serve e.g. ``HAS_INSTALLED`` (CI -> SoftwareProduct).
    A relationship is identified by ``(rel_type, source, target)``.

    Attributes
    ----------
    optional : bool
        An optional dependency only degrades its dependent when it fails.
    basis : RelationshipBasis
        Declared by the source, discovered by a discovery tool, or inferred by an importer
        (``evidence`` then says from what). Rows written before the basis existed hold
        ``inferred: true`` instead; it is read as ``basis="inferred"`` (see :attr:`inferred`).
    confidence : float or None
        How sure the importer is, in (0, 1]; ``None``: the basis's default
        (:data:`DEFAULT_CONFIDENCE`). See :attr:`trust`.
    """

    rel_type: str
    source: str
    target: str
    source_label: str = "CI"
    target_label: str = "CI"
    optional: bool = False
    basis: RelationshipBasis = RelationshipBasis.DECLARED
    confidence: float | None = Field(default=None, gt=0, le=1)
    evidence: str | None = None
    properties: dict[str, Scalar] = Field(default_factory=dict)
    first_seen: UtcDateTime | None = None
    last_seen: UtcDateTime | None = None
    lineage: Lineage = Field(default_factory=Lineage)

    @model_validator(mode="before")
    @classmethod
    def _basis_of_inferred(cls, data: Any) -> Any:
        """Read ``inferred: true`` (rows and callers from before the basis) as
        ``basis="inferred"``; ``inferred: false`` says nothing."""
        if isinstance(data, dict) and "inferred" in data:
            data = dict(data)
            basis = inferred_basis(data.pop("inferred"), data.get("basis"))
            if basis is not None:
                data["basis"] = basis
        return data

    @property
    def inferred(self) -> bool:
        """Whether an importer inferred it (``basis == "inferred"``)."""
        return self.basis is RelationshipBasis.INFERRED

    @property
    def key(self) -> tuple[str, str, str]:
        """``(rel_type, source, target)``."""
        return (self.rel_type, self.source, self.target)

    @property
    def evidence_file(self) -> str | None:
        """The file an inferred relationship's evidence was read from, if recorded."""
        value = self.properties.get("evidence_file")
        return value if isinstance(value, str) else None

    @property
    def trust(self) -> float:
        """The confidence, or the basis's default when none is recorded."""
        return self.confidence if self.confidence is not None else DEFAULT_CONFIDENCE[self.basis]


@dataclass(frozen=True, slots=True)
class RefSpec:
    """A reference field materialised as a relationship in Neo4j.

    ``outgoing``: the relationship starts at the node holding the field (``Asset.ci_id`` ->
    ``(:Asset)-[:TRACKS]->(:CI)``); otherwise it ends there (``CI.support_group`` ->
    ``(:SupportGroup)-[:SUPPORTS]->(:CI)``). ``many``: the field is a list.
    """

    field: str
    rel_type: str
    target_label: str
    outgoing: bool
    many: bool = False


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """Label, key field, model and reference fields of one node kind."""

    label: str
    key: str
    model: type[Node]
    refs: tuple[RefSpec, ...] = ()


def _spec(model: type[Node], *refs: RefSpec) -> NodeSpec:
    return NodeSpec(model.LABEL, model.KEY, model, tuple(refs))


#: Every node kind, by label. Neo4j labels come only from here and the CI class registry.
NODE_SPECS: dict[str, NodeSpec] = {
    s.label: s
    for s in (
        _spec(
            ConfigurationItem,
            RefSpec("support_group", "SUPPORTS", "SupportGroup", outgoing=False),
            RefSpec("owner", "OWNS", "Person", outgoing=False),
            RefSpec("location_id", "AT_LOCATION", "Location", outgoing=True),
        ),
        _spec(
            Asset,
            RefSpec("ci_id", "TRACKS", "CI", outgoing=True),
            RefSpec("holder", "HOLDS", "Person", outgoing=False),
            RefSpec("location_id", "AT_LOCATION", "Location", outgoing=True),
        ),
        _spec(SupportGroup),
        _spec(Person, RefSpec("groups", "MEMBER_OF_GROUP", "SupportGroup", True, many=True)),
        _spec(Location, RefSpec("parent_id", "PART_OF", "Location", outgoing=True)),
        _spec(SoftwareProduct),
        _spec(
            Entitlement,
            RefSpec("product_id", "COVERS", "SoftwareProduct", outgoing=True),
            RefSpec("assigned_ci_ids", "ASSIGNED_TO", "CI", outgoing=True, many=True),
            RefSpec("assigned_person_ids", "ASSIGNED_TO", "Person", outgoing=True, many=True),
        ),
        _spec(Change, RefSpec("ci_ids", "AFFECTS", "CI", outgoing=True, many=True)),
        _spec(Window, RefSpec("ci_ids", "APPLIES_TO", "CI", outgoing=True, many=True)),
        _spec(Incident, RefSpec("ci_ids", "REPORTED_ON", "CI", outgoing=True, many=True)),
        _spec(DataSource),
        _spec(ImportRun),
    )
}


def model_for(label: str) -> type[Node]:
    """The model class of a node label.

    Raises
    ------
    KeyError
        Unknown label.
    """
    return NODE_SPECS[label].model


def dump_flat(node: BaseModel) -> dict[str, Any]:
    """A node or relationship as a plain dict without its lineage (JSON-compatible values)."""
    return node.model_dump(mode="json", exclude={"lineage"})


Direction = Literal["upstream", "downstream", "both"]
