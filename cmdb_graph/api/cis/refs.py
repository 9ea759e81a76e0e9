"""References to existing CIs in mutation inputs: a ``ciId``, or identifiers resolved with
the identification rules of :mod:`cmdb_graph.ingest.references` (the one place where a
reference becomes a ``ci_id``)."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.ingest.candidates import Candidates
from cmdb_graph.ingest.references import identifiers_for, lookup, require_ci
from cmdb_graph.model import Identifiers
from cmdb_graph.store.base import GraphStore

__all__ = ["CIRefInput", "IdentifiersInput", "ci_id_of", "identifiers_of", "resolve_all"]


@strawberry.input(description="Identifiers of a CI as the sending source knows it.")
class IdentifiersInput:
    native_key: str | None = strawberry.field(
        default=None, description="The sending source's own key for the CI."
    )
    serial_number: str | None = strawberry.field(default=None, description="Serial number.")
    asset_tag: str | None = strawberry.field(default=None, description="Asset tag.")
    cloud_id: str | None = strawberry.field(default=None, description="Cloud resource id.")
    fqdn: str | None = strawberry.field(default=None, description="Fully qualified name.")
    hostname: str | None = strawberry.field(default=None, description="Host name.")
    domain: str | None = strawberry.field(default=None, description="DNS domain.")
    mac_addresses: list[str] = strawberry.field(
        default_factory=list, description="MAC addresses (never enough alone)."
    )
    name: str | None = strawberry.field(default=None, description="Name (logical CIs).")
    ci_class: str | None = strawberry.field(
        default=None, description="CI class, when a name needs it to be unambiguous."
    )

    def to_model(self) -> Identifiers:
        """The record identifiers."""
        return Identifiers(
            native_key=self.native_key, serial_number=self.serial_number,
            asset_tag=self.asset_tag, cloud_id=self.cloud_id, fqdn=self.fqdn,
            hostname=self.hostname, domain=self.domain,
            mac_addresses=tuple(self.mac_addresses), name=self.name, ci_class=self.ci_class,
        )


@strawberry.input(description="A reference to an existing CI: its ciId, or identifiers.")
class CIRefInput:
    ci_id: strawberry.ID | None = strawberry.field(default=None, description="The CI's key.")
    identifiers: IdentifiersInput | None = strawberry.field(
        default=None, description="Identifiers, resolved with the identification rules."
    )
    source: str | None = strawberry.field(
        default=None,
        description="Data source whose key `identifiers.nativeKey` is (default: itsm, the "
        "sending ITSM tool), e.g. itop for a CI imported from iTop.",
    )


def ci_id_of(refs: Candidates, ref: CIRefInput, source: str, field: str) -> str:
    """The ``ci_id`` a reference names: its ``ciId``, or the one CI its identifiers resolve to
    (:func:`cmdb_graph.ingest.references.require_ci`; a ``nativeKey`` is one of ``ref.source``,
    else of ``source``)."""
    if ref.ci_id is not None:
        return refs.store.get_ci(str(ref.ci_id)).ci_id
    if ref.identifiers is None:
        raise InvalidRecordError("give ciId or identifiers", field=field)
    return require_ci(refs, ref.identifiers.to_model(), ref.source or source, field)


def identifiers_of(refs: Candidates, ref: CIRefInput, source: str, field: str) -> Identifiers:
    """What an import record of ``source`` carries for a reference: its identifiers, or for a
    ``ciId`` identifiers unique to that CI."""
    if ref.ci_id is not None:
        return identifiers_for(refs, refs.store.get_ci(str(ref.ci_id)), source)
    if ref.identifiers is None:
        raise InvalidRecordError("give ciId or identifiers", field=field)
    return ref.identifiers.to_model()


def resolve_all(store: GraphStore, refs: Sequence[CIRefInput], source: str) -> list[str]:
    """The ``ci_id`` of each reference (each resolved once), in input order."""
    found = lookup(store)
    return [ci_id_of(found, r, source, f"cis[{i}]") for i, r in enumerate(refs)]
