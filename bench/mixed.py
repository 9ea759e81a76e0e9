"""The ``mixed`` scenario: 16 readers while one writer streams discovery deltas and ITSM records.

``python -m bench mixed --store embedded --cis 100k`` (``--store neo4j``, ``--cis 1m``,
``--seconds 60``; ``--smoke`` for 2,000 CIs and 5 s) writes
``bench/results/mixed-<store>-<cis>.md`` and ``.json``.

What it does, against a real ``cmdb-graph serve`` process (see :mod:`bench.live`):

1. Writes the seeded synthetic estate and starts the server on it; times the start and the
   first question of each kind (the server builds its caches then).
2. *Without writes*: ``--clients`` (16) readers, each one keep-alive HTTP connection, ask in
   random order for ``--seconds``: change impact of a random VM or hypervisor (the documented
   ``ChangeImpact`` operation), the neighbourhood of a random CI (depth 2, at most 100 CIs)
   and incident routing of a random CI (``RouteIncident``). Every answer is decoded and its
   type checked; anything else counts as an error.
3. *Under the stream*: the same readers for ``--seconds`` while ONE writer sends, on a fixed
   schedule, discovery deltas (``--write-rate`` batches a second of ``--batch-cis`` CIs through
   the documented ``DiscoveryUpsert`` operation: 80% updates of existing VMs found by FQDN,
   20% new VMs each ``HOSTED_ON`` a random hypervisor) and ITSM records (``--itsm-rate`` a
   second, alternately ``RecordIncident`` and ``ScheduleChange`` on random VMs). A writer that
   falls behind its schedule does not burst to catch up; the rate it reached is reported. A
   kind not yet sent when the time is up is sent once then (short runs on slow servers).
4. *Read-your-writes*: after each write the writer asks one question that must show it, and
   counts a violation when it does not: after a discovery batch, the change impact of the
   hypervisor of one new VM must contain that VM and an updated VM must carry the new
   description; after an incident, ``probableCause`` on its CI must list it among the CI's
   open incidents; after a change, ``changeImpact(changeId)`` must answer with its CI.

Reported: read p50/p95/p99 per phase (all reads and per kind) and their ratio (target: p95
under the stream within 2x of p95 without it), errors (target: none), write latency p50/p95
per kind, the question after each write, read-your-writes violations (target: none), the
server's start, first questions and resident memory. Exit code 1 when any error or
violation was counted (timings never fail the run).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.live import (
    Estate,
    GqlClient,
    GqlError,
    ServeProcess,
    build_estate,
    latency_stats,
    log,
    size_label,
)
from bench.report import write_pair

__all__ = ["MixedOptions", "run_mixed", "READ_KINDS"]

OPS = Path(__file__).resolve().parents[1] / "graphql" / "operations"

#: The readers' questions, in the report's order.
READ_KINDS = ("impact", "neighbourhood", "routing")

NEIGHBOURHOOD = """
query Neighbourhood($ciId: ID!) {
  neighbourhood(ciId: $ciId, depth: 2, maxNodes: 100) {
    __typename
    ... on Neighbourhood { totalNodes nodes { ciId distance } edges { source target relType } }
    ... on UserError { code message }
  }
}
"""

#: After a discovery batch: a new VM under its hypervisor's impact, an updated description.
SEEN_DISCOVERY = """
query SeenDiscovery($hypervisor: ID!, $updated: ID!) {
  impact: changeImpact(ciIds: [$hypervisor], pathsPerCi: 0) {
    __typename
    ... on ChangeImpact { impacted { ciId } }
    ... on UserError { code message }
  }
  updated: ci(ciId: $updated) { ciId description }
}
"""

#: After an incident: listed among its CI's open incidents.
SEEN_INCIDENT = """
query SeenIncident($ciId: ID!) {
  probableCause(ciIds: [$ciId], maxCandidates: 100) {
    __typename
    ... on ProbableCauses { candidates { ciId openIncidents } }
    ... on UserError { code message }
  }
}
"""

#: After a change: its impact can be asked by change id, and names its CI.
SEEN_CHANGE = """
query SeenChange($changeId: String!) {
  changeImpact(changeId: $changeId, pathsPerCi: 0) {
    __typename
    ... on ChangeImpact { changed }
    ... on UserError { code message }
  }
}
"""

DISCOVERY_SOURCE = "bench-discovery"


def _op(name: str) -> str:
    return (OPS / f"{name}.graphql").read_text()


@dataclass
class MixedOptions:
    """What to run (see the module docstring)."""

    store: str = "embedded"
    cis: int = 100_000
    seed: int = 42
    seconds: float = 60.0
    clients: int = 16
    write_rate: float = 10.0
    batch_cis: int = 50
    new_share: float = 0.2
    itsm_rate: float = 2.0
    out_dir: Path = Path(__file__).resolve().parent / "results"
    clear_neo4j: bool = False
    command: str = ""
    subscribers: int = 0


@dataclass
class Tally:
    """Latencies (seconds) and errors per kind of request."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def ok(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def error(self, kind: str, message: str) -> None:
        self.errors.setdefault(kind, []).append(message)

    def n_errors(self) -> int:
        return sum(len(v) for v in self.errors.values())

    def summary(self, kinds: tuple[str, ...], wall: float) -> dict[str, Any]:
        every = [x for k in kinds for x in self.latencies.get(k, [])]
        return {
            "all": latency_stats(every),
            "kinds": {k: latency_stats(self.latencies.get(k, [])) for k in kinds},
            "errors": {k: len(self.errors.get(k, [])) for k in kinds},
            "first_errors": [e for k in kinds for e in self.errors.get(k, [])[:2]],
            "requests": len(every),
            "per_second": len(every) / wall if wall else 0.0,
            "wall_s": wall,
        }


