"""The CI class registry and the relationship-type registry.

These registries are the only place that knows which CI classes and relationship types exist,
how each CI class is identified, whether it expects an asset record, and which way impact flows
along each relationship type. Neo4j labels and relationship types are taken only from here (they
cannot be query parameters), so every name is validated against a strict pattern.

Users add CI classes and relationship types by configuration: :meth:`Registry.from_file` reads a
YAML file of the form::

    ci_classes:
      - name: LoadBalancer
        parent: NetworkDevice
        identification: [native_key, serial_number, fqdn, hostname_domain]
        asset_expected: true
    relationship_types:
      - name: BACKS_UP
        impact: none
        description: backup server -> protected CI

"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from cmdb_graph.errors import (
    ConfigurationError,
    UnknownCIClassError,
    UnknownRelationshipTypeError,
)

__all__ = [
    "IDENTIFIER_RULES",
    "CIClass",
    "ImpactDirection",
    "RelationshipType",
    "Registry",
    "ServiceKind",
    "default_registry",
]

CLASS_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
REL_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

#: Identifier rules, in their default priority order: the strongest identifier first (see
#: :mod:`cmdb_graph.ingest.identify` for what each rule matches).
#: ``mac_address`` only ever matches together with another identifier; ``name_host`` is the rule
#: of dependent CIs (an application or database instance is its name on its host);
#: ``name_system`` matches an application, database or container that has no host by its service
#: name within its system (compose project, Kubernetes part-of label or namespace, Backstage
#: system), across sources; ``name`` is the rule of logical CIs that have nothing better
#: (services, clusters).
IDENTIFIER_RULES: tuple[str, ...] = (
    "native_key",
    "serial_number",
    "asset_tag",
    "cloud_id",
    "fqdn",
    "hostname_domain",
    "mac_address",
    "name_host",
    "name_system",
    "name",
)

HARDWARE_RULES = (
    "native_key",
    "serial_number",
    "asset_tag",
    "fqdn",
    "hostname_domain",
    "mac_address",
)
VIRTUAL_RULES = (
    "native_key",
    "cloud_id",
    "serial_number",
    "fqdn",
    "hostname_domain",
    "mac_address",
)
DEPENDENT_RULES = ("native_key", "name_host", "name_system", "fqdn")
LOGICAL_RULES = ("native_key", "name_system", "name")


class ImpactDirection(StrEnum):
    """Which way a failure travels along a relationship ``(start)-[T]->(end)``.

    ``END_TO_START``: a failure of the end impacts the start (the start needs the end; DEPENDS_ON,
    RUNS_ON, HOSTED_ON, CONNECTS_TO, LOCATED_IN). ``START_TO_END``: a failure of the start impacts
    the end (MEMBER_OF, CONTAINS), aggregated by the end's redundancy rule when it has one.
    ``NONE``: the relationship carries no impact (ownership, licences, ITSM references).
    """

    END_TO_START = "end_to_start"
    START_TO_END = "start_to_end"
    NONE = "none"


class ServiceKind(StrEnum):
    """Coarse role of a CI class in impact reports."""

    BUSINESS_SERVICE = "business_service"
    APPLICATION_SERVICE = "application_service"
    APPLICATION = "application"
    INFRASTRUCTURE = "infrastructure"
    END_USER = "end_user"
    LOGICAL = "logical"


@dataclass(frozen=True, slots=True)
class CIClass:
    """One CI class of the hierarchy.

    Attributes
    ----------
    name : str
        PascalCase class name; also the Neo4j label next to ``:CI``.
    parent : str or None
        Parent class name; ``None`` only for the root ``ConfigurationItem``.
    identification : tuple of str
        Identifier rules (from :data:`IDENTIFIER_RULES`) tried in this order.
    asset_expected : bool
        Whether a CI of this class should have an asset record (ITAM) tracking it; the
        "unmanaged CI" report lists those that have none.
    kind : ServiceKind
        Role in impact reports (services are reported apart from infrastructure).
    description : str
        One line for docs and the GraphQL schema.
    """

    name: str
    parent: str | None
    identification: tuple[str, ...]
    asset_expected: bool = False
    kind: ServiceKind = ServiceKind.INFRASTRUCTURE
    description: str = ""


@dataclass(frozen=True, slots=True)
class RelationshipType:
    """One relationship type.

    Attributes
    ----------
    name : str
        UPPER_SNAKE verb, e.g. ``DEPENDS_ON``; also the Neo4j relationship type.
    impact : ImpactDirection
        How a failure flows along it.
    ci_to_ci : bool
        Whether both ends are configuration items (only those enter the dependency graph).
    description : str
        Example and meaning.
    """

    name: str
    impact: ImpactDirection
    ci_to_ci: bool = True
    description: str = ""


_DEFAULT_CLASSES: tuple[CIClass, ...] = (
    CIClass("ConfigurationItem", None, LOGICAL_RULES, False, ServiceKind.LOGICAL, "Root class"),
    CIClass("Service", "ConfigurationItem", LOGICAL_RULES, False, ServiceKind.LOGICAL,
            "Any service"),
    CIClass("BusinessService", "Service", LOGICAL_RULES, False, ServiceKind.BUSINESS_SERVICE,
            "A service the business consumes (e.g. Online Shop)"),
    CIClass("ApplicationService", "Service", LOGICAL_RULES, False,
            ServiceKind.APPLICATION_SERVICE,
            "A deployed, running instance of applications that delivers a service"),
    CIClass("Application", "ConfigurationItem", DEPENDENT_RULES, False, ServiceKind.APPLICATION,
            "Software application or microservice"),
    CIClass("Database", "Application", DEPENDENT_RULES, False, ServiceKind.APPLICATION,
            "Database instance or schema"),
    CIClass("Middleware", "Application", DEPENDENT_RULES, False, ServiceKind.APPLICATION,
            "Web server, message broker, application server"),
    CIClass("Container", "ConfigurationItem", DEPENDENT_RULES, False, ServiceKind.APPLICATION,
            "Container workload (pod, deployment, compose service)"),
    CIClass("Cluster", "ConfigurationItem", LOGICAL_RULES, False, ServiceKind.INFRASTRUCTURE,
            "Group of redundant members with a redundancy rule"),
    CIClass("Hardware", "ConfigurationItem", HARDWARE_RULES, True, ServiceKind.INFRASTRUCTURE,
            "Physical device"),
    CIClass("Server", "Hardware", HARDWARE_RULES, True, ServiceKind.INFRASTRUCTURE,
            "Physical server"),
    CIClass("Hypervisor", "Server", HARDWARE_RULES, True, ServiceKind.INFRASTRUCTURE,
            "Virtualisation host"),
    CIClass("NetworkDevice", "Hardware", HARDWARE_RULES, True, ServiceKind.INFRASTRUCTURE,
            "Switch, router, firewall, load balancer"),
    CIClass("StorageDevice", "Hardware", HARDWARE_RULES, True, ServiceKind.INFRASTRUCTURE,
            "SAN, NAS, storage array"),
    CIClass("Computer", "Hardware", HARDWARE_RULES, True, ServiceKind.END_USER,
            "Desktop or laptop"),
    CIClass("MobileDevice", "Hardware", HARDWARE_RULES, True, ServiceKind.END_USER,
            "Phone or tablet"),
    CIClass("Printer", "Hardware", HARDWARE_RULES, True, ServiceKind.END_USER,
            "Printer or multifunction device"),
    CIClass("Peripheral", "Hardware", HARDWARE_RULES, True, ServiceKind.END_USER,
            "Monitor, accessory, component"),
    CIClass("VirtualMachine", "ConfigurationItem", VIRTUAL_RULES, False,
            ServiceKind.INFRASTRUCTURE, "Virtual machine"),
    CIClass("CloudResource", "ConfigurationItem", VIRTUAL_RULES, False,
            ServiceKind.INFRASTRUCTURE, "Cloud resource (instance, bucket, network, ...)"),
    CIClass("Network", "ConfigurationItem", LOGICAL_RULES, False, ServiceKind.INFRASTRUCTURE,
            "Network, VLAN, subnet, VPC"),
    CIClass("StorageVolume", "ConfigurationItem", ("native_key", "cloud_id"), False,
            ServiceKind.INFRASTRUCTURE,
            "Logical storage: Kubernetes persistent volume or claim, cloud disk"),
    CIClass("CablePath", "ConfigurationItem", ("native_key",), False,
            ServiceKind.INFRASTRUCTURE,
            "Physical path between two ports through cables and patch panels (cable trace)"),
    CIClass("Datacenter", "ConfigurationItem", LOGICAL_RULES, False, ServiceKind.INFRASTRUCTURE,
            "Datacenter, cloud region or availability zone"),
    CIClass("Rack", "ConfigurationItem", ("native_key", "asset_tag", "serial_number", "name"),
            False, ServiceKind.INFRASTRUCTURE, "Equipment rack"),
)

_DEFAULT_RELS: tuple[RelationshipType, ...] = (
    RelationshipType("DEPENDS_ON", ImpactDirection.END_TO_START, True,
                     "app service -> application; optional=true degrades only"),
    RelationshipType("RUNS_ON", ImpactDirection.END_TO_START, True,
                     "application -> virtual machine / server / container"),
    RelationshipType("HOSTED_ON", ImpactDirection.END_TO_START, True,
                     "virtual machine -> hypervisor / cloud region"),
    RelationshipType("CONNECTS_TO", ImpactDirection.END_TO_START, True, "server -> switch"),
    RelationshipType("LOCATED_IN", ImpactDirection.END_TO_START, True, "server -> datacenter"),
    RelationshipType("MEMBER_OF", ImpactDirection.START_TO_END, True,
                     "server -> cluster, aggregated by the cluster's redundancy rule"),
    RelationshipType("CONTAINS", ImpactDirection.START_TO_END, True, "rack -> server"),
    RelationshipType("SUPPORTS", ImpactDirection.NONE, False, "support group -> CI"),
    RelationshipType("OWNS", ImpactDirection.NONE, False, "person -> CI"),
    RelationshipType("MEMBER_OF_GROUP", ImpactDirection.NONE, False, "person -> support group"),
    RelationshipType("HOLDS", ImpactDirection.NONE, False, "person -> asset"),
    RelationshipType("TRACKS", ImpactDirection.NONE, False, "asset -> CI"),
    RelationshipType("HAS_INSTALLED", ImpactDirection.NONE, False, "CI -> software product"),
    RelationshipType("COVERS", ImpactDirection.NONE, False, "entitlement -> software product"),
    RelationshipType("ASSIGNED_TO", ImpactDirection.NONE, False, "entitlement -> CI / person"),
    RelationshipType("AFFECTS", ImpactDirection.NONE, False, "change -> CI"),
    RelationshipType("APPLIES_TO", ImpactDirection.NONE, False, "window -> CI"),
    RelationshipType("REPORTED_ON", ImpactDirection.NONE, False, "incident -> CI"),
    RelationshipType("PART_OF", ImpactDirection.NONE, False, "location -> parent location"),
    RelationshipType("AT_LOCATION", ImpactDirection.NONE, False, "CI or asset -> location"),
)


@dataclass
class Registry:
    """CI classes and relationship types known to one deployment.

    Parameters
    ----------
    classes : iterable of CIClass, optional
        Defaults to the built-in hierarchy.
    relationship_types : iterable of RelationshipType, optional
        Defaults to the built-in types.

    Raises
    ------
    ConfigurationError
        A name does not match the naming pattern, a parent is unknown, a rule is unknown, or a
        name is declared twice.
    """

    classes: dict[str, CIClass] = field(default_factory=dict)
    relationship_types: dict[str, RelationshipType] = field(default_factory=dict)

    def __init__(
        self,
        classes: Iterable[CIClass] = _DEFAULT_CLASSES,
        relationship_types: Iterable[RelationshipType] = _DEFAULT_RELS,
    ) -> None:
        self.classes = {}
        self.relationship_types = {}
        for cls in classes:
            self.add_class(cls)
        for rel in relationship_types:
            self.add_relationship_type(rel)

    # -- building -------------------------------------------------------------------------
    def add_class(self, cls: CIClass) -> None:
        """Register a CI class; its parent must already be registered.

        Raises
        ------
        ConfigurationError
            Bad name, duplicate, unknown parent or unknown identifier rule.
        """
        if not CLASS_NAME.match(cls.name):
            raise ConfigurationError(f"CI class name {cls.name!r} must be PascalCase [A-Za-z0-9]")
        if cls.name in self.classes:
            raise ConfigurationError(f"CI class {cls.name!r} is declared twice")
        if cls.parent is not None and cls.parent not in self.classes:
            raise ConfigurationError(f"CI class {cls.name!r}: unknown parent {cls.parent!r}")
        bad = [r for r in cls.identification if r not in IDENTIFIER_RULES]
        if bad:
            raise ConfigurationError(f"CI class {cls.name!r}: unknown identifier rules {bad}")
        self.classes[cls.name] = cls

    def add_relationship_type(self, rel: RelationshipType) -> None:
        """Register a relationship type.

        Raises
        ------
        ConfigurationError
            Bad name or duplicate.
        """
        if not REL_NAME.match(rel.name):
            raise ConfigurationError(f"relationship type {rel.name!r} must be UPPER_SNAKE")
        if rel.name in self.relationship_types:
            raise ConfigurationError(f"relationship type {rel.name!r} is declared twice")
        self.relationship_types[rel.name] = rel

    @classmethod
    def from_file(cls, path: str | Path) -> Registry:
        """The default registry extended by the classes and types in a YAML file.

        Parameters
        ----------
        path : str or Path
            YAML file with optional ``ci_classes`` and ``relationship_types`` lists (see the
            module docstring). A class without ``identification`` inherits its parent's rules;
            without ``asset_expected`` or ``kind`` it inherits those too.

        Raises
        ------
        ConfigurationError
            The file cannot be read or parsed, or an entry is invalid (the message names it).
        """
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path}: cannot read registry file: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{path}: expected a mapping at the top level")
        reg = cls()
        reg.extend(data, origin=str(path))
        return reg

    def extend(self, data: Mapping[str, Any], *, origin: str = "<config>") -> None:
        """Add the ``ci_classes`` and ``relationship_types`` entries of a parsed config.

        Raises
        ------
        ConfigurationError
            An entry is invalid; the message names the origin and entry.
        """
        unknown = set(data) - {"ci_classes", "relationship_types"}
        if unknown:
            raise ConfigurationError(f"{origin}: unknown keys {sorted(unknown)}")
        for i, entry in enumerate(data.get("ci_classes") or [], start=1):
            try:
                parent = self.get_class(str(entry["parent"]))
                self.add_class(
                    CIClass(
                        name=str(entry["name"]),
                        parent=parent.name,
                        identification=tuple(entry.get("identification", parent.identification)),
                        asset_expected=bool(entry.get("asset_expected", parent.asset_expected)),
                        kind=ServiceKind(entry.get("kind", parent.kind)),
                        description=str(entry.get("description", "")),
                    )
                )
            except (KeyError, TypeError, ValueError, ConfigurationError) as exc:
                raise ConfigurationError(f"{origin}: ci_classes entry {i}: {exc}") from exc
        for i, entry in enumerate(data.get("relationship_types") or [], start=1):
            try:
                self.add_relationship_type(
                    RelationshipType(
                        name=str(entry["name"]),
                        impact=ImpactDirection(entry.get("impact", "none")),
                        ci_to_ci=bool(entry.get("ci_to_ci", True)),
                        description=str(entry.get("description", "")),
                    )
                )
            except (KeyError, TypeError, ValueError, ConfigurationError) as exc:
                raise ConfigurationError(
                    f"{origin}: relationship_types entry {i}: {exc}"
                ) from exc

    # -- lookups --------------------------------------------------------------------------
    def get_class(self, name: str) -> CIClass:
        """The CI class called ``name``.

        Raises
        ------
        UnknownCIClassError
            No such class.
        """
        try:
            return self.classes[name]
        except KeyError:
            raise UnknownCIClassError(f"unknown CI class {name!r}", field="ci_class") from None

    def get_relationship_type(self, name: str) -> RelationshipType:
        """The relationship type called ``name``.

        Raises
        ------
        UnknownRelationshipTypeError
            No such type.
        """
        try:
            return self.relationship_types[name]
        except KeyError:
            raise UnknownRelationshipTypeError(
                f"unknown relationship type {name!r}", field="rel_type"
            ) from None

    def ancestors(self, name: str) -> list[str]:
        """``name`` and its ancestors, nearest first, ending at ``ConfigurationItem``."""
        chain: list[str] = []
        cur: str | None = name
        while cur is not None:
            cls = self.get_class(cur)
            chain.append(cls.name)
            cur = cls.parent
        return chain

    def is_a(self, name: str, ancestor: str) -> bool:
        """Whether class ``name`` is ``ancestor`` or one of its subclasses."""
        return ancestor in self.ancestors(name)

    def subclasses(self, name: str) -> set[str]:
        """``name`` and every class below it."""
        return {c for c in self.classes if self.is_a(c, name)}

    def impacting_types(self) -> dict[str, ImpactDirection]:
        """CI-to-CI relationship types that carry impact, with their direction."""
        return {
            n: r.impact
            for n, r in self.relationship_types.items()
            if r.ci_to_ci and r.impact is not ImpactDirection.NONE
        }

    def ci_relationship_types(self) -> list[str]:
        """Names of the CI-to-CI relationship types (those that enter the dependency graph)."""
        return sorted(n for n, r in self.relationship_types.items() if r.ci_to_ci)

    def kind_of(self, name: str) -> ServiceKind:
        """The :class:`ServiceKind` of a CI class (unknown classes count as infrastructure)."""
        cls = self.classes.get(name)
        return cls.kind if cls else ServiceKind.INFRASTRUCTURE

    def is_service(self, name: str) -> bool:
        """Whether the class is a business or application service."""
        return self.kind_of(name) in (
            ServiceKind.BUSINESS_SERVICE,
            ServiceKind.APPLICATION_SERVICE,
        ) or name == "Service"

    def labels(self) -> list[str]:
        """Every CI class name (valid Neo4j labels), sorted."""
        return sorted(self.classes)


def default_registry() -> Registry:
    """A fresh registry holding the built-in CI classes and relationship types."""
    return Registry()


def validate_names(names: Sequence[str], pattern: re.Pattern[str]) -> None:
    """Raise :class:`ConfigurationError` when a name does not match ``pattern``."""
    for n in names:
        if not pattern.match(n):
            raise ConfigurationError(f"invalid name {n!r}")
