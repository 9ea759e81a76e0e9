"""The ITAM-authoritative push: our reconciled CIs and relationships into an ITSM tool's CMDB.

``cmdb-graph push TARGET`` sends what changed since the target's last push to ServiceNow's
Identification and Reconciliation API (:mod:`cmdb_graph.connectors.targets.servicenow_ire`)
or to Jira Service Management Assets' import API
(:mod:`cmdb_graph.connectors.targets.jsm_import`), mapped by a YAML field mapping
(:class:`PushMapping`).

Only what changed
    Each target has a state file, ``<state_dir>/push-<target>.json`` (``state_dir`` of the
    sources file, default ``.cmdb-graph-state/`` beside it): the change-feed cursor (the
    ``seq`` of the last change record the target has seen), a digest of every CI and
    relationship payload it accepted, and the CIs it rejected last time. A push reads the change
    feed after the cursor (``GraphStore.feed_since``) for the CIs and relationships that
    changed, adds last time's rejected CIs, maps them, and sends only those whose payload
    digest differs from the accepted one (a change to an unmapped field sends nothing). A store
    without a feed (Neo4j until its feed lands) or a feed that was pruned past the cursor falls
    back to comparing every CI's digest: the same result, more reading. The cursor and digests
    are written after the target answered, so a push that fails is sent again in full next
    time.
Per CI
    The target's answer is read per CI: each rejected CI is reported with the target's reason
    (and kept for the next push); a rejected request (a 400 for a whole batch) is reported for
    each CI of that batch.
Dry run
    Maps and compares, prints what would be sent, sends nothing and keeps the state as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cmdb_graph.connectors.config import TargetConfig
from cmdb_graph.connectors.http import ApiClient, Progress
from cmdb_graph.errors import ConfigurationError, FeedGapError
from cmdb_graph.model import ConfigurationItem, Relationship
from cmdb_graph.store import iter_cis
from cmdb_graph.store.base import GraphStore

__all__ = ["PushMapping", "PushResult", "PushState", "Rejected", "Target", "push"]

log = logging.getLogger(__name__)


class PushMapping(BaseModel):
    """A target's field mapping (YAML).

    Attributes
    ----------
    classes : dict
        Our CI class -> the target's class (ServiceNow ``sys_class_name``, JSM object type).
    default_class : str, optional
        The target class of CIs whose class is not in ``classes``; without one they are left
        out (and counted).
    fields : dict
        Target field -> our field: a CI field (``name``, ``serial_number``, ``fqdn``,
        ``ip_addresses``, ``operational_status``, ...) or ``attributes.<name>``. A list value
        sends its first element unless the field name ends in ``[]``.
    values : dict
        Target field -> our value -> the target's value (e.g. ``operational_status``).
    relationships : dict
        Our relationship type -> the target's (``Depends on::Used by``, an Assets reference
        attribute name). Types not listed are not sent.
    """

    model_config = ConfigDict(extra="forbid")

    classes: dict[str, str] = Field(default_factory=dict)
    default_class: str | None = None
    fields: dict[str, str] = Field(default_factory=lambda: {"name": "name"})
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    relationships: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> PushMapping:
        """Read and validate a mapping file (``ConfigurationError``, one line per mistake)."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls.model_validate(data)
        except OSError as exc:
            raise ConfigurationError(f"{path}: cannot read the push mapping ({exc.strerror})"
                                     ) from None
        except yaml.YAMLError:
            raise ConfigurationError(f"{path}: not valid YAML") from None
        except ValidationError as exc:
            raise ConfigurationError("\n".join(
                f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors())) from None

    def target_class(self, ci: ConfigurationItem) -> str | None:
        """The target class of a CI, or None when it is not sent."""
        return self.classes.get(ci.ci_class, self.default_class)

    def values_of(self, ci: ConfigurationItem) -> dict[str, Any]:
        """The mapped field values of a CI (empty values left out)."""
        out: dict[str, Any] = {}
        data = ci.model_dump(mode="json")
        for target, ours in self.fields.items():
            many = target.endswith("[]")
            value = (data.get("attributes") or {}).get(ours.removeprefix("attributes.")) \
                if ours.startswith("attributes.") else data.get(ours)
            if isinstance(value, list) and not many:
                value = value[0] if value else None
            if value is None or value == "" or value == []:
                continue
            mapped = self.values.get(target.removesuffix("[]"), {})
            out[target.removesuffix("[]")] = mapped.get(str(value), value) if mapped else value
        return out