class _Check:
    """Checks an answer's type; a wrong one is an error with the server's message."""

    @staticmethod
    def typename(result: dict[str, Any], want: str) -> dict[str, Any]:
        got = result.get("__typename")
        if got != want:
            raise GqlError(f"{got}: {result.get('code')} {result.get('message')}")
        return result


# -- readers --------------------------------------------------------------------------------
class Readers:
    """The reading clients' questions about random CIs."""

    def __init__(self, estate: Estate) -> None:
        self.estate = estate
        self.impact_seeds = estate.vms + estate.hypervisors
        self.impact = _op("ChangeImpact")
        self.route = _op("RouteIncident")

    def ask(self, kind: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
        """The query and variables of one question of ``kind``."""
        if kind == "impact":
            return self.impact, {"ciIds": [rng.choice(self.impact_seeds)]}
        if kind == "neighbourhood":
            return NEIGHBOURHOOD, {"ciId": rng.choice(self.estate.all_ids)}
        return self.route, {"ciId": rng.choice(self.estate.all_ids)}

    @staticmethod
    def check(kind: str, data: dict[str, Any]) -> None:
        """Raise :class:`GqlError` unless the answer has the expected type."""
        if kind == "impact":
            _Check.typename(data["changeImpact"], "ChangeImpact")
        elif kind == "neighbourhood":
            _Check.typename(data["neighbourhood"], "Neighbourhood")
        else:
            _Check.typename(data["routeIncident"], "Routing")

    async def run(self, url: str, clients: int, seconds: float, seed: int, tally: Tally) -> float:
        """``clients`` readers for ``seconds``; returns the wall time until the last answer."""
        stop_at = time.monotonic() + seconds

        async def one(i: int) -> None:
            rng = random.Random(f"{seed}-reader-{i}")
            client = GqlClient(url)
            try:
                while time.monotonic() < stop_at:
                    kind = READ_KINDS[rng.randrange(len(READ_KINDS))]
                    query, variables = self.ask(kind, rng)
                    t0 = time.perf_counter()
                    try:
                        self.check(kind, await client.query(query, variables))
                    except (GqlError, KeyError, TypeError) as exc:
                        tally.error(kind, f"{type(exc).__name__}: {exc}"[:300])
                        continue
                    tally.ok(kind, time.perf_counter() - t0)
            finally:
                client.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
        return time.perf_counter() - t0


# -- the writer -----------------------------------------------------------------------------
@dataclass
class WriterResult:
    """What the writer did."""

    writes: Tally = field(default_factory=Tally)
    questions: Tally = field(default_factory=Tally)
    checks: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[str]] = field(default_factory=dict)
    scheduled: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    created: int = 0
    updated: int = 0

    def violation(self, kind: str, message: str) -> None:
        self.violations.setdefault(kind, []).append(message)


