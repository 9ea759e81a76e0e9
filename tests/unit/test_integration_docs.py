"""The ITSM integration guides (docs/integrations/*.md) cannot drift from the GraphQL schema.

Conventions the guides follow, checked here:

- every fenced block with language ``graphql`` is a whole GraphQL document that parses and
  validates against the schema built by :func:`cmdb_graph.api.schema.build_schema`;
- every fenced block with language ``json`` is valid JSON;
- a ``json`` block whose nearest heading above it contains the word "Request" is a GraphQL
  request body: an object with ``query`` and ``variables``. ``query`` is either the document
  itself or a reference ``"@graphql/operations/<Name>.graphql"`` to a documented operation
  (the tool sends that file's text). The document must validate against the schema,
  ``operationName`` (if given) must name an operation of it, every key of ``variables`` must be
  declared by the operation, and the values must coerce to the declared types (required
  variables present, enums and scalars well-formed) exactly as the server would coerce them;
- every guide except the index holds at least one such request;
- dotted field paths in the prose (`routing.supportGroup.name`, `cis[].identifiers.nativeKey`,
  `data.incidentRecord.__typename`) and the input / payload type names it mentions exist in the
  schema;
- the ServiceNow change walkthrough (CI delta, change record, impact, conflicts) runs against an
  embedded store, which keeps the guides' CI-reference convention (native keys of data source
  ``itsm``) honest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from cmdb_graph.api.schema import build_schema

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "integrations"
OPERATIONS = REPO / "graphql" / "operations"
REF_PREFIX = "@graphql/operations/"

_FENCE = re.compile(r"^```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a guide."""

    path: Path
    line: int
    lang: str
    heading: str
    text: str

    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def _blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    headings = [(m.start(), m.group(1)) for m in _HEADING.finditer(text)]
    found: list[Block] = []
    for m in _FENCE.finditer(text):
        above = [h for pos, h in headings if pos < m.start()]
        found.append(Block(
            path=path, line=text.count("\n", 0, m.start()) + 1, lang=m.group(1).lower(),
            heading=above[-1] if above else "", text=m.group(2),
        ))
    return found


def _guides() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _all_blocks() -> list[Block]:
    return [b for p in _guides() for b in _blocks(p)]


def _is_request(block: Block) -> bool:
    return block.lang == "json" and "request" in block.heading.lower()


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    s: GraphQLSchema = build_schema()._schema
    return s


def _validated(schema: GraphQLSchema, source: str, where: str) -> DocumentNode:
    doc = parse(source)
    errors = validate(schema, doc)
    assert not errors, f"{where}: " + "; ".join(e.message for e in errors)
    return doc


def _operation(doc: DocumentNode, name: str | None, where: str) -> OperationDefinitionNode:
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        assert len(ops) == 1, f"{where}: several operations and no operationName"
        return ops[0]
    named = [o for o in ops if o.name is not None and o.name.value == name]
    assert named, f"{where}: operationName {name!r} is not an operation of the document"
    return named[0]


def _query_text(query: str, where: str) -> str:
    if query.startswith(REF_PREFIX):
        path = OPERATIONS / query[len(REF_PREFIX):]
        assert path.is_file(), f"{where}: no such operation file {query!r}"
        return path.read_text(encoding="utf-8")
    return query


def test_the_guides_exist() -> None:
    # Arrange
    names = {p.name for p in _guides()}

    # Act
    missing = {"README.md", "servicenow.md", "jira-service-management.md", "zendesk.md",
               "topdesk.md", "manageengine-servicedesk-plus.md", "bmc-helix-itsm.md",
               "ivanti-neurons-itsm.md"} - names

    # Assert
    assert not missing, f"missing guides: {sorted(missing)}"


@pytest.mark.parametrize("block", [b for b in _all_blocks() if b.lang == "graphql"],
                         ids=lambda b: b.where())
def test_graphql_blocks_validate_against_the_schema(schema: GraphQLSchema, block: Block) -> None:
    # Act
    doc = _validated(schema, block.text, block.where())

    # Assert
    assert any(isinstance(d, OperationDefinitionNode) for d in doc.definitions), block.where()


@pytest.mark.parametrize("block", [b for b in _all_blocks() if b.lang == "json"],
                         ids=lambda b: b.where())
def test_json_blocks_are_valid_json(block: Block) -> None:
    # Act
    value = json.loads(block.text)

    # Assert
    assert value is not None, block.where()


@pytest.mark.parametrize("block", [b for b in _all_blocks() if _is_request(b)],
                         ids=lambda b: b.where())
