"""Jira Service Management Assets' import API as a push target.

Follows Atlassian's "Imports REST API Guide" (developer.atlassian.com/cloud/assets/
imports-rest-api-guide/workflow): an import source of type "external import" in an Assets
schema gives a container token (``auth: {type: token, token: env:...}``, sent as ``Bearer``);
``GET /jsm/assets/v1/imports/info`` (``url`` = ``https://api.atlassian.com``) answers the
``links`` of the workflow; with ``params.put_mapping: true`` the schema and mapping built from
the push mapping is ``PUT`` to ``links.mapping`` first; each push is one import execution:
``POST links.start`` answers the execution's ``links.submitResults``, where the CIs go in
chunks of ``batch_size`` as ``{"data": {"objects": [...]}, "completed": false}``, the last
chunk with ``"completed": true``. Assets is a Premium and Enterprise feature.

Each object is ``{"key": <ci_id>, "objectType": <mapped class>, <mapped fields>,
<relationship attribute>: [<ci_id of each target>]}``; the import source's mapping matches
objects on ``key`` and references on the target's ``key``. Assets processes an execution after
it is completed and answers nothing per object at submit time: a CI the mapping cannot carry
(no ``name``) is refused before sending, and a chunk the API refuses (400) is reported for
each of its CIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cmdb_graph.connectors.push import Item, Link, Outcome, Rejected, Target

__all__ = ["JSMAssetsImport", "mapping_document"]


def _external(name: str) -> str:
    return name.strip().lower().replace(" ", "-")


def mapping_document(types: dict[str, list[str]], references: list[str]) -> dict[str, Any]:
    """The schema and mapping ``PUT`` to ``links.mapping``: one object type per mapped class
    (``key``, ``name`` as label, each mapped field as text, each relationship attribute as a
    reference), objects selected from ``objects`` by ``objectType``."""
    object_types, mappings = [], []
    for type_name, fields in sorted(types.items()):
        ext = _external(type_name)
        attributes = [{"externalId": f"{ext}-key", "name": "Key", "type": "text"},
                      {"externalId": f"{ext}-name", "name": "Name", "type": "text",
                       "label": True}]
        attributes += [{"externalId": f"{ext}-{_external(f)}", "name": f, "type": "text"}
                       for f in fields if f != "name"]
        attributes += [{"externalId": f"{ext}-{_external(r)}", "name": r,
                        "type": "referenced_object",
                        "typeValue": {"referencedObjectTypeExternalId": ext}}
                       for r in references]
        object_types.append({"externalId": ext, "name": type_name,
                             "description": "pushed by cmdb-graph", "attributes": attributes})
        locators = [{"attributeExternalId": f"{ext}-key", "attributeLocators": ["key"],
                     "externalIdPart": True},
                    {"attributeExternalId": f"{ext}-name", "attributeLocators": ["name"]}]
        locators += [{"attributeExternalId": f"{ext}-{_external(f)}", "attributeLocators": [f]}
                     for f in fields if f != "name"]
        locators += [{"attributeExternalId": f"{ext}-{_external(r)}",
                      "attributeLocators": [r], "objectMappingIQL": f"Key IN (${{{r}}})"}
                     for r in references]
        mappings.append({"objectTypeExternalId": ext, "objectTypeName": type_name,
                         "selector": f"objects[?objectType=='{type_name}']",
                         "attributesMapping": locators})
    return {"schema": {"objectSchema": {"name": "cmdb-graph", "objectTypes": object_types}},
            "mapping": {"objectTypeMappings": mappings}}


class JSMAssetsImport(Target):
    """Push through the Assets import API (see the module docstring)."""

    kind = "jsm-assets-import"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._submit: str | None = None
        self._pending_finish = False

    def _links(self) -> Mapping[str, Any]:
        body = self.client.json("GET", "/jsm/assets/v1/imports/info")
        links = body.get("links") if isinstance(body, Mapping) else None
        if not isinstance(links, Mapping) or "start" not in links:
            raise self.client.error("GET /jsm/assets/v1/imports/info: no links.start in the "
                                    "answer (is the token an import source's token?)")
        return links

    def _start(self) -> str:
        links = self._links()
        if self.config.params.get("put_mapping", False):
            types = {cls: list(self.mapping.fields) for cls in
                     {*self.mapping.classes.values(), *filter(None, [self.mapping.default_class])}}
            self.client.request("PUT", str(links["mapping"]), ok=(200, 201, 204),
                                json=mapping_document(types,
                                                      list(self.mapping.relationships.values())))
        body = self.client.json("POST", str(links["start"]), ok=(200, 201))
        found = body.get("links", {}).get("submitResults") if isinstance(body, Mapping) else None
        if not found:
            raise self.client.error("POST start: the answer has no links.submitResults")
        return str(found)

    def _object(self, item: Item, refs: Mapping[str, list[str]]) -> dict[str, Any]:
        return {"key": item.ci.ci_id, "objectType": item.target_class, **item.values, **refs}

    def send(self, items: list[Item], links: list[Link],
             context: Mapping[str, Item]) -> Outcome:
        outcome = Outcome()
        objects: list[dict[str, Any]] = []
        keys: list[str] = []
        for item in items:
            if not item.values.get("name"):
                outcome.rejected.append(Rejected(item.ci.ci_id, item.ci.name,
                                                 "the mapping gives no name"))
                continue
            objects.append(self._object(item, {}))
            keys.append(item.ci.ci_id)
        by_source: dict[str, dict[str, list[str]]] = {}
        for lk in links:
            by_source.setdefault(lk.source, {}).setdefault(lk.target_type, []).append(lk.target)
        for source, refs in by_source.items():
            objects.append(self._object(context[source], refs))
        if not objects:
            return outcome
        if self._submit is None:
            self._submit = self._start()
        response = self.client.request("POST", self._submit, ok=(200, 201, 202, 204, 400),
                                       json={"data": {"objects": objects}, "completed": False})
        self._pending_finish = True
        if response.status_code == 400:
            reason = _reason(response.json() if response.content else None)
            outcome.rejected += [Rejected(i.ci.ci_id, i.ci.name, f"chunk refused: {reason}")
                                 for i in items if i.ci.ci_id in keys]
            outcome.rejected += [Rejected(lk.key, lk.target_type, f"chunk refused: {reason}")
                                 for lk in links]
            return outcome
        outcome.accepted.update(keys)
        outcome.accepted.update(lk.key for lk in links)
        return outcome

    def close(self) -> None:
        """Complete the execution (Assets then processes it), then close the client."""
        try:
            if self._submit is not None and self._pending_finish:
                self.client.request("POST", self._submit, ok=(200, 201, 202, 204),
                                    json={"completed": True})
        finally:
            super().close()


def _reason(body: Any) -> str:
    if isinstance(body, Mapping):
        for key in ("errorMessages", "errors", "message"):
            value = body.get(key)
            if value:
                return str(value[0] if isinstance(value, list) else value)
    return "400 Bad Request"