class Writer:
    """One client streaming discovery deltas and ITSM records, checking each is visible."""

    def __init__(self, estate: Estate, opts: MixedOptions) -> None:
        self.estate = estate
        self.opts = opts
        self.rng = random.Random(f"{opts.seed}-writer")
        self.tag = format(int(time.time()), "x")
        self.discovery = _op("DiscoveryUpsert")
        self.incident = _op("RecordIncident")
        self.change = _op("ScheduleChange")
        self.counter = 0
        self.res = WriterResult()

    # each write: (kind, query, variables, check of the write's answer -> the question after it)
    def _discovery(self) -> tuple[str, dict[str, Any], Callable[[dict[str, Any]], Any]]:
        self.counter += 1
        k = self.counter
        n_new = max(1, round(self.opts.batch_cis * self.opts.new_share))
        n_upd = max(1, self.opts.batch_cis - n_new)
        updates = self.rng.sample(self.estate.vm_pool, min(n_upd, len(self.estate.vm_pool)))
        description = f"seen by {DISCOVERY_SOURCE} {self.tag} batch {k}"
        cis: list[dict[str, Any]] = [
            {"ciClass": "VirtualMachine", "name": name, "identifiers": {"fqdn": fqdn},
             "description": description}
            for _, name, fqdn in updates
        ]
        rels: list[dict[str, Any]] = []
        hosts: list[str] = []
        for j in range(n_new):
            name = f"vm-bench-{self.tag}-{k:06d}-{j:03d}"
            key = f"{self.tag}-{k}-{j}"
            host = self.rng.choice(self.estate.hypervisors)
            hosts.append(host)
            cis.append({"ciClass": "VirtualMachine", "name": name,
                        "identifiers": {"nativeKey": key, "fqdn": f"{name}.bench.example.net"},
                        "environment": "production", "operationalStatus": "OPERATIONAL"})
            rels.append({"relType": "HOSTED_ON", "source": {"identifiers": {"nativeKey": key}},
                         "target": {"ciId": host}})
        variables = {"input": {"source": DISCOVERY_SOURCE, "priority": 60, "cis": cis,
                               "relationships": rels}}
        upd_ids = [ci for ci, _, _ in updates]

        def after(data: dict[str, Any]) -> tuple[str, dict[str, Any], Callable[..., None]]:
            payload = _Check.typename(data["ciUpsert"], "CIUpsertPayload")
            got = [c["ciId"] for c in payload["cis"]]
            if got[: len(upd_ids)] != upd_ids:
                raise GqlError("discovery: updates were not identified as the existing VMs")
            if payload["run"]["skips"]:
                raise GqlError(f"discovery: skipped {payload['run']['skips'][:2]}")
            counts = payload["run"]["counts"]
            self.res.created += counts["created"]
            self.res.updated += counts["updated"]
            new_vm = got[len(upd_ids)]
            updated = upd_ids[0]

            def seen(answer: dict[str, Any]) -> None:
                impact = _Check.typename(answer["impact"], "ChangeImpact")
                if new_vm not in {c["ciId"] for c in impact["impacted"]}:
                    self.res.violation("discovery", f"{new_vm} not impacted by {hosts[0]}")
                if (answer["updated"] or {}).get("description") != description:
                    self.res.violation("discovery", f"{updated}: description "
                                       f"{(answer['updated'] or {}).get('description')!r}")

            return SEEN_DISCOVERY, {"hypervisor": hosts[0], "updated": updated}, seen

        return self.discovery, variables, after

    def _incident(self) -> tuple[str, dict[str, Any], Callable[[dict[str, Any]], Any]]:
        self.counter += 1
        inc = f"INC-B{self.tag}-{self.counter:06d}"
        ci = self.rng.choice(self.estate.vms)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        variables = {"input": {"incidentId": inc, "title": "bench: latency above 2 s",
                               "openedAt": now, "priority": 3, "cis": [{"ciId": ci}]}}

        def after(data: dict[str, Any]) -> tuple[str, dict[str, Any], Callable[..., None]]:
            payload = _Check.typename(data["incidentRecord"], "IncidentRecordPayload")
            if payload["incident"]["ciIds"] != [ci]:
                raise GqlError(f"incident: recorded on {payload['incident']['ciIds']}")

            def seen(answer: dict[str, Any]) -> None:
                result = _Check.typename(answer["probableCause"], "ProbableCauses")
                own = [c for c in result["candidates"] if c["ciId"] == ci]
                if not own or inc not in own[0]["openIncidents"]:
                    self.res.violation("incident", f"{inc} not open on {ci}")

            return SEEN_INCIDENT, {"ciId": ci}, seen

        return self.incident, variables, after

    def _change(self) -> tuple[str, dict[str, Any], Callable[[dict[str, Any]], Any]]:
        self.counter += 1
        chg = f"CHG-B{self.tag}-{self.counter:06d}"
        ci = self.rng.choice(self.estate.vms)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        variables = {"input": {
            "changeId": chg, "title": "bench: patch", "cis": [{"ciId": ci}],
            "windowStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "windowEnd": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }}

        def after(data: dict[str, Any]) -> tuple[str, dict[str, Any], Callable[..., None]]:
            _Check.typename(data["changeSchedule"], "ChangeSchedulePayload")

            def seen(answer: dict[str, Any]) -> None:
                result = answer["changeImpact"]
                if result.get("__typename") != "ChangeImpact" or result["changed"] != [ci]:
                    self.res.violation("change", f"{chg}: {str(result)[:200]}")

            return SEEN_CHANGE, {"changeId": chg}, seen

        return self.change, variables, after

    async def _one(self, client: GqlClient, kind: str) -> None:
        make = {"discovery": self._discovery, "incident": self._incident,
                "change": self._change}[kind]
        query, variables, after = make()
        t0 = time.perf_counter()
        try:
            data = await client.query(query, variables)
            question, qvars, seen = after(data)
        except (GqlError, KeyError, TypeError, IndexError) as exc:
            self.res.writes.error(kind, f"{type(exc).__name__}: {exc}"[:300])
            return
        self.res.writes.ok(kind, time.perf_counter() - t0)
        t0 = time.perf_counter()
        try:
            answer = await client.query(question, qvars)
            elapsed = time.perf_counter() - t0
            self.res.checks[kind] = self.res.checks.get(kind, 0) + 1
            seen(answer)
        except (GqlError, KeyError, TypeError, IndexError) as exc:
            self.res.questions.error(kind, f"{type(exc).__name__}: {exc}"[:300])
            return
        self.res.questions.ok(kind, elapsed)

    async def run(self, url: str, seconds: float) -> float:
        """Stream writes for ``seconds``; returns the wall time until the last check."""
        client = GqlClient(url)
        start = time.monotonic()
        stop_at = start + seconds
        rates = {"discovery": self.opts.write_rate, "itsm": self.opts.itsm_rate}
        due = {k: start + (0.5 / r if k == "itsm" else 0.0) for k, r in rates.items() if r > 0}
        itsm_turn = 0
        try:
            while due:
                key = min(due, key=due.__getitem__)
                at = due[key]
                if at >= stop_at:
                    break
                now = time.monotonic()
                if at > now:
                    await asyncio.sleep(at - now)
                elif now - at > 1.0 / rates[key]:
                    self.res.late[key] = self.res.late.get(key, 0) + 1
                if key == "itsm":
                    kind = ("incident", "change")[itsm_turn % 2]
                    itsm_turn += 1
                else:
                    kind = "discovery"
                self.res.scheduled[kind] = self.res.scheduled.get(kind, 0) + 1
                await self._one(client, kind)
                # the next one is due one interval later; a writer behind schedule does not
                # burst to catch up (it goes on from now)
                nxt = at + 1.0 / rates[key]
                due[key] = max(nxt, time.monotonic())
            # a short run on a slow server may end before every kind was sent once: send the
            # missing ones now, so that each kind's read-your-writes is checked at least once
            wanted = ["discovery"] if rates["discovery"] > 0 else []
            wanted += ["incident", "change"] if rates["itsm"] > 0 else []
            for kind in wanted:
                if kind not in self.res.scheduled:
                    self.res.scheduled[kind] = 1
                    await self._one(client, kind)
        finally:
            client.close()
        return time.monotonic() - start


# -- the run ---------------------------------------------------------------------------------
async def _warm(url: str, readers: Readers) -> dict[str, float]:
    """The first question of each kind (the server builds its caches), timed."""
    client = GqlClient(url, timeout=1800.0)
    rng = random.Random("warm")
    out: dict[str, float] = {}
    try:
        for kind in READ_KINDS:
            query, variables = readers.ask(kind, rng)
            t0 = time.perf_counter()
            readers.check(kind, await client.query(query, variables))
            out[kind] = time.perf_counter() - t0
    finally:
        client.close()
    return out


async def _sample_rss(server: ServeProcess, stop: asyncio.Event) -> None:
    while not stop.is_set():
        server.rss()
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def _phase(server: ServeProcess, readers: Readers, opts: MixedOptions,
                 writer: Writer | None, seed: int) -> tuple[Tally, float, float | None]:
    tally = Tally()
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(server, stop))
    tasks: list[Any] = [readers.run(server.url, opts.clients, opts.seconds, seed, tally)]
    if writer is not None:
        tasks.append(writer.run(server.url, opts.seconds))
    walls = await asyncio.gather(*tasks)
    stop.set()
    await sampler
    return tally, walls[0], (walls[1] if writer is not None else None)


SUBSCRIBE = """
mutation Subscribe($input: WebhookSubscribeInput!) {
  webhookSubscribe(input: $input) {
    __typename
    ... on UserError { code message }
  }
}
"""
POSITIONS = "{ webhookSubscriptions { name position deadLetters } }"


def _with_subscribers(server: ServeProcess, readers: Readers, opts: MixedOptions, tmp: Path
                      ) -> tuple[Tally, float, Writer, float, dict[str, Any]]:
    """Phase 3: ``opts.subscribers`` webhook receivers (a separate process on 127.0.0.1)
    subscribed to every event type through ``webhookSubscribe``, then the readers and a
    writer as in phase 2; then the time until every subscriber has been sent every event."""
    import subprocess
    import sys

    import httpx

    from bench.live import free_port
    from cmdb_graph.events import new_secret

    secret = new_secret()
    ports = [free_port() for _ in range(opts.subscribers)]
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.webhook_sink", "--secret", secret, *map(str, ports)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == b"ready"
        with httpx.Client(timeout=60) as client:
            def gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
                body = client.post(f"{server.url}/graphql",
                                   json={"query": query, "variables": variables or {}}).json()
                if "errors" in body:
                    raise GqlError(str(body["errors"])[:300])
                return dict(body["data"])

            for i, port in enumerate(ports):
                answer = gql(SUBSCRIBE, {"input": {
                    "name": f"bench-{i}", "url": f"http://127.0.0.1:{port}/hook",
                    "secret": secret}})
                if answer["webhookSubscribe"]["__typename"] != "WebhookSubscribePayload":
                    raise GqlError(str(answer))
            log(f"phase 3: {opts.clients} readers and one writer, {opts.subscribers} webhook "
                f"subscribers, {opts.seconds:g} s")
            writer = Writer(estate=readers.estate, opts=opts)
            tally, wall, w_wall = asyncio.run(
                _phase(server, readers, opts, writer, opts.seed + 2))
            ended = time.monotonic()
            last_change, before = ended, None
            while time.monotonic() - ended < 600:
                positions = [s["position"] for s in gql(POSITIONS)["webhookSubscriptions"]]
                handled = [httpx.get(f"http://127.0.0.1:{p}/stats").json()["handled"]
                           for p in ports]
                now = (positions, handled)
                if now != before:
                    last_change, before = time.monotonic(), now
                elif (len(set(positions)) == 1 and len(set(handled)) == 1
                      and time.monotonic() - last_change > 3):
                    break  # every subscriber at the same place, nothing moved for 3 s
                time.sleep(0.25)
            ended_drain = last_change
            drain = max(0.0, ended_drain - ended)
            stats = [httpx.get(f"http://127.0.0.1:{p}/stats").json() for p in ports]
            dead = sum(s["deadLetters"] for s in gql(POSITIONS)["webhookSubscriptions"])
    finally:
        if sink.stdin is not None:
            sink.stdin.close()
        sink.wait(timeout=30)
    delivered = [s["handled"] for s in stats]
    return tally, wall, writer, w_wall, {
        "n": opts.subscribers, "delivered_per_subscriber": delivered,
        "duplicates": sum(s["duplicates"] for s in stats),
        "bad_signatures": sum(s["bad_signatures"] for s in stats),
        "dead_letters": dead, "drain_s": drain, "phase_s": w_wall,
        "events_per_s": sum(delivered) / (w_wall + drain) if w_wall + drain else 0.0,
    }


def run_mixed(opts: MixedOptions) -> tuple[dict[str, Any], bool]:
    """Run the scenario; returns the results and whether no error or violation was counted."""
    from bench.report import machine

    started = time.monotonic()
    res: dict[str, Any] = {
        "scenario": "mixed", "store": opts.store, "cis": opts.cis, "seed": opts.seed,
        "command": opts.command,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine(),
        "config": {"clients": opts.clients, "seconds": opts.seconds,
                   "write_rate": opts.write_rate, "batch_cis": opts.batch_cis,
                   "new_share": opts.new_share, "itsm_rate": opts.itsm_rate},
    }
    with tempfile.TemporaryDirectory(prefix="cmdb-bench-mixed-") as tmp:
        estate = build_estate(opts.store, opts.cis, opts.seed, Path(tmp),
                              clear_neo4j=opts.clear_neo4j)
        try:
            res["estate"] = {"build_s": estate.build_seconds, "how": estate.command}
            log("server: cmdb-graph serve")
            server = ServeProcess(estate.env, Path(tmp) / "serve.log")
            try:
                readers = Readers(estate)
                res["server"] = {"start_s": server.start_seconds, "rss_after_start": server.rss()}
                log(f"server up in {server.start_seconds:.1f} s; first questions")
                res["server"]["first_question_s"] = asyncio.run(_warm(server.url, readers))
                res["server"]["rss_after_first_questions"] = server.rss()
                log(f"phase 1: {opts.clients} readers, no writes, {opts.seconds:g} s")
                base, base_wall, _ = asyncio.run(_phase(server, readers, opts, None, opts.seed))
                log(f"phase 2: {opts.clients} readers and one writer, {opts.seconds:g} s")
                writer = Writer(estate, opts)
                under, under_wall, w_wall = asyncio.run(
                    _phase(server, readers, opts, writer, opts.seed + 1))
                if opts.subscribers:
                    subs = _with_subscribers(server, readers, opts, Path(tmp))
                res["server"]["rss_end"] = server.rss()
                res["server"]["rss_peak"] = server.peak_rss
            finally:
                server.stop()
        finally:
            estate.close()
    res["baseline"] = base.summary(READ_KINDS, base_wall)
    res["stream"] = under.summary(READ_KINDS, under_wall)
    w = writer.res
    kinds = ("discovery", "incident", "change")
    res["writes"] = {
        "wall_s": w_wall, "scheduled": w.scheduled, "late": w.late,
        "created": w.created, "updated": w.updated,
        "per_second": {k: len(w.writes.latencies.get(k, [])) / w_wall if w_wall else 0.0
                       for k in kinds},
        "latency": {k: latency_stats(w.writes.latencies.get(k, [])) for k in kinds},
        "errors": {k: len(w.writes.errors.get(k, [])) for k in kinds},
        "first_errors": [e for k in kinds for e in w.writes.errors.get(k, [])[:2]],
        "question_after": {k: latency_stats(w.questions.latencies.get(k, [])) for k in kinds},
        "question_errors": {k: len(w.questions.errors.get(k, [])) for k in kinds},
        "first_question_errors": [e for k in kinds for e in w.questions.errors.get(k, [])[:2]],
        "ryw_checks": w.checks,
        "ryw_violations": {k: len(w.violations.get(k, [])) for k in kinds},
        "first_violations": [v for k in kinds for v in w.violations.get(k, [])[:3]],
    }
    errors = (base.n_errors() + under.n_errors() + w.writes.n_errors()
              + w.questions.n_errors())
    violations = sum(len(v) for v in w.violations.values())
    if opts.subscribers:
        tally3, wall3, writer3, w3_wall, sub_res = subs
        res["subscribers"] = {
            **sub_res, "stream": tally3.summary(READ_KINDS, wall3),
            "discovery_per_second": (len(writer3.res.writes.latencies.get("discovery", []))
                                     / w3_wall if w3_wall else 0.0),
            "ryw_checks": sum(writer3.res.checks.values()),
            "ryw_violations": sum(len(v) for v in writer3.res.violations.values()),
        }
        errors += tally3.n_errors() + writer3.res.writes.n_errors()
        errors += writer3.res.questions.n_errors()
        violations += res["subscribers"]["ryw_violations"]
    res["errors_total"] = errors
    res["ryw_violations_total"] = violations
    res["targets"] = targets(res)
    res["duration_s"] = time.monotonic() - started
    res["machine"]["load_average_at_end"] = list(os.getloadavg())
    ok = errors == 0 and violations == 0 and sum(w.checks.values()) > 0
    res["clean"] = ok
    return res, ok


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets for the mixed run (also sets ``p95_ratio`` and ``p95_ratio_by_kind``).

    The p95 ratio must hold for all reads together and for each kind of question: a kind that
    waits behind writes must not hide among faster ones.
    """
    b95, s95 = res["baseline"]["all"]["p95"], res["stream"]["all"]["p95"]
    res["p95_ratio"] = s95 / b95 if b95 and s95 else None
    ratios: dict[str, float | None] = {}
    for kind in READ_KINDS:
        kb, ks = res["baseline"]["kinds"][kind]["p95"], res["stream"]["kinds"][kind]["p95"]
        ratios[kind] = ks / kb if kb and ks else None
    res["p95_ratio_by_kind"] = ratios
    ratio = res["p95_ratio"]
    extra: list[dict[str, Any]] = []
    if "subscribers" in res:
        sub = res["subscribers"]
        p3 = sub["stream"]["all"]["p95"]
        sub["p95_ratio_vs_baseline"] = p3 / b95 if b95 and p3 else None
        sub["p95_ratio_vs_stream"] = p3 / s95 if s95 and p3 else None
        r3 = sub["p95_ratio_vs_baseline"]
        extra.append({
            "target": f"with {sub['n']} webhook subscribers: read p95 under the stream within 2x "
                      "of read p95 without writes",
            "measured": "n/a" if r3 is None else
                        f"{r3:.2f}x (with / without subscribers under the stream: "
                        f"{sub['p95_ratio_vs_stream']:.2f}x)",
            "met": r3 is not None and r3 <= 2.0})
        extra.append({
            "target": f"with {sub['n']} webhook subscribers: every event delivered once, "
                      "signed, no dead letter",
            "measured": f"{sum(sub['delivered_per_subscriber']):,} events in "
                        f"{sub['phase_s'] + sub['drain_s']:.0f} s; duplicates "
                        f"{sub['duplicates']}, bad signatures {sub['bad_signatures']}, dead "
                        f"letters {sub['dead_letters']}",
            "met": sub["bad_signatures"] == 0 and sub["dead_letters"] == 0
                   and len(set(sub["delivered_per_subscriber"])) == 1})
    worst = max(ratios, key=lambda k: ratios[k] or float("inf"))
    worst_ratio = ratios[worst]
    w = res["writes"]
    checks = sum(w["ryw_checks"].values())
    violations = res["ryw_violations_total"]
    rate = res["config"]["write_rate"]
    return [
        {"target": "read p95 under the stream within 2x of read p95 without it, all reads and "
                   "each kind of question",
         "measured": "n/a" if ratio is None or worst_ratio is None else
                     f"all {ratio:.2f}x; worst {worst} {worst_ratio:.2f}x",
         "met": ratio is not None and all(r is not None and r <= 2.0
                                          for r in (ratio, *ratios.values()))},
        {"target": "zero errors (reads, writes, questions after writes)",
         "measured": str(res["errors_total"]), "met": res["errors_total"] == 0},
        {"target": "every write visible to the writer's next question",
         "measured": f"{violations} violations in {checks} checks",
         "met": violations == 0 and checks > 0},
        {"target": f"writer keeps its schedule ({rate:g} discovery batches/s)",
         "measured": f"{w['per_second']['discovery']:.2f}/s",
         "met": w["per_second"]["discovery"] >= 0.9 * rate},
        *extra,
    ]


# -- report ----------------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f}" if v < 100 else f"{v:,.0f}"


def _mb(v: int | None) -> str:
    return "n/a" if v is None else f"{v / 2**20:,.0f} MiB"


def _subscribers_md(res: dict[str, Any]) -> list[str]:
    sub = res.get("subscribers")
    if not sub:
        return []
    ss, b, s = sub["stream"], res["baseline"], res["stream"]
    lines = [
        f"## With {sub['n']} webhook subscribers (ms)",
        "",
        f"Phase 3: {sub['n']} webhook receivers on 127.0.0.1 (one separate process, "
        "`bench/webhook_sink.py`, verifying every signature with `standardwebhooks`) "
        "subscribed to every event type through `webhookSubscribe`, then the same readers "
        f"and writer as under the stream for {res['config']['seconds']:g} s.",
        "",
        "| question | under the stream, no subscribers p95 | with subscribers p50 / p95 / p99 "
        "| p95 with / without subscribers | p95 with subscribers / without writes |",
        "|---|---|---|---:|---:|",
    ]
    for kind in ("all", *READ_KINDS):
        bs = b["all"] if kind == "all" else b["kinds"][kind]
        us = s["all"] if kind == "all" else s["kinds"][kind]
        ws = ss["all"] if kind == "all" else ss["kinds"][kind]
        r1 = ws["p95"] / us["p95"] if us["p95"] and ws["p95"] else None
        r2 = ws["p95"] / bs["p95"] if bs["p95"] and ws["p95"] else None
        lines.append(
            f"| {'**all reads**' if kind == 'all' else kind} | {_ms(us['p95'])} | "
            f"{_ms(ws['p50'])} / {_ms(ws['p95'])} / {_ms(ws['p99'])} | "
            f"{'n/a' if r1 is None else f'{r1:.2f}x'} | {'n/a' if r2 is None else f'{r2:.2f}x'} |")
    lines += [
        "",
        f"Writer: {sub['discovery_per_second']:.2f} discovery batches/s; read-your-writes "
        f"violations {sub['ryw_violations']} in {sub['ryw_checks']} checks. Events delivered "
        f"per subscriber: {', '.join(f'{n:,}' for n in sub['delivered_per_subscriber'])} "
        f"({sub['events_per_s']:,.0f} deliveries/s over all subscribers); every subscriber "
        f"had every event {sub['drain_s']:.1f} s after the writer stopped. Duplicates "
        f"{sub['duplicates']}, bad signatures {sub['bad_signatures']}, dead letters "
        f"{sub['dead_letters']}.",
        "",
    ]
    return lines


def markdown(res: dict[str, Any]) -> str:
    """The results as markdown."""
    c, m = res["config"], res["machine"]
    store = "embedded" if res["store"] == "embedded" else "Neo4j"
    lines = [
        f"# cmdb-graph mixed workload: {store}, {res['cis']:,} CIs",
        "",
        f"Run {res['started_at']} in {res['duration_s']:.0f} s with `{res['command']}`. "
        f"Estate written in {res['estate']['build_s']:.1f} s ({res['estate']['how']}); "
        "server: a `cmdb-graph serve` subprocess on 127.0.0.1, clients in the bench process "
        "(one asyncio loop, one keep-alive HTTP/1.1 connection each), all on the same machine.",
        "",
        f"Machine: {m['cpu_model']} ({m['cores']} cores), {m['memory_bytes'] / 2**30:.1f} GiB, "
        f"Python {m['python']}; load average at start {m['load_average_at_start'][0]:.1f}, "
        f"at end {m['load_average_at_end'][0]:.1f} (other work shares the cores).",
        "",
        f"{c['clients']} readers for {c['seconds']:g} s without writes, then {c['seconds']:g} s "
        f"with one writer: {c['write_rate']:g} discovery batches/s of {c['batch_cis']} CIs "
        f"({c['new_share']:.0%} new VMs with a HOSTED_ON each, the rest updates by FQDN) "
        f"and {c['itsm_rate']:g} ITSM records/s (incidents and changes alternately).",
        "",
        "## Reads (ms)",
        "",
        "| question | without writes p50 / p95 / p99 | under the stream p50 / p95 / p99 | "
        "p95 ratio | errors (without / under) | requests (without / under) |",
        "|---|---|---|---:|---|---|",
    ]
    b, s = res["baseline"], res["stream"]
    for kind in ("all", *READ_KINDS):
        bs = b["all"] if kind == "all" else b["kinds"][kind]
        ss = s["all"] if kind == "all" else s["kinds"][kind]
        be = sum(b["errors"].values()) if kind == "all" else b["errors"][kind]
        se = sum(s["errors"].values()) if kind == "all" else s["errors"][kind]
        r = ss["p95"] / bs["p95"] if bs["p95"] and ss["p95"] else None
        lines.append(
            f"| {'**all reads**' if kind == 'all' else kind} | "
            f"{_ms(bs['p50'])} / {_ms(bs['p95'])} / {_ms(bs['p99'])} | "
            f"{_ms(ss['p50'])} / {_ms(ss['p95'])} / {_ms(ss['p99'])} | "
            f"{'n/a' if r is None else f'{r:.2f}x'} | {be} / {se} | {bs['n']:,} / {ss['n']:,} |"
        )
    lines += [
        "",
        f"Reads per second: {b['per_second']:.1f} without writes, {s['per_second']:.1f} under "
        "the stream.",
        "",
        "## Writes (ms)",
        "",
        "| write | done (scheduled) | per s | p50 / p95 | errors | question after it p50 / p95 "
        "| read-your-writes checks | violations |",
        "|---|---|---:|---|---:|---|---:|---:|",
    ]
    w = res["writes"]
    for kind in ("discovery", "incident", "change"):
        lat, q = w["latency"][kind], w["question_after"][kind]
        lines.append(
            f"| {kind} | {lat['n']} ({w['scheduled'].get(kind, 0)}) | "
            f"{w['per_second'][kind]:.2f} | {_ms(lat['p50'])} / {_ms(lat['p95'])} | "
            f"{w['errors'][kind] + w['question_errors'][kind]} | {_ms(q['p50'])} / "
            f"{_ms(q['p95'])} | {w['ryw_checks'].get(kind, 0)} | {w['ryw_violations'][kind]} |"
        )
    lines += [
        "",
        f"Discovery runs' counts: {w['created']:,} created, {w['updated']:,} updated (CIs "
        "and relationships). Writes that ran "
        f"late (more than one interval behind schedule): {w['late'] or 'none'}.",
        "",
        *_subscribers_md(res),
        "## Server",
        "",
        "| | |",
        "|---|---|",
        f"| start (launch to first `/healthz`) | {res['server']['start_s']:.1f} s |",
    ]
    for kind, secs in res["server"]["first_question_s"].items():
        lines.append(f"| first {kind} question after start | {secs * 1000:,.0f} ms |")
    lines += [
        f"| resident memory after start | {_mb(res['server']['rss_after_start'])} |",
        f"| after the first questions | {_mb(res['server']['rss_after_first_questions'])} |",
        f"| peak during the phases (sampled each second) | {_mb(res['server']['rss_peak'])} |",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for t in res["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
    errs = (res["baseline"]["first_errors"] + res["stream"]["first_errors"]
            + w["first_errors"] + w["first_question_errors"])
    if errs or w["first_violations"]:
        lines += ["", "## First errors and violations", ""]
        lines += [f"- error: `{e[:250]}`" for e in errs[:8]]
        lines += [f"- violation: {v[:250]}" for v in w["first_violations"][:8]]
    return "\n".join(lines) + "\n"


def write_results(res: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """``mixed-<store>-<cis>.md`` and ``.json`` in ``out_dir``."""
    return write_pair(out_dir, f"mixed-{res['store']}-{size_label(res['cis'])}",
                      markdown(res), res)


def main(opts: MixedOptions) -> int:
    """Run, write the results, exit 1 on any error or read-your-writes violation."""
    res, ok = run_mixed(opts)
    md, js = write_results(res, opts.out_dir)
    log(f"mixed: wrote {md} and {js}; errors {res['errors_total']}, read-your-writes "
        f"violations {res['ryw_violations_total']}, read p95 ratio "
        f"{res['p95_ratio'] if res['p95_ratio'] is None else round(res['p95_ratio'], 2)}")
    return 0 if ok else 1

