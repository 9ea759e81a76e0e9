"""ServiceNow's Identification and Reconciliation API as a push target.

``POST /api/now/identifyreconcile?sysparm_data_source=<data_source>`` (ServiceNow REST API
reference, "Identification and Reconciliation API"; the user needs the ``itil`` or ``asset``
role, and ``data_source`` must be a choice of ``cmdb_ci.discovery_source``). Each CI is an
item ``{"className", "values", "internal_id": <ci_id>, "sys_object_source_info":
{"source_name", "source_native_key": <ci_id>}}``; relationships are ``{"parent_id",
"child_id", "type"}`` between the ``internal_id`` of two items of the same payload, so the
ends of a relationship ride along as items (the IRE answers ``NO_CHANGE`` for them). Our
relationship reads *source needs target*, which is ServiceNow's *parent* ``Depends on`` /
``Runs on`` / ``Hosted on`` *child*; a mapped type starting with ``~`` is sent reversed
(``~Members::Member of``: the cluster is the parent).

The answer lists ``result.items`` (``operation``, ``sysId``, ``errors``) and
``result.relations`` in the order of the request (``inputIndices``): an item or relation with
errors (e.g. ``MISSING_MATCHING_ATTRIBUTES``) is reported per CI with ServiceNow's error; a
400 for the whole payload is reported for each of its CIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cmdb_graph.connectors.push import Item, Link, Outcome, Rejected, Target

__all__ = ["ServiceNowIRE"]


def _errors(entry: Any) -> str | None:
    errors = entry.get("errors") if isinstance(entry, Mapping) else None
    if not errors:
        return None
    first = errors[0] if isinstance(errors, list) else errors
    if isinstance(first, Mapping):
        return f"{first.get('error')}: {first.get('message')}"
    return str(first)


def _index(entry: Any, position: int) -> int:
    found = entry.get("inputIndices") if isinstance(entry, Mapping) else None
    if isinstance(found, list) and found and isinstance(found[0], int):
        return int(found[0])
    return position


class ServiceNowIRE(Target):
    """Push to ``/api/now/identifyreconcile`` (see the module docstring)."""

    kind = "servicenow-ire"
    oauth_token_url = "/oauth_token.do"

    def _item(self, item: Item) -> dict[str, Any]:
        return {"className": item.target_class, "values": item.values,
                "internal_id": item.ci.ci_id,
                "sys_object_source_info": {"source_name": self.config.data_source,
                                           "source_native_key": item.ci.ci_id}}

    @staticmethod
    def _relation(link: Link) -> dict[str, Any]:
        parent, child = link.source, link.target
        kind = link.target_type
        if kind.startswith("~"):
            parent, child, kind = child, parent, kind[1:]
        return {"parent_id": parent, "child_id": child, "type": kind}

    def send(self, items: list[Item], links: list[Link],
             context: Mapping[str, Item]) -> Outcome:
        sent = [*items, *(v for k, v in context.items()
                          if k not in {i.ci.ci_id for i in items})]
        payload = {"items": [self._item(i) for i in sent],
                   "relations": [self._relation(lk) for lk in links]}
        response = self.client.request(
            "POST", "/api/now/identifyreconcile", ok=(200, 201, 400),
            params={"sysparm_data_source": self.config.data_source}, json=payload)
        outcome = Outcome()
        body = response.json() if response.content else {}
        if response.status_code == 400:
            err = body.get("error") if isinstance(body, Mapping) else None
            reason = (err.get("message") if isinstance(err, Mapping) else None) or "400"
            outcome.rejected = [Rejected(i.ci.ci_id, i.ci.name, f"payload refused: {reason}")
                                for i in items]
            outcome.rejected += [Rejected(lk.key, lk.target_type, f"payload refused: {reason}")
                                 for lk in links]
            return outcome
        result = body.get("result") if isinstance(body, Mapping) else None
        answered = result.get("items") if isinstance(result, Mapping) else None
        for position, entry in enumerate(answered if isinstance(answered, list) else []):
            index = _index(entry, position)
            if index >= len(sent) or sent[index] not in items:
                continue
            item = sent[index]
            reason = _errors(entry)
            if reason is None:
                outcome.accepted.add(item.ci.ci_id)
            else:
                outcome.rejected.append(Rejected(item.ci.ci_id, item.ci.name, reason))
        relations = result.get("relations") if isinstance(result, Mapping) else None
        for position, entry in enumerate(relations if isinstance(relations, list) else []):
            index = _index(entry, position)
            if index >= len(links):
                continue
            reason = _errors(entry)
            if reason is None:
                outcome.accepted.add(links[index].key)
            else:
                outcome.rejected.append(Rejected(links[index].key, links[index].target_type,
                                                 reason))
        if not relations and links and not any(isinstance(r, Rejected)
                                                for r in outcome.rejected):
            outcome.accepted.update(lk.key for lk in links)
        missing = [i for i in items if i.ci.ci_id not in outcome.accepted
                   and all(r.key != i.ci.ci_id for r in outcome.rejected)]
        outcome.rejected += [Rejected(i.ci.ci_id, i.ci.name, "not in the IRE's answer")
                             for i in missing]
        return outcome
