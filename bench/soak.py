"""The ``soak`` scenario: many clients reading and writing for minutes, then every acknowledged
write checked after a kill -9 of the server.

``python -m bench soak --store embedded --minutes 10 --clients 16`` (``--store neo4j``,
``--cis 2k``; ``--smoke`` for 2,000 CIs and 15 s) writes ``bench/results/soak-<store>-<minutes>m``
``.md`` and ``.json``.

What it does, against a real ``cmdb-graph serve`` process (see :mod:`bench.live`):

1. Writes the seeded synthetic estate and starts the server on it.
2. ``--clients`` clients, each one keep-alive HTTP connection, for ``--minutes``: each request is
   a read (half of them: change impact, neighbourhood or routing of a random CI, as in
   :mod:`bench.mixed`) or a write of one of four kinds:

   * ``create``: a new virtual machine by ``ciUpsert``. Clients ``2k`` and ``2k+1`` create the
     SAME hosts (same name and FQDN) as two data sources (own native keys): two imports of the
     same hosts at once, which must give each host one CI.
   * ``update``: a new description on a VM of the estate, by FQDN; each client updates only
     its own share of the VMs, so the last description it was acknowledged is the one to find.
   * ``incident``: ``incidentRecord`` of a new incident on a random VM.
   * ``change``: ``changeSchedule`` of a new change on a random VM.

   A write is *acknowledged* when its answer is the operation's payload type; anything else
   (transport error, HTTP status, ``UserError``) is counted as not acknowledged, with its
   message.
3. kill -9 of the server, a new server on the same store, and every acknowledged write is
   looked up through it: each created host (by its ``ci_id`` and, by FQDN, exactly one CI),
   each client's last description, each incident and change (listings, with their CI).
   *Lost* counts acknowledged writes not found; *duplicated* counts hosts with more than one CI.

Exit code 1 when a write was lost or duplicated (timings never fail the run; unacknowledged
writes are reported, not failed: a client may see a timeout for a write the server refused).
"""

from __future__ import annotations

import asyncio
import random
import signal
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.live import Estate, GqlClient, GqlError, ServeProcess, build_estate, log
from bench.mixed import READ_KINDS, Readers
from bench.report import machine, write_pair

__all__ = ["SoakOptions", "run_soak", "main", "WRITE_KINDS"]

#: The write kinds, in the report's order.
WRITE_KINDS = ("create", "update", "incident", "change")

UPSERT = """
mutation Upsert($input: CIUpsertInput!) {
  ciUpsert(input: $input) {
    __typename
    ... on CIUpsertPayload { cis { ciId fqdn description } }
    ... on UserError { code message }
  }
}
"""
INCIDENT = """
mutation Incident($input: IncidentInput!) {
  incidentRecord(input: $input) {
    __typename
    ... on IncidentRecordPayload { incident { incidentId ciIds } }
    ... on UserError { code message }
  }
}
"""
CHANGE = """
mutation Change($input: ChangeInput!) {
  changeSchedule(input: $input) {
    __typename
    ... on ChangeSchedulePayload { change { changeId ciIds } }
    ... on UserError { code message }
  }
}
"""
CI_BY_ID = "query Ci($id: ID!) { ci(ciId: $id) { ciId fqdn description } }"
CIS_BY_FQDN = ("query ByFqdn($fqdn: String!) { cisByIdentifier(identifiers: {fqdn: $fqdn}) "
               "{ ciId duplicateOf } }")
INCIDENTS = ("query Incidents($after: String) { incidents(first: 1000, after: $after) "
             "{ edges { node { incidentId ciIds } } pageInfo { hasNextPage endCursor } } }")
CHANGES = ("query Changes($after: String) { changes(first: 1000, after: $after) "
           "{ edges { node { changeId ciIds } } pageInfo { hasNextPage endCursor } } }")


@dataclass
class SoakOptions:
    """What to run (see the module docstring)."""

    store: str = "embedded"
    cis: int = 2_000
    seed: int = 42
    minutes: float = 10.0
    clients: int = 16
    #: Share of requests that are writes.
    write_share: float = 0.5
    out_dir: Path = Path(__file__).resolve().parent / "results"
    clear_neo4j: bool = False
    command: str = ""


