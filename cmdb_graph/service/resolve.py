"""What people type and read about CIs: a name or identifier to one CI, ids back to names.

Commands that take a CI accept what a person has at hand: a ``ci_id``, a name (whole or a
unique part of it) or any identifier :func:`~cmdb_graph.service.search.search` knows (FQDN,
host name, serial number, asset tag, cloud id, MAC address, native key ``source:key``, IP
address). :func:`resolve_ci` builds on that search and decides:

1. a ``ci_id`` is that CI;
2. otherwise the CIs that match exactly (an identifier, or the whole name, case-insensitively);
   a CI merged into another one of them (``duplicate_of``) gives way to its survivor;
3. when nothing matches exactly, the CIs whose name contains the text.

One CI in the first tier that has any is the answer; several raise
:class:`~cmdb_graph.errors.AmbiguousCIError` with the candidates; none,
:class:`~cmdb_graph.errors.CINotFoundError`.

The other direction, for what people read: :func:`ci_names` (ids to names), :func:`ids_in`
and :func:`with_names` (the ids in a sentence, and the sentence with names instead) and
:func:`support_contact` (a support group's name and how to reach it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from cmdb_graph.errors import AmbiguousCIError, CINotFoundError, NotFoundError
from cmdb_graph.model import Person, SupportGroup
from cmdb_graph.service.search import SearchHit, search
from cmdb_graph.store.base import GraphStore

__all__ = ["GroupContact", "ci_names", "ids_in", "resolve_ci", "support_contact",
           "with_names"]

#: Candidates an ambiguous answer lists at most.
MAX_CANDIDATES = 20


def resolve_ci(
    store: GraphStore,
    text: str,
    *,
    graph: Callable[[], nx.MultiDiGraph] | None = None,
    max_candidates: int = MAX_CANDIDATES,
) -> SearchHit:
    """The one CI that ``text`` names.

    Parameters
    ----------
    store : GraphStore
        Where the CIs live.
    text : str
        A ``ci_id``, a name or a part of one, or an identifier (surrounding blanks ignored).
    graph : callable, optional
        Returns the whole dependency graph; IP addresses are looked up in it (see
        :func:`~cmdb_graph.service.search.search`). Without it an IP address matches nothing.
    max_candidates : int
        At most this many candidates in an :class:`AmbiguousCIError`.

    Returns
    -------
    SearchHit
        The CI, the field that matched and its value (``name`` with the whole name for a
        partial match).

    Raises
    ------
    CINotFoundError
        No CI matches ``text`` (or it is blank).
    AmbiguousCIError
        Several CIs match equally well; ``candidates`` lists them, best first.

    Examples
    --------
    >>> from cmdb_graph.model import ConfigurationItem
    >>> from cmdb_graph.store.base import WriteBatch
    >>> from cmdb_graph.store.memory import MemoryStore
    >>> store = MemoryStore()
    >>> store.apply(WriteBatch(nodes=[
    ...     ConfigurationItem(ci_id="ci-1", name="default/redis-cart", ci_class="Container"),
    ...     ConfigurationItem(ci_id="ci-2", name="default/cartservice", ci_class="Container"),
    ... ]))
    >>> resolve_ci(store, "redis-cart").ci.ci_id
    'ci-1'
    >>> resolve_ci(store, "cart")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cmdb_graph.errors.AmbiguousCIError: 'cart' matches 2 CIs: ...
    """
    needle = text.strip()
    if not needle:
        raise CINotFoundError("an empty name names no CI")
    direct = store.get_cis([needle]).get(needle)
    if direct is not None:
        return SearchHit(direct, "ci_id", needle)
    found = search(store, needle, limit=max_candidates + 1, graph=graph)
    low = needle.lower()
    exact = [h for h in found.hits if h.matched_on != "name" or h.value.lower() == low]
    tier = exact or list(found.hits)
    more = len(tier) > max_candidates or (found.truncated and len(tier) == len(found.hits))
    tier = _survivors(tier[:max_candidates])
    if not tier:
        raise CINotFoundError(f"no CI matches {needle!r} (by ci_id, name or identifier)")
    if len(tier) == 1 and not more:
        return tier[0]
    raise AmbiguousCIError(needle, tuple(tier), truncated=more)


def _survivors(hits: Sequence[SearchHit]) -> list[SearchHit]:
    """``hits`` without the CIs merged into another of them."""
    ids = {h.ci.ci_id for h in hits}
    return [h for h in hits if h.ci.duplicate_of is None or h.ci.duplicate_of not in ids]


def ci_names(store: GraphStore, ci_ids: Iterable[str]) -> dict[str, str]:
    """``ci_id`` -> name of each of ``ci_ids`` that exists (one store lookup)."""
    return {ci_id: ci.name for ci_id, ci in store.get_cis(sorted(set(ci_ids))).items()}


def ids_in(text: str) -> set[str]:
    """The strings of ``text`` that may be ids: each run of letters, digits and ``_.:/@-``,
    and its parts around ``->`` and ``:``, without trailing punctuation.

    Examples
    --------
    >>> sorted(ids_in("DEPENDS_ON:ci-1->ci-2, 'web01'"))
    ['DEPENDS_ON', 'DEPENDS_ON:ci-1', 'ci-1', 'ci-2', 'web01']
    """
    found: set[str] = set()
    for token in _TOKEN.findall(text):
        for part in (token, *re.split(r"->|:", token)):
            part = part.rstrip(".:/-")
            if part:
                found.add(part)
    return found


_TOKEN = re.compile(r"[\w.:/@-]+")


def with_names(text: str, names: Mapping[str, str]) -> str:
    """``text`` with every id of ``names`` that stands alone in it replaced by its name.

    ``names`` may be large (every CI of the estate): only the strings :func:`ids_in` finds in
    ``text`` are looked up. An id stands alone when no letter, digit or ``_`` touches it, nor
    a ``-`` that joins it to one (``ci-1`` is replaced in ``ci-1 -> ci-2`` and
    ``DEPENDS_ON:ci-1->ci-2``, not in ``ci-12`` or ``ci-1-b``).

    Examples
    --------
    >>> with_names("ci-1 has no support group; routed via ci-1 -> ci-12",
    ...            {"ci-1": "web01", "ci-12": "esx07"})
    'web01 has no support group; routed via web01 -> esx07'
    """
    keys = [k for k in ids_in(text) if k in names]
    if not keys:
        return text
    alternatives = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?<!\w-)(?:{alternatives})(?!\w)(?!-\w)")
    return pattern.sub(lambda m: names[m.group(0)], text)


@dataclass(frozen=True, slots=True)
class GroupContact:
    """A support group as people read it.

    Attributes
    ----------
    group_id : str
        Its key.
    name : str
        Its name (the key when the group is not recorded).
    email : str or None
        The group's address.
    on_call, manager : str or None
        ``"Name <email>"`` (or the name alone) of the person on call and of the manager.
    """

    group_id: str
    name: str
    email: str | None = None
    on_call: str | None = None
    manager: str | None = None

    def contact(self) -> str:
        """The ways to reach the group, joined for one line (empty when none is known)."""
        parts = [self.email or "", f"on call {self.on_call}" if self.on_call else "",
                 f"manager {self.manager}" if self.manager else ""]
        return ", ".join(p for p in parts if p)


def support_contact(store: GraphStore, group_id: str) -> GroupContact:
    """The name and contacts of the support group ``group_id``.

    A group that is not recorded as a node (a source may name groups it does not describe)
    comes back with its key as its name and no contact.
    """
    try:
        group = store.get_node("SupportGroup", group_id)
    except NotFoundError:
        return GroupContact(group_id=group_id, name=group_id)
    assert isinstance(group, SupportGroup)
    return GroupContact(group_id=group_id, name=group.name, email=group.email,
                        on_call=_person(store, group.on_call),
                        manager=_person(store, group.manager))


def _person(store: GraphStore, person_id: str | None) -> str | None:
    if person_id is None:
        return None
    try:
        person = store.get_node("Person", person_id)
    except NotFoundError:
        return person_id
    assert isinstance(person, Person)
    return f"{person.name} <{person.email}>" if person.email else person.name