@dataclass(frozen=True)
class Item:
    """One CI as the target gets it."""

    ci: ConfigurationItem
    target_class: str
    values: dict[str, Any]

    @property
    def digest(self) -> str:
        """What the target accepted, as a hash (stable key order)."""
        text = json.dumps([self.target_class, self.values], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Link:
    """One relationship as the target gets it (our ends by ci_id)."""

    rel_type: str
    target_type: str
    source: str
    target: str

    @property
    def key(self) -> str:
        """``source|rel_type|target``: the relationship's digest key."""
        return f"{self.source}|{self.rel_type}|{self.target}"


@dataclass(frozen=True)
class Rejected:
    """A CI (or relationship) the target refused, with its reason."""

    key: str
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.key}): {self.reason}"


@dataclass
class Outcome:
    """What a target said about one batch: the keys accepted, and those refused."""

    accepted: set[str] = field(default_factory=set)
    rejected: list[Rejected] = field(default_factory=list)


class Target(ABC):
    """A push target's API (one module per target in :mod:`cmdb_graph.connectors.targets`)."""

    kind: str = ""
    token_scheme: str = "Bearer"
    oauth_token_url: str = "/oauth/token"

    def __init__(self, name: str, config: TargetConfig, mapping: PushMapping, *,
                 progress: Progress | None = None) -> None:
        self.name = name
        self.config = config
        self.mapping = mapping
        self.client = ApiClient(name, config.url, auth=config.auth, retry=config.retry,
                                token_scheme=self.token_scheme,
                                oauth_token_url=self.oauth_token_url, progress=progress,
                                verify=config.verify_tls)

    def close(self) -> None:
        """Release connections."""
        self.client.close()

    @abstractmethod
    def send(self, items: list[Item], links: list[Link],
             context: Mapping[str, Item]) -> Outcome:
        """Send one batch; ``context`` holds the mapped ends of ``links`` not in ``items``.

        Keys in the outcome are ``ci_id`` for CIs and :attr:`Link.key` for relationships.

        Raises
        ------
        ConnectorError
            The target cannot be reached or refused the credentials.
        """


@dataclass
class PushState:
    """A target's durable state: feed cursor, accepted digests, last rejected CIs."""

    path: Path
    cursor: int | None = None
    digests: dict[str, str] = field(default_factory=dict)
    links: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> PushState:
        """The state in ``path``, or a fresh one (first push: everything is compared)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{path}: the push state cannot be read ({exc}); "
                                     "remove it to push everything again") from None
        return cls(path, cursor=data.get("cursor"), digests=dict(data.get("digests", {})),
                   links=set(data.get("links", [])), pending=set(data.get("pending", [])))

    def save(self) -> None:
        """Write the state atomically (write a temporary file, then rename it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"cursor": self.cursor, "digests": self.digests,
                                   "links": sorted(self.links),
                                   "pending": sorted(self.pending)}, indent=1),
                       encoding="utf-8")
        tmp.replace(self.path)


@dataclass
class PushResult:
    """What one push did (or, dry, would do)."""

    target: str
    dry_run: bool
    sent: list[str] = field(default_factory=list)
    links_sent: list[str] = field(default_factory=list)
    unchanged: int = 0
    unmapped: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    full_compare: bool = False

    @property
    def ok(self) -> bool:
        """Whether the target accepted everything sent."""
        return not self.rejected


def _changed(store: GraphStore, state: PushState) -> tuple[set[str] | None, int]:
    """The CIs changed after the cursor (``None``: compare all) and the feed head."""
    head = store.feed_head()
    if state.cursor is None:
        return None, head
    changed: set[str] = set()
    after = state.cursor
    try:
        while after < head:
            records = store.feed_since(after, limit=1000)
            if not records:
                break
            for record in records:
                changed.update(n.key for n in record.nodes if n.label == "CI")
                for rel in record.relationships:
                    changed.update(k for k, label in ((rel.source, rel.source_label),
                                                      (rel.target, rel.target_label))
                                   if label == "CI")
            after = records[-1].seq
    except (NotImplementedError, FeedGapError) as exc:
        log.info("push: no change feed to follow (%s); comparing every CI", exc)
        return None, head
    return changed, head