@dataclass
class Ledger:
    """Every write tried and every one acknowledged, with what must be found afterwards."""

    tried: dict[str, int] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    reads: int = 0
    read_errors: list[str] = field(default_factory=list)
    #: fqdn -> the ci_ids the acknowledged creates of that host answered
    hosts: dict[str, set[str]] = field(default_factory=dict)
    #: ci_id -> the last description acknowledged (each CI updated by one client only)
    descriptions: dict[str, str] = field(default_factory=dict)
    incidents: dict[str, str] = field(default_factory=dict)
    changes: dict[str, str] = field(default_factory=dict)

    def error(self, kind: str, message: str) -> None:
        self.errors.setdefault(kind, []).append(message[:300])


class Client:
    """One soak client: its own random stream of reads and writes."""

    def __init__(self, i: int, estate: Estate, readers: Readers, ledger: Ledger,
                 opts: SoakOptions, tag: str) -> None:
        self.i, self.estate, self.readers, self.ledger, self.opts = i, estate, readers, ledger, opts
        self.tag = tag
        self.rng = random.Random(f"{opts.seed}-soak-{i}")
        self.own_vms = estate.vm_pool[i::opts.clients]
        self.n = 0
        self.hosts = 0

    def _write(self) -> tuple[str, str, dict[str, Any], Any]:
        """(kind, query, variables, check of the answer that records what to find)."""
        self.n += 1
        n, led = self.n, self.ledger
        kind = self.rng.choice(WRITE_KINDS if self.own_vms else ("create", "incident", "change"))
        if kind == "create":
            # the pair (2k, 2k+1) creates the same hosts, as two sources
            # (the k-th host of a pair's two clients is the same host)
            self.hosts += 1
            pair, source = self.i // 2, f"soak-source-{self.i % 2}"
            name = f"soak-{self.tag}-{pair:02d}-{self.hosts:06d}"
            fqdn = f"{name}.soak.example.net"
            cis = [{"ciClass": "VirtualMachine", "name": name,
                    "identifiers": {"fqdn": fqdn, "nativeKey": f"{source}-{name}"}}]

            def created(data: dict[str, Any]) -> None:
                got = _payload(data["ciUpsert"], "CIUpsertPayload")["cis"]
                led.hosts.setdefault(fqdn, set()).add(got[0]["ciId"])

            return kind, UPSERT, {"input": {"source": source, "cis": cis}}, created
        if kind == "update":
            ci, name, fqdn = self.rng.choice(self.own_vms)
            text = f"soak {self.tag} client {self.i} write {n}"
            cis = [{"ciClass": "VirtualMachine", "name": name, "identifiers": {"fqdn": fqdn},
                    "description": text}]

            def updated(data: dict[str, Any]) -> None:
                got = _payload(data["ciUpsert"], "CIUpsertPayload")["cis"]
                if got[0]["ciId"] != ci:
                    raise GqlError(f"update of {fqdn} went to {got[0]['ciId']}, not {ci}")
                led.descriptions[ci] = text

            return kind, UPSERT, {"input": {"source": "soak-updates", "priority": 90,
                                            "cis": cis}}, updated
        ci = self.rng.choice(self.estate.vms)
        if kind == "incident":
            inc = f"INC-S{self.tag}-{self.i:02d}-{n:06d}"
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

            def incident(data: dict[str, Any]) -> None:
                _payload(data["incidentRecord"], "IncidentRecordPayload")
                led.incidents[inc] = ci

            return kind, INCIDENT, {"input": {"incidentId": inc, "title": "soak", "openedAt": now,
                                              "priority": 3, "cis": [{"ciId": ci}]}}, incident
        chg = f"CHG-S{self.tag}-{self.i:02d}-{n:06d}"
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)

        def change(data: dict[str, Any]) -> None:
            _payload(data["changeSchedule"], "ChangeSchedulePayload")
            led.changes[chg] = ci

        return kind, CHANGE, {"input": {
            "changeId": chg, "title": "soak", "cis": [{"ciId": ci}],
            "windowStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "windowEnd": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}}, change

    async def run(self, url: str, stop_at: float) -> None:
        client = GqlClient(url, timeout=120.0)
        led = self.ledger
        try:
            while time.monotonic() < stop_at:
                if self.rng.random() >= self.opts.write_share:
                    kind = READ_KINDS[self.rng.randrange(len(READ_KINDS))]
                    query, variables = self.readers.ask(kind, self.rng)
                    try:
                        self.readers.check(kind, await client.query(query, variables))
                        led.reads += 1
                    except (GqlError, KeyError, TypeError) as exc:
                        led.read_errors.append(f"{kind}: {exc}"[:300])
                    continue
                kind, query, variables, record = self._write()
                led.tried[kind] = led.tried.get(kind, 0) + 1
                try:
                    record(await client.query(query, variables))
                except (GqlError, KeyError, TypeError, IndexError) as exc:
                    led.error(kind, f"{type(exc).__name__}: {exc}")
                    continue
                led.acked[kind] = led.acked.get(kind, 0) + 1
        finally:
            client.close()


def _payload(result: dict[str, Any], want: str) -> dict[str, Any]:
    if result.get("__typename") != want:
        raise GqlError(f"{result.get('__typename')}: {result.get('code')} "
                       f"{result.get('message')}")
    return result


async def _listing(client: GqlClient, query: str, field_name: str, key: str
                   ) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    after: str | None = None
    while True:
        page = (await client.query(query, {"after": after}))[field_name]
        for edge in page["edges"]:
            out[edge["node"][key]] = edge["node"]["ciIds"]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


async def _verify(url: str, led: Ledger) -> dict[str, Any]:
    """Look every acknowledged write up; lost and duplicated per kind, with examples."""
    lost: dict[str, list[str]] = {k: [] for k in WRITE_KINDS}
    duplicated: list[str] = []
    todo: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
    for fqdn, ids in led.hosts.items():
        todo.put_nowait(("create", fqdn, ids))
    for ci, text in led.descriptions.items():
        todo.put_nowait(("update", ci, text))

    async def worker() -> None:
        client = GqlClient(url, timeout=120.0)
        try:
            while not todo.empty():
                kind, key, want = todo.get_nowait()
                if kind == "create":
                    if len(want) > 1:
                        duplicated.append(f"{key}: answered {sorted(want)}")
                    found = (await client.query(CIS_BY_FQDN, {"fqdn": key}))["cisByIdentifier"]
                    live = [c["ciId"] for c in found if not c["duplicateOf"]]
                    if len(live) > 1:
                        duplicated.append(f"{key}: {sorted(live)}")
                    for ci in want:
                        got = (await client.query(CI_BY_ID, {"id": ci}))["ci"]
                        if got is None or (got["fqdn"] or "").lower() != key:
                            lost["create"].append(f"{key} ({ci}): {got}")
                else:
                    got = (await client.query(CI_BY_ID, {"id": key}))["ci"]
                    if got is None or got["description"] != want:
                        lost["update"].append(f"{key}: {want!r} != {got}")
        finally:
            client.close()

    await asyncio.gather(*(worker() for _ in range(4)))
    client = GqlClient(url, timeout=300.0)
    try:
        incidents = await _listing(client, INCIDENTS, "incidents", "incidentId")
        changes = await _listing(client, CHANGES, "changes", "changeId")
    finally:
        client.close()
    lost["incident"] = [i for i, ci in led.incidents.items() if incidents.get(i) != [ci]]
    lost["change"] = [c for c, ci in led.changes.items() if changes.get(c) != [ci]]
    return {"lost": {k: len(v) for k, v in lost.items()},
            "lost_examples": [x for v in lost.values() for x in v[:3]],
            "duplicated": len(duplicated), "duplicated_examples": duplicated[:5],
            "checked": {"create": len(led.hosts),
                        "update": len(led.descriptions), "incident": len(led.incidents),
                        "change": len(led.changes)}}


def run_soak(opts: SoakOptions) -> tuple[dict[str, Any], bool]:
    """Run the scenario; returns the results and whether nothing was lost or duplicated."""
    res: dict[str, Any] = {
        "scenario": "soak", "store": opts.store, "cis": opts.cis, "seed": opts.seed,
        "command": opts.command, "machine": machine(),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": {"clients": opts.clients, "minutes": opts.minutes,
                   "write_share": opts.write_share},
    }
    led = Ledger()
    tag = format(int(time.time()), "x")
    with tempfile.TemporaryDirectory(prefix="cmdb-bench-soak-") as tmp:
        estate = build_estate(opts.store, opts.cis, opts.seed, Path(tmp),
                              clear_neo4j=opts.clear_neo4j)
        try:
            server = ServeProcess(estate.env, Path(tmp) / "serve.log")
            try:
                readers = Readers(estate)
                log(f"soak: {opts.clients} clients for {opts.minutes:g} min")
                t0 = time.monotonic()
                stop_at = t0 + opts.minutes * 60.0

                async def everyone() -> None:
                    await asyncio.gather(*(
                        Client(i, estate, readers, led, opts, tag).run(server.url, stop_at)
                        for i in range(opts.clients)))

                asyncio.run(everyone())
                res["wall_s"] = time.monotonic() - t0
                log("soak: kill -9 of the server, a new one on the same store")
                server.proc.send_signal(signal.SIGKILL)
                server.proc.wait()
            finally:
                server.stop()
            again = ServeProcess(estate.env, Path(tmp) / "serve-again.log")
            try:
                log("soak: checking every acknowledged write through the new server")
                res["verify"] = asyncio.run(_verify(again.url, led))
            finally:
                again.stop()
        finally:
            estate.close()
    res["writes"] = {
        "tried": {k: led.tried.get(k, 0) for k in WRITE_KINDS},
        "acknowledged": {k: led.acked.get(k, 0) for k in WRITE_KINDS},
        "not_acknowledged": {k: len(led.errors.get(k, [])) for k in WRITE_KINDS},
        "first_errors": [e for k in WRITE_KINDS for e in led.errors.get(k, [])[:2]],
    }
    res["reads"] = {"ok": led.reads, "errors": len(led.read_errors),
                    "first_errors": led.read_errors[:3]}
    v = res["verify"]
    ok = sum(v["lost"].values()) == 0 and v["duplicated"] == 0
    res["ok"] = ok
    return res, ok


def markdown(res: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    w, v = res["writes"], res["verify"]
    lines = [
        f"# soak: {res['store']} store, {res['config']['clients']} clients, "
        f"{res['config']['minutes']:g} min",
        "",
        f"`{res['command']}` on {res['started_at']}; estate {res['cis']:,} CIs; "
        f"{res['wall_s']:.0f} s of load, then kill -9 of the server and every acknowledged "
        "write looked up through a new server on the same store.",
        "",
        "| write | tried | acknowledged | not acknowledged | checked | lost |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k in WRITE_KINDS:
        lines.append(f"| {k} | {w['tried'][k]} | {w['acknowledged'][k]} | "
                     f"{w['not_acknowledged'][k]} | {v['checked'][k]} | {v['lost'][k]} |")
    lines += [
        "",
        f"Hosts created by two sources at once with more than one CI: {v['duplicated']}. "
        f"Reads: {res['reads']['ok']} answered, {res['reads']['errors']} errors.",
        "",
        "`checked` counts what must be found: each distinct host created (by one or both "
        "sources of a pair of clients; one CI each, as every create of it answered), the last "
        "acknowledged description of each updated CI, every incident and change.",
    ]
    examples = v["lost_examples"] + v["duplicated_examples"] + w["first_errors"]
    if examples:
        lines += ["", "First problems:", "", *[f"- `{e}`" for e in examples[:10]]]
    return "\n".join(lines) + "\n"


def main(opts: SoakOptions) -> int:
    """Run, write the results, exit 1 when an acknowledged write was lost or duplicated."""
    res, ok = run_soak(opts)
    stem = f"soak-{opts.store}-{opts.minutes:g}m"
    md, js = write_pair(opts.out_dir, stem, markdown(res), res)
    log(f"soak: wrote {md} and {js}; tried {sum(res['writes']['tried'].values())}, "
        f"acknowledged {sum(res['writes']['acknowledged'].values())}, lost "
        f"{sum(res['verify']['lost'].values())}, duplicated {res['verify']['duplicated']}")
    return 0 if ok else 1
