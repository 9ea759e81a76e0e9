"""Normalised records: what importers yield and what ingestion consumes.

An importer turns one source format into these records and never talks to a store. Records
carry identifiers, not ``ci_id`` values: identification (``cmdb_graph.ingest``) decides which
CI a record is. Every record carries an :class:`Origin` so that ingestion can name the file and
line/record of a problem.

Records refer to other records through :class:`Identifiers` (e.g. a relationship's ends, the CI
an asset tracks, the host of a dependent CI): usually just ``native_key`` of a record of the
same source, or whatever identifiers the source has (serial number, FQDN, name + class).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cmdb_graph.model.entities import (
    LifecycleStage,
    RelationshipBasis,
    Scalar,
    UtcDateTime,
    inferred_basis,
)

__all__ = [
    "Origin",
    "Identifiers",
    "CIRecord",
    "RelationshipRecord",
    "AssetRecord",
    "GroupRecord",
    "PersonRecord",
    "LocationRecord",
    "SoftwareRecord",
    "EntitlementRecord",
    "Record",
    "InputWarning",
]


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Origin(_Rec):
    """Where a record came from: the file and the 1-based line and/or record number.

    ``record`` may also be a JSON pointer or an element path (``/objects/3``, ``Server[id=1]``).
    """

    file: str
    line: int | None = None
    record: str | int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.record is not None:
            parts.append(f"record {self.record}")
        return ", ".join(parts)


class Identifiers(_Rec):
    """Identifiers of a CI as one source knows it (all optional; at least one is needed).

    Attributes
    ----------
    native_key : str, optional
        The source's own key for the record (unique within that source).
    ci_class : str, optional
        CI class, when a reference needs it to be unambiguous (``name`` rule).
    host : Identifiers, optional
        Host of a dependent CI (an application or database instance on a server).
    mac_addresses : tuple of str
        Never enough on their own: MAC matches only together with another identifier.
    service : str, optional
        The service's own short name where the CI name is qualified (a Kubernetes workload
        ``shop/cartservice`` is the service ``cartservice``); default: the name.
    system : str, optional
        The application or system the service belongs to (compose project, Kubernetes
        ``app.kubernetes.io/part-of`` label or namespace, Backstage ``spec.system``, an SBOM's
        described component): with the service name, the ``name_system`` rule.
    """

    native_key: str | None = None
    serial_number: str | None = None
    asset_tag: str | None = None
    cloud_id: str | None = None
    fqdn: str | None = None
    hostname: str | None = None
    domain: str | None = None
    mac_addresses: tuple[str, ...] = ()
    name: str | None = None
    ci_class: str | None = None
    service: str | None = None
    system: str | None = None
    host: Identifiers | None = None

    def is_empty(self) -> bool:
        """Whether no identifier at all is set (a service name counts with its system:
        together they are the ``name_system`` rule's key)."""
        return not any(
            (
                self.native_key,
                self.serial_number,
                self.asset_tag,
                self.cloud_id,
                self.fqdn,
                self.hostname,
                self.name,
                self.service and self.system,
            )
        )


class CIRecord(_Rec):
    """A configuration item as one source sees it.

    ``attributes`` holds values for :class:`~cmdb_graph.model.ConfigurationItem` fields
    (``operational_status``, ``environment``, ``ip_addresses``, ``os_name``, ...); keys that are
    no field of the model go to the CI's ``attributes`` dict. ``support_group``, ``owner`` and
    ``location`` are names, resolved (and created) by ingestion.
    """

    record_type: Literal["ci"] = "ci"
    ci_class: str
    name: str
    identifiers: Identifiers
    attributes: dict[str, Scalar | list[str]] = Field(default_factory=dict)
    support_group: str | None = None
    owner: str | None = None
    location: str | None = None
    origin: Origin


class RelationshipRecord(_Rec):
    """A relationship between two CIs, each end given by identifiers.

    ``inferred`` marks relationships an importer deduced (e.g. from a container's environment);
    ``evidence`` then says from what (the setting and its value; ``origin`` names the file)
    and ``confidence`` how sure the deduction is. ``inferred`` and ``basis="inferred"`` imply
    each other (another basis with ``inferred`` is a validation error); any other record's
    ``basis`` is ``None`` until the importer stamps its own
    (:attr:`importers.base.Importer.relationship_basis`: ``declared``, or ``discovered`` for
    discovery tools).
    """

    record_type: Literal["relationship"] = "relationship"
    rel_type: str
    source: Identifiers
    target: Identifiers
    optional: bool = False
    inferred: bool = False
    basis: RelationshipBasis | None = None
    confidence: float | None = Field(default=None, gt=0, le=1)
    evidence: str | None = None
    properties: dict[str, Scalar] = Field(default_factory=dict)
    origin: Origin

    @model_validator(mode="before")
    @classmethod
    def _inferred_is_a_basis(cls, data: Any) -> Any:
        if isinstance(data, dict):
            basis = inferred_basis(data.get("inferred"), data.get("basis"))
            if basis == RelationshipBasis.INFERRED:
                data = {**data, "inferred": True, "basis": RelationshipBasis.INFERRED}
        return data


class AssetRecord(_Rec):
    """An ITAM asset record; ``tracks`` identifies the CI it is the asset of, if any."""

    record_type: Literal["asset"] = "asset"
    native_key: str | None = None
    asset_tag: str | None = None
    serial_number: str | None = None
    name: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    tracks: Identifiers | None = None
    holder: str | None = None
    location: str | None = None
    origin: Origin


class GroupRecord(_Rec):
    """A support group."""

    record_type: Literal["group"] = "group"
    name: str
    email: str | None = None
    manager: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    origin: Origin


class PersonRecord(_Rec):
    """A person, optionally member of support groups (by name)."""

    record_type: Literal["person"] = "person"
    name: str
    email: str | None = None
    username: str | None = None
    groups: tuple[str, ...] = ()
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    origin: Origin


class LocationRecord(_Rec):
    """A location; ``parent`` is the name of the enclosing location."""

    record_type: Literal["location"] = "location"
    name: str
    kind: str | None = None
    parent: str | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    origin: Origin


class SoftwareRecord(_Rec):
    """A software installation: ``product`` (by ``vendor``) at ``version`` on a CI."""

    record_type: Literal["software"] = "software"
    installed_on: Identifiers
    product: str
    vendor: str | None = None
    version: str | None = None
    installed_at: UtcDateTime | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    origin: Origin


class EntitlementRecord(_Rec):
    """A licence entitlement: ``seats`` of ``product``, assigned to CIs and/or people."""

    record_type: Literal["entitlement"] = "entitlement"
    native_key: str | None = None
    name: str
    product: str
    vendor: str | None = None
    seats: int | None = None
    expires: date | None = None
    purchase_date: date | None = None
    cost: float | None = None
    licensed_to: str | None = None
    assigned_to_cis: tuple[Identifiers, ...] = ()
    assigned_to_people: tuple[str, ...] = ()
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    origin: Origin


Record = Annotated[
    CIRecord
    | RelationshipRecord
    | AssetRecord
    | GroupRecord
    | PersonRecord
    | LocationRecord
    | SoftwareRecord
    | EntitlementRecord,
    Field(discriminator="record_type"),
]


class InputWarning(_Rec):
    """A problem an importer found in its input and worked around: not a record to apply.

    Importers yield these among their records (a control character removed from a value, a
    native key repeated within one file, a repeated CSV column); ingestion reports them with
    the run's warnings instead of applying them.

    Attributes
    ----------
    record_type : str
        What the warning is about: the type of the record concerned (``"ci"``, ``"asset"``,
        ...) or ``"input"`` for the file itself.
    reason : str
        What was found and what was done about it, in words a user can act on.
    origin : Origin
        The file and the line/record.
    """

    record_type: str
    reason: str
    origin: Origin