def _links(store: GraphStore, mapping: PushMapping, ci_ids: Iterable[str] | None,
           ) -> list[Link]:
    rels: list[Relationship] = []
    if ci_ids is None:
        rels = store.relationships()
    else:
        seen: set[tuple[str, str, str]] = set()
        for ci_id in ci_ids:
            for rel in store.relationships(ci_id):
                if rel.key not in seen:
                    seen.add(rel.key)
                    rels.append(rel)
    return [Link(r.rel_type, mapping.relationships[r.rel_type], r.source, r.target)
            for r in rels if r.rel_type in mapping.relationships
            and r.source_label == "CI" and r.target_label == "CI"]


def _target_for(name: str, config: TargetConfig, mapping: PushMapping,
                progress: Progress | None) -> Target:
    if config.kind == "servicenow-ire":
        from cmdb_graph.connectors.targets.servicenow_ire import ServiceNowIRE

        return ServiceNowIRE(name, config, mapping, progress=progress)
    from cmdb_graph.connectors.targets.jsm_import import JSMAssetsImport

    return JSMAssetsImport(name, config, mapping, progress=progress)


def push(store: GraphStore, name: str, config: TargetConfig, *, state_dir: Path,
         dry_run: bool = False, progress: Progress | None = None) -> PushResult:
    """Push what changed to one target (see the module docstring).

    Raises
    ------
    ConfigurationError
        The mapping file or the state file cannot be read.
    ConnectorError
        The target cannot be reached or refused the credentials; the state is unchanged, so
        the next push sends the same again.
    """
    mapping = PushMapping.load(config.mapping)
    state = PushState.load(state_dir / f"push-{name}.json")
    changed, head = _changed(store, state)
    result = PushResult(name, dry_run, full_compare=changed is None)
    wanted = None if changed is None else sorted(changed | state.pending)
    cis = (list(iter_cis(store)) if wanted is None
           else list(store.get_cis(wanted).values()))
    items: dict[str, Item] = {}
    for ci in cis:
        cls = mapping.target_class(ci)
        if cls is None or ci.duplicate_of:
            result.unmapped += 1
            continue
        item = Item(ci, cls, mapping.values_of(ci))
        if state.digests.get(ci.ci_id) == item.digest and ci.ci_id not in state.pending:
            result.unchanged += 1
            continue
        items[ci.ci_id] = item
    links = [lk for lk in _links(store, mapping, wanted) if lk.key not in state.links]
    ends = {e for lk in links for e in (lk.source, lk.target)} - set(items)
    context = {ci.ci_id: Item(ci, cls, mapping.values_of(ci))
               for ci in store.get_cis(sorted(ends)).values()
               if (cls := mapping.target_class(ci)) is not None}
    links = [lk for lk in links if {lk.source, lk.target} <= set(items) | set(context)]
    if progress is not None:
        progress(name, f"{len(items)} CIs and {len(links)} relationships to send "
                       f"({result.unchanged} unchanged)")
    if dry_run:
        result.sent = [f"{i.target_class} {i.ci.name} ({i.ci.ci_id})" for i in items.values()]
        result.links_sent = [f"{lk.source} {lk.target_type} {lk.target}" for lk in links]
        return result
    if items or links:
        _send(_target_for(name, config, mapping, progress), items, links, context, state,
              result)
    state.cursor = head
    state.save()
    return result


def _send(target: Target, items: dict[str, Item], links: list[Link],
          context: Mapping[str, Item], state: PushState, result: PushResult) -> None:
    """CIs in batches, then the relationships in batches with their ends as context; record
    what the target accepted and report what it refused."""
    size = target.config.batch_size
    keys = list(items)
    try:
        for start in range(0, len(keys), size):
            batch = [items[k] for k in keys[start:start + size]]
            outcome = target.send(batch, [], {})
            for item in batch:
                if item.ci.ci_id in outcome.accepted:
                    state.digests[item.ci.ci_id] = item.digest
                    state.pending.discard(item.ci.ci_id)
                    result.sent.append(item.ci.ci_id)
                else:
                    state.pending.add(item.ci.ci_id)
            result.rejected.extend(outcome.rejected)
        known = {**context, **items}
        for start in range(0, len(links), size):
            chunk = links[start:start + size]
            ends = {e: known[e] for lk in chunk for e in (lk.source, lk.target)}
            outcome = target.send([], chunk, ends)
            for lk in chunk:
                if lk.key in outcome.accepted:
                    state.links.add(lk.key)
                    result.links_sent.append(lk.key)
            result.rejected.extend(outcome.rejected)
    finally:
        target.close()
