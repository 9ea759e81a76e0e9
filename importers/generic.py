"""Generic CSV and JSON importers driven by a mapping file, and the vendor exports that ship
with a ready mapping (ServiceNow, Lansweeper CSV, Snow, Flexera, Certero, JSM CSV).

Each importer reads one CSV export (:func:`~importers.readers.read_csv`) or JSON export
(:func:`~importers.readers.load_json`) and turns every row into a CI record (and the asset
record that tracks it) or, for relationship tables, a relationship record, as its mapping says.
The mapping file format (:class:`~importers.mapping_spec.MappingSpec`) is documented in
:mod:`importers.mapping_spec`; the value rules are applied by :mod:`importers.mapped_values`.
The shipped mappings live in ``importers/mappings/*.yaml``; each names the vendor document it
follows in its ``document`` key.

Bad input raises :class:`~cmdb_graph.errors.InvalidRecordError` naming the file and the line
(CSV) or record (JSON pointer) and the field; a bad mapping raises
:class:`~cmdb_graph.errors.ConfigurationError` naming the mapping file and the key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from cmdb_graph.errors import ConfigurationError, InvalidRecordError
from cmdb_graph.model.entities import LifecycleStage, Scalar
from cmdb_graph.model.records import (
    AssetRecord,
    CIRecord,
    Identifiers,
    Record,
    RelationshipRecord,
)
from cmdb_graph.model.registry import CLASS_NAME, REL_NAME
from importers.base import Importer, guard
from importers.mapped_values import Where, extract, has_path, scalar, snake_case
from importers.mapping_spec import (
    AssetSpec,
    IdentifierSpec,
    MappingSpec,
    RelTypeTarget,
    ValueSpec,
    load_mapping,
)
from importers.readers import Table, load_json, read_csv

__all__ = [
    "MappedImporter",
    "GenericCSVImporter",
    "GenericJSONImporter",
    "ServiceNowCIImporter",
    "ServiceNowRelImporter",
    "LansweeperCSVImporter",
    "SnowImporter",
    "FlexeraImporter",
    "CerteroImporter",
    "JSMAssetsCSVImporter",
]

log = logging.getLogger(__name__)


class MappedImporter(Importer[Table | Any]):
    """Parse a CSV or JSON file through a :class:`MappingSpec`.

    The transform takes a CSV :class:`~importers.readers.Table` or a decoded JSON document
    (e.g. a page of the ServiceNow Table API, records under ``result``).

    Parameters
    ----------
    mapping : str, Path or MappingSpec, optional
        The mapping file (or shipped mapping name); subclasses bring a default.
    format : {"csv", "json"}, optional
        Forces the format; otherwise the mapping's ``format``, else the file suffix
        (``.json`` is JSON, anything else CSV).
    delimiter : str, optional
        Overrides the mapping's CSV delimiter (sniffed among ``,;\\t|`` when neither is set).

    Raises
    ------
    ConfigurationError
        No mapping given, or the mapping file is invalid.
    """

    kind: ClassVar[str] = "mapped"
    description: ClassVar[str] = "CSV/JSON through a mapping file"
    default_mapping: ClassVar[str | None] = None
    forced_format: ClassVar[Literal["csv", "json"] | None] = None

    def __init__(
        self,
        mapping: str | Path | MappingSpec | None = None,
        *,
        format: Literal["csv", "json"] | None = None,
        delimiter: str | None = None,
    ) -> None:
        if mapping is None:
            mapping = self.default_mapping
        if mapping is None:
            raise ConfigurationError(
                f"importer {self.kind!r} needs a mapping file: --mapping FILE (the format: "
                "importers/mapping_spec.py; examples: importers/mappings/*.yaml)")
        self.mapping = mapping if isinstance(mapping, MappingSpec) else load_mapping(mapping)
        self.format = format or self.forced_format
        self.delimiter = delimiter
        self._used = self._used_columns()

    # -- reading --------------------------------------------------------------------------
    def _format_for(self, path: Path) -> Literal["csv", "json"]:
        if self.format is not None:
            return self.format
        if self.mapping.format is not None:
            return self.mapping.format
        return "json" if path.suffix.lower() == ".json" else "csv"

    def read(self, path: Path) -> Table | Any:
        if self._format_for(path) == "csv":
            return read_csv(path, required=self.mapping.required,
                            delimiter=self.delimiter or self.mapping.delimiter,
                            encoding=self.mapping.encoding)
        return load_json(path)

    def _rows(self, doc: Table | Any, name: str) -> Iterator[tuple[Where, Mapping[str, Any], bool]]:
        if isinstance(doc, Table):
            for line, row in doc:
                yield Where(name, line, None), row, False
            return
        data, pointer = doc, ""
        if self.mapping.records_path:
            for part in self.mapping.records_path.split("."):
                if not isinstance(data, Mapping) or part not in data:
                    raise InvalidRecordError(
                        f"no {self.mapping.records_path!r} list at the top of the JSON "
                        "(the mapping's records_path)",
                        file=name, record=pointer or "/", field=part,
                    )
                data = data[part]
                pointer += f"/{part}"
        if isinstance(data, Mapping):
            data = [data]
        if not isinstance(data, list):
            raise InvalidRecordError("expected a list of records", file=name,
                                     record=pointer or "/")
        for i, rec in enumerate(data):
            where = f"{pointer}/{i}"
            if not isinstance(rec, Mapping):
                raise InvalidRecordError("a record must be a JSON object", file=name,
                                         record=where)
            for req in self.mapping.required:
                if not has_path(rec, req):
                    raise InvalidRecordError("required field is missing", file=name,
                                             record=where, field=req)
            yield Where(name, None, where), rec, True

    # -- records ------------------------------------------------------------------------------
    def transform(self, doc: Table | Any, origin: str) -> list[Record]:
        """The records of one export: per row a CI (and its asset record) or a relationship.

        Raises
        ------
        InvalidRecordError
            A missing required column/field, an empty required value, a value that cannot be
            converted, or an unmapped value the mapping refuses; the message names the file,
            line/record and field.
        """
        records: list[Record] = []
        for ctx, row, is_json in self._rows(doc, origin):
            with guard(origin, line=ctx.line, record=ctx.record):
                if self.mapping.record == "relationship":
                    rel = self._relationship(row, ctx, is_json)
                    if rel is not None:
                        records.append(rel)
                else:
                    records.extend(self._ci(row, ctx, is_json))
        return records

    def _identifiers(self, spec: IdentifierSpec, row: Mapping[str, Any], ctx: Where,
                     is_json: bool) -> Identifiers:
        values: dict[str, Any] = {}
        for key, vs in spec.specs().items():
            v = extract(row, vs, ctx, is_json=is_json, what=key)
            if v in (None, "", []):
                continue
            if key == "mac_addresses":
                v = tuple(v) if isinstance(v, list) else (str(v),)
            else:
                v = str(v)
            values[key] = v
        return Identifiers(**values)

    def _used_columns(self) -> set[str]:
        m = self.mapping
        specs: list[ValueSpec | None] = [m.ci_class, m.name, m.support_group, m.owner,
                                         m.location, *m.identifiers.specs().values(),
                                         *m.attributes.values()]
        if m.asset is not None:
            a = m.asset
            specs += [a.native_key, a.asset_tag, a.serial_number, a.name, a.lifecycle_stage,
                      a.holder, a.location, *a.attributes.values()]
        cols: set[str] = set()
        for s in specs:
            if s is not None:
                cols.update(s.columns())
        return cols

    def _ci(self, row: Mapping[str, Any], ctx: Where, is_json: bool) -> list[Record]:
        m = self.mapping
        assert m.ci_class is not None and m.name is not None  # checked by MappingSpec
        ci_class = extract(row, m.ci_class, ctx, is_json=is_json, what="ci_class")
        name = extract(row, m.name, ctx, is_json=is_json, what="name")
        if ci_class in (None, ""):
            raise ctx.error("no CI class for this row", _first(m.ci_class.columns(), "ci_class"))
        if not CLASS_NAME.match(str(ci_class)):
            raise ctx.error(f"CI class {ci_class!r} is not a PascalCase class name; add the "
                            "value to the mapping's ci_class map",
                            _first(m.ci_class.columns(), "ci_class"))
        if name in (None, ""):
            raise ctx.error("the CI has no name", _first(m.name.columns(), "name"))
        idents = self._identifiers(m.identifiers, row, ctx, is_json)
        attrs: dict[str, Scalar | list[str]] = {}
        if m.extra_columns == "attributes":
            for col, raw in row.items():
                if col in self._used or isinstance(raw, Mapping | list):
                    continue
                v = scalar(raw, ValueSpec(column=col))
                if v is not None:
                    attrs[snake_case(col)] = v
        for key, vs in m.attributes.items():
            v = extract(row, vs, ctx, is_json=is_json, what=f"attributes.{key}")
            if v not in (None, "", []):
                attrs[key] = v
        ci = CIRecord(
            ci_class=str(ci_class),
            name=str(name),
            identifiers=idents,
            attributes=attrs,
            support_group=_opt_str(extract(row, m.support_group, ctx, is_json=is_json,
                                          what="support_group")),
            owner=_opt_str(extract(row, m.owner, ctx, is_json=is_json, what="owner")),
            location=_opt_str(extract(row, m.location, ctx, is_json=is_json, what="location")),
            origin=ctx.origin(),
        )
        out: list[Record] = [ci]
        if m.asset is not None:
            out.append(self._asset(m.asset, ci, row, ctx, is_json))
        return out

    def _asset(self, a: AssetSpec, ci: CIRecord, row: Mapping[str, Any], ctx: Where,
               is_json: bool) -> AssetRecord:
        def val(spec: ValueSpec | None, what: str) -> Any:
            return extract(row, spec, ctx, is_json=is_json, what=f"asset.{what}")

        stage = val(a.lifecycle_stage, "lifecycle_stage")
        if stage is not None:
            try:
                stage = LifecycleStage(str(stage))
            except ValueError:
                raise ctx.error(
                    f"lifecycle stage {stage!r} is not one of "
                    f"{', '.join(s.value for s in LifecycleStage)}; map it in asset."
                    "lifecycle_stage", _first(a.lifecycle_stage.columns()
                                              if a.lifecycle_stage else [], "lifecycle_stage"),
                ) from None
        attrs: dict[str, Scalar] = {}
        for key, vs in a.attributes.items():
            v = val(vs, f"attributes.{key}")
            if v not in (None, ""):
                attrs[key] = ", ".join(v) if isinstance(v, list) else v
        ids = ci.identifiers
        return AssetRecord(
            native_key=_opt_str(val(a.native_key, "native_key")) or ids.native_key,
            asset_tag=_opt_str(val(a.asset_tag, "asset_tag")) or ids.asset_tag,
            serial_number=_opt_str(val(a.serial_number, "serial_number")) or ids.serial_number,
            name=_opt_str(val(a.name, "name")) or ci.name,
            lifecycle_stage=stage,
            attributes=attrs,
            tracks=ids,
            holder=_opt_str(val(a.holder, "holder")),
            location=_opt_str(val(a.location, "location")) or ci.location,
            origin=ci.origin,
        )

    def _relationship(self, row: Mapping[str, Any], ctx: Where,
                      is_json: bool) -> RelationshipRecord | None:
        r = self.mapping.relationship
        assert r is not None  # checked by MappingSpec
        type_col = _first(r.type.columns(), "type")
        raw_type = extract(row, r.type, ctx, is_json=is_json, what="relationship.type")
        if raw_type in (None, ""):
            raise ctx.error("the relationship has no type", type_col)
        target_spec = _lookup_type(r.type_map, str(raw_type))
        if target_spec is None:
            if r.unmapped == "skip":
                log.info("%s: skipping relationship type %r (not in the type map)", ctx.file,
                         raw_type)
                return None
            if r.unmapped == "error" or not REL_NAME.match(str(raw_type)):
                raise ctx.error(
                    f"relationship type {raw_type!r} is not in the mapping's type_map "
                    f"(known: {', '.join(sorted(r.type_map))})", type_col)
            target_spec = RelTypeTarget(type=str(raw_type))
        src = self._identifiers(r.source, row, ctx, is_json)
        dst = self._identifiers(r.target, row, ctx, is_json)
        for end, ids, spec in (("source", src, r.source), ("target", dst, r.target)):
            if ids.is_empty():
                cols = [c for s in spec.specs().values() for c in s.columns()]
                raise ctx.error(f"the relationship's {end} end has no identifier",
                                _first(cols, end))
        if target_spec.reverse:
            src, dst = dst, src
        props: dict[str, Scalar] = {}
        for key, vs in r.properties.items():
            v = extract(row, vs, ctx, is_json=is_json, what=f"relationship.properties.{key}")
            if v not in (None, ""):
                props[key] = ", ".join(v) if isinstance(v, list) else v
        props.setdefault("source_type", str(raw_type))
        return RelationshipRecord(
            rel_type=target_spec.type,
            source=src,
            target=dst,
            optional=target_spec.optional,
            properties=props,
            origin=ctx.origin(),
        )


def _lookup_type(type_map: Mapping[str, RelTypeTarget], raw: str) -> RelTypeTarget | None:
    if raw in type_map:
        return type_map[raw]
    folded = raw.casefold()
    for k, v in type_map.items():
        if k.casefold() == folded:
            return v
    return None


def _first(cols: list[str], default: str) -> str:
    return cols[0] if cols else default


def _opt_str(value: Any) -> str | None:
    if value in (None, "", []):
        return None
    return ", ".join(value) if isinstance(value, list) else str(value)


class GenericCSVImporter(MappedImporter):
    """Any CSV export, through a mapping file (``mapping=`` is required)."""

    kind = "csv"
    description = "CSV through a declarative mapping file (importers/generic.py)"
    forced_format = "csv"


class GenericJSONImporter(MappedImporter):
    """Any JSON export, through a mapping file (``mapping=`` is required)."""

    kind = "json"
    description = "JSON through a declarative mapping file (importers/generic.py)"
    forced_format = "json"


class ServiceNowCIImporter(MappedImporter):
    """ServiceNow CMDB CI tables (``cmdb_ci`` and its extensions such as ``cmdb_ci_server``).

    Follows ServiceNow's list export (CSV with field names as headers, display values for
    reference and choice fields) and the Table API JSON (``GET /api/now/table/<table>``, records
    under ``result``, with or without ``sysparm_display_value``); the file suffix chooses
    (``.json`` or CSV). Mapping: ``importers/mappings/servicenow_cmdb_ci.yaml``.
    """

    kind = "servicenow-ci"
    description = "ServiceNow cmdb_ci* list export CSV or Table API JSON"
    default_mapping = "servicenow_cmdb_ci"


class ServiceNowRelImporter(MappedImporter):
    """ServiceNow ``cmdb_rel_ci`` (parent, child, type) as list export CSV or Table API JSON.

    The ServiceNow type ``"Depends on::Used by"`` reads *parent depends on child*; the type map
    in ``importers/mappings/servicenow_cmdb_rel_ci.yaml`` turns each type into ours, reversing
    those whose parent is the needed end (``Members::Member of``: the parent is the cluster).
    """

    kind = "servicenow-rel"
    description = "ServiceNow cmdb_rel_ci list export CSV or Table API JSON"
    default_mapping = "servicenow_cmdb_rel_ci"


class LansweeperCSVImporter(MappedImporter):
    """Lansweeper report export (CSV) of assets, column names as in the report builder
    (``tblAssets`` / ``tblAssetCustom`` fields). Mapping:
    ``importers/mappings/lansweeper_csv.yaml`` (also emits an asset record per asset)."""

    kind = "lansweeper-csv"
    description = "Lansweeper asset report CSV export"
    default_mapping = "lansweeper_csv"


class SnowImporter(MappedImporter):
    """Snow License Manager computer list export (CSV). Mapping:
    ``importers/mappings/snow_computers.yaml``."""

    kind = "snow"
    description = "Snow License Manager computers CSV export"
    default_mapping = "snow_computers"


class FlexeraImporter(MappedImporter):
    """Flexera One / FlexNet Manager Suite inventory devices export (CSV). Mapping:
    ``importers/mappings/flexera_inventory_devices.yaml``."""

    kind = "flexera"
    description = "Flexera One / FlexNet Manager inventory devices CSV export"
    default_mapping = "flexera_inventory_devices"


class CerteroImporter(MappedImporter):
    """Certero device export (CSV). Mapping: ``importers/mappings/certero_devices.yaml``."""

    kind = "certero"
    description = "Certero device CSV export"
    default_mapping = "certero_devices"


class JSMAssetsCSVImporter(MappedImporter):
    """Jira Service Management Assets object CSV export (``Key``, ``Name``, ``Object Type``,
    ``Created``, ``Updated`` and one column per attribute). Mapping:
    ``importers/mappings/jsm_assets_csv.yaml``; attribute columns it does not name become
    attributes."""

    kind = "jsm-assets-csv"
    description = "Jira Service Management Assets object CSV export"
    default_mapping = "jsm_assets_csv"