def test_request_bodies_validate_with_their_variables(schema: GraphQLSchema, block: Block) -> None:
    # Arrange
    where = block.where()
    body: Any = json.loads(block.text)
    assert isinstance(body, dict), f"{where}: a request body is a JSON object"
    assert set(body) <= {"query", "variables", "operationName"}, f"{where}: unknown keys"
    assert isinstance(body.get("query"), str), f"{where}: 'query' must be a string"
    variables = body.get("variables", {})
    assert isinstance(variables, dict), f"{where}: 'variables' must be an object"

    # Act
    doc = _validated(schema, _query_text(body["query"], where), where)
    op = _operation(doc, body.get("operationName"), where)
    definitions = op.variable_definitions or ()
    declared = {v.variable.name.value for v in definitions}
    coerced = get_variable_values(schema, definitions, variables)

    # Assert
    assert set(variables) <= declared, (
        f"{where}: variables not declared by the operation: {sorted(set(variables) - declared)}"
    )
    errors = coerced if isinstance(coerced, list) else []  # errors, or the coerced values
    assert not errors, f"{where}: " + "; ".join(e.message for e in errors)


@pytest.mark.parametrize("path", [p for p in _guides() if p.name != "README.md"],
                         ids=lambda p: p.name)
def test_every_guide_shows_a_request(path: Path) -> None:
    # Act
    requests = [b for b in _blocks(path) if _is_request(b)]

    # Assert
    assert requests, f"{path.name}: no json block under a 'Request' heading"


def test_operation_references_in_the_index_exist() -> None:
    # Arrange
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    known = {p.stem for p in OPERATIONS.glob("*.graphql")}

    # Act
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", index))
    operations = {n for n in named if n in known}
    unknown_refs = set(re.findall(r"graphql/operations/([A-Za-z]+)\.graphql", index)) - known

    # Assert
    assert operations >= {"ChangeImpact", "ChangeConflicts", "ScheduleChange", "RouteIncident",
                          "RecordIncident", "ProbableCause", "OrphanReport", "DiscoveryUpsert"}
    assert not unknown_refs, f"README links unknown operations: {sorted(unknown_refs)}"


