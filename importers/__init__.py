"""Importers: one module per source format, parsing only (no store access).

Every importer follows one pattern (:class:`importers.base.Importer`): ``read`` the file with a
shared reader (:mod:`importers.readers`), ``transform`` the parsed document into records in a
pure function, and one guard for bad input with the same error shape everywhere. To add a
format, copy ``importers/_template.py``.

``IMPORTERS`` maps the kind used on the command line to ``"module:Class"``; classes are loaded
lazily so that one importer's optional imports never slow another down.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from cmdb_graph.errors import ConfigurationError
from importers.base import Importer

__all__ = ["IMPORTERS", "get_importer", "Importer"]

#: kind -> "module:Class". Each class is an :class:`~importers.base.Importer`: it takes keyword
#: options (e.g. ``mapping=``) and has ``kind``, ``description``, ``parse(path)`` and
#: ``records(document, origin)``.
IMPORTERS: dict[str, str] = {
    # ITAM and discovery (generic mappings and vendor exports)
    "csv": "importers.generic:GenericCSVImporter",
    "json": "importers.generic:GenericJSONImporter",
    "servicenow-ci": "importers.generic:ServiceNowCIImporter",
    "servicenow-rel": "importers.generic:ServiceNowRelImporter",
    "lansweeper-csv": "importers.generic:LansweeperCSVImporter",
    "snow": "importers.generic:SnowImporter",
    "flexera": "importers.generic:FlexeraImporter",
    "certero": "importers.generic:CerteroImporter",
    "jsm-assets-csv": "importers.generic:JSMAssetsCSVImporter",
    "snipeit-assets": "importers.snipeit:SnipeITAssetsImporter",
    "snipeit-locations": "importers.snipeit:SnipeITLocationsImporter",
    "snipeit-components": "importers.snipeit:SnipeITComponentsImporter",
    "snipeit-api-hardware": "importers.snipeit_api:SnipeITHardwareAPIImporter",
    "snipeit-api-licenses": "importers.snipeit_api:SnipeITLicensesAPIImporter",
    "snipeit-api-components": "importers.snipeit_api:SnipeITComponentsAPIImporter",
    "jsm-assets": "importers.jsm_assets:JSMAssetsImporter",
    "glpi": "importers.glpi:GLPIInventoryImporter",
    "glpi-rest": "importers.glpi_rest:GLPIRestImporter",
    "fusioninventory": "importers.fusioninventory:FusionInventoryXMLImporter",
    "lansweeper": "importers.lansweeper:LansweeperDataAPIImporter",
    "netbox": "importers.netbox:NetBoxImporter",
    "nmap": "importers.nmap:NmapImporter",
    "itop": "importers.itop:ITopXMLImporter",
    # service topology, cloud, software and licences
    "kubernetes": "importers.kubernetes:KubernetesImporter",
    "compose": "importers.compose:ComposeImporter",
    "backstage": "importers.backstage:BackstageImporter",
    "cyclonedx": "importers.cyclonedx:CycloneDXImporter",
    "spdx": "importers.spdx:SPDXImporter",
    "swid": "importers.swid:SWIDImporter",
    "snipeit-licenses": "importers.snipeit_licenses:SnipeITLicensesImporter",
    "aws-ec2": "importers.aws:AWSEC2Importer",
    "azure-resource-graph": "importers.azure:AzureResourceGraphImporter",
    "terraform": "importers.terraform:TerraformStateImporter",
}


def get_importer(kind: str, **options: Any) -> Importer[Any]:
    """An importer instance for ``kind``.

    Raises
    ------
    ConfigurationError
        Unknown kind (the message lists the known ones), an option the importer does not take
        (the message lists those it takes), or the importer rejects ``options``.
    """
    try:
        target = IMPORTERS[kind]
    except KeyError:
        raise ConfigurationError(
            f"unknown importer {kind!r}; known: {', '.join(sorted(IMPORTERS))}"
        ) from None
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    accepted = [p.name for p in inspect.signature(cls).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigurationError(
            f"importer {kind!r} has no option {', '.join(unknown)}; its options: "
            f"{', '.join(accepted) if accepted else 'none'}")
    try:
        return cls(**options)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ConfigurationError(f"importer {kind!r}: {exc}") from exc