def _post(app: Any, body: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    import httpx

    async def send() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            resp = await client.post("/graphql", json=body)
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()
        return result

    return asyncio.run(send())


def test_the_servicenow_change_walkthrough_runs_against_a_store(tmp_path: Path) -> None:
    """The guide's CI delta, change record, impact and conflicts requests, sent in order to a
    real (embedded) store, all succeed: the `itsm` native-key convention the guides rely on
    holds."""
    # Arrange
    from cmdb_graph.api.app import create_app
    from cmdb_graph.settings import Settings
    from cmdb_graph.store.factory import open_store

    settings = Settings(store="memory", database_path=tmp_path / "estate.db")
    store = open_store(settings)
    app = create_app(settings, store)
    walkthrough = ("DiscoveryUpsert", "ScheduleChange", "ChangeImpact", "ChangeConflicts")
    requests: list[tuple[str, dict[str, Any]]] = []
    for block in _blocks(DOCS / "servicenow.md"):
        if _is_request(block):
            body = json.loads(block.text)
            name = Path(body["query"]).stem
            if name in walkthrough:
                requests.append((name, {**body, "query": _query_text(body["query"], "")}))
    seed = {"query": _query_text(REF_PREFIX + "DiscoveryUpsert.graphql", ""), "variables": {
        "input": {"source": "itsm", "cis": [{
            "ciClass": "Application", "name": "postgresql",
            "identifiers": {"nativeKey": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"}}]}}}

    # Act
    _post(app, seed)
    answers = [(name, _post(app, body)) for name, body in requests]
    store.close()

    # Assert
    assert [n for n, _ in answers] == list(walkthrough)
    for name, answer in answers:
        assert "errors" not in answer, f"{name}: {answer['errors']}"
        result = next(iter(answer["data"].values()))
        assert result["__typename"] != "UserError", f"{name}: {result}"
    scheduled = answers[1][1]["data"]["changeSchedule"]["change"]
    assert len(scheduled["ciIds"]) == 2


#: Where a dotted field path in the guides' prose starts: the GraphQL type of its first part.
_PATH_ROOTS = {
    "routing": "Routing", "incident": "Incident", "change": "ChangeRequest",
    "summary": "ImpactSummary", "run": "ImportRun", "conflicts": "ChangeConflict",
    "identifiers": "IdentifiersInput", "cis": "CIRefInput",
}
_PATH = re.compile(r"`([a-z][A-Za-z]*(?:\[\])?(?:\.[A-Za-z_]+(?:\[\])?)+)`")
_TYPE_NAME = re.compile(r"`([A-Z][A-Za-z]+(?:Payload|Input|Result))`")


def _resolve_path(schema: GraphQLSchema, path: str) -> str | None:
    """``None`` when ``path`` names fields that exist, else the first missing part."""
    from graphql import get_named_type

    parts = [p.removesuffix("[]") for p in path.split(".")]
    if parts[0] == "data":
        mutation = schema.mutation_type
        fields = {**schema.query_type.fields, **(mutation.fields if mutation else {})}  # type: ignore[union-attr]
        if parts[1] not in fields:
            return parts[1]
        current: Any = get_named_type(fields[parts[1]].type)
        rest = parts[2:]
    else:
        current = schema.get_type(_PATH_ROOTS[parts[0]])
        rest = parts[1:]
    for part in rest:
        if part == "__typename":
            continue
        if hasattr(current, "types"):  # a union: the field of any member
            members = [m for m in current.types if part in m.fields]
            if not members:
                return part
            current = get_named_type(members[0].fields[part].type)
            continue
        fields = getattr(current, "fields", {})
        if part not in fields:
            return part
        current = get_named_type(fields[part].type)
    return None


@pytest.mark.parametrize("path", _guides(), ids=lambda p: p.name)
def test_field_paths_and_type_names_in_the_prose_exist(schema: GraphQLSchema, path: Path) -> None:
    # Arrange
    text = path.read_text(encoding="utf-8")
    paths = {p for p in _PATH.findall(text)
             if p.split(".")[0].removesuffix("[]") in {*_PATH_ROOTS, "data"}}
    types = set(_TYPE_NAME.findall(text))

    # Act
    missing = {p: m for p in sorted(paths) if (m := _resolve_path(schema, p)) is not None}
    unknown_types = {t for t in types if schema.get_type(t) is None}

    # Assert
    assert not missing, f"{path.name}: field paths that the schema lacks: {missing}"
    assert not unknown_types, f"{path.name}: unknown GraphQL types: {sorted(unknown_types)}"


@pytest.mark.parametrize("path", [p for p in _guides() if p.name != "README.md"],
                         ids=lambda p: p.name)
def test_every_guide_covers_auth_and_errors(path: Path) -> None:
    # Arrange
    text = path.read_text(encoding="utf-8")

    # Act
    headings = [h.lower() for h in _HEADING.findall(text)]

    # Assert
    assert "cmdb-graph apikey" in text, f"{path.name}: no API key setup"
    assert "Bearer" in text, f"{path.name}: does not say how the key is sent"
    assert any(h.startswith("errors") for h in headings), f"{path.name}: no errors section"
    assert "UserError" in text, f"{path.name}: does not explain typed UserError results"


# -- issue 18: corrections checked against the vendors' documentation, and the connectors ----
def test_servicenow_guide_has_the_corrections() -> None:
    text = (DOCS / "servicenow.md").read_text(encoding="utf-8")
    for needed in ("`proposed`, `accepted`, `rejected`, `canceled`", "haveError()",
                   "getErrorCode()", "Canceled (8) has no counterpart in `IncidentState`",
                   "`data: null`", "named(impact.summary.mostCriticalService)",
                   "map(named)", "if (!current.start_date.getValue()"):
        assert needed in text, needed
    assert "1 Candidate, 3 Accepted" not in text
    # execute() is wrapped: the call sits inside a try block
    assert re.search(r"try \{\s*resp = rm\.execute\(\);", text)


def test_zendesk_guide_maps_labels_and_prefixes_the_id() -> None:
    text = (DOCS / "zendesk.md").read_text(encoding="utf-8")
    assert '"ZD-{{ticket.id}}"' in text
    assert "fails `Int` coercion" in text and "fails enum coercion" in text


def test_jsm_guide_names_the_plan() -> None:
    text = (DOCS / "jira-service-management.md").read_text(encoding="utf-8")
    assert "Premium and Enterprise" in text


def test_connectors_doc_has_a_section_with_permissions_per_source_and_target() -> None:
    from cmdb_graph.connectors.config import CONNECTOR_KINDS, TARGET_KINDS

    text = (REPO / "docs" / "connectors.md").read_text(encoding="utf-8")
    sections = re.split(r"\n### ", text)[1:]
    kinds = {re.search(r"\(`kind: ([a-z0-9-]+)`\)", s.splitlines()[0]).group(1)  # type: ignore[union-attr]
             for s in sections}
    assert kinds == set(CONNECTOR_KINDS) | set(TARGET_KINDS)
    assert all("**Permissions**" in s for s in sections)
    assert "OnCalendar=" in text and "kind: CronJob" in text
