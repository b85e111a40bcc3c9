"""Scale benchmarks that a cached page cannot flatter (issue 15), side by side with ``GET /health``.

Every line is measured in one run against one gunicorn (2 workers x 8 threads, as the timeline
ratio of ``records_bench``), with ``GET /health`` at the same 16 clients before and after (the
better of the two is the baseline: a slow baseline would flatter us), and prints its goal and
whether it is met:

1. **Cold timeline**: 1,000 citizens with 200 visits each, activated just now (the page cache may
   not serve them), each one's first page read once by 16 clients, then each one's second page
   (the ``next_cursor`` of its first page) read once. All first pages, then all second pages, so
   the two lines are measured apart. Then, with no app, the floor under any cold page on this
   server (the three operations none can skip: the token's citizen, the list index document, the
   read's audit event), the raw read under a first page (its list index document) and, for
   comparison, each page's visits fetched directly by pymongo clients.
2. **Record-size growth**: first pages of citizens with 20 and with 2,000 visits, cold (each
   citizen read once, in halves: small, large, large, small) and warm (the same pages repeated
   for a few seconds).
3. **Database growth**: bulk ingestion rate (``POST /facility/bulk``, the lines of
   ``records_bench``) and the p99 of fresh citizens' first pages at 10^4 and at 10^6 stored
   visits (filled with raw ``insert_many`` of copies of a visit the API stored).

Citizens are created by the app's own ``find_or_create_citizens`` in-process; their visits are
raw copies of a visit the API stored (so they have its size and shape). "Activated just now"
means ``state=active, activated_at=now``, and, when the app has it, the per-citizen read model
that a real activation builds (``app.services.list_index.build``); the lines say which.

A read phase that runs past ``PHASE_BUDGET`` stops handing out requests (the ones under way
finish and count) and says how many of its requests it made: the suite stays bounded even where
a page costs seconds.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pymongo
from bson import ObjectId

from app.services.list_index import SLOT_BYTES
from bench import sizing
from bench.records_bench import (
    CONCURRENCY,
    SETUP,
    _in_app,
    _load,
    _secrets_env,
    _stream_bulk,
    _visit,
    api_server,
    database,
    national_id,
    run_clients,
)

COLD_CITIZENS = 1_000
COLD_VISITS = 200
PAGE = 20
GROWTH_CITIZENS = 96  # per record size: two halves of three rounds of 16 clients when each is read once
SMALL_RECORD, LARGE_RECORD = 20, 2_000
WARM_SECONDS = 6.0
HEALTH_SECONDS = 5.0
PHASE_BUDGET = 90.0  # seconds a read phase may hand out requests
CLIENT_TIMEOUT = 300.0
SMALL_DATABASE, LARGE_DATABASE = 10_000, 1_000_000
# The suite's share of `make bench`'s ~25 minutes: the fill to LARGE_DATABASE stops where it is when
# what remains would not fit (STAGE_RESERVE for the measurements after it), and the line says so.
# ``HOSO_BENCH_SCALE_MINUTES=40 make bench`` gives the fill room to reach 10^6 on a slow machine.
SUITE_BUDGET = float(os.environ.get("HOSO_BENCH_SCALE_MINUTES", "21")) * 60
STAGE_RESERVE = 120.0
PROBE_CITIZENS, PROBE_VISITS = 250, 20  # fresh citizens whose first pages give the database-growth p99
GROWTH_BULK_LINES = 3_000
INSERT_BATCH = 1_000


# ---------------------------------------------------------------- in-app set-up (same settings as the server)

CREATE_CITIZENS = """
import json, sys
from datetime import date
from app import create_app
from app.clock import utcnow
from app.runtime import runtime
from app.services.audit import SYSTEM_ACTOR, RequestContext
from app.services.citizens import NewCitizen, find_or_create_citizens
people = [NewCitizen(p["national_id"], p["full_name"], date.fromisoformat(p["date_of_birth"]), p["sex"])
          for p in json.load(sys.stdin)]
app = create_app()
with app.app_context():
    ctx = RequestContext(actor=SYSTEM_ACTOR, now=utcnow(), request_id="bench", trail=runtime().audit_trail)
    found = {}
    for start in range(0, len(people), 1000):
        documents, _ = find_or_create_citizens(ctx, people[start:start + 1000], {"_id": 1, "national_id": 1})
        found.update({key: str(doc["_id"]) for key, doc in documents.items()})
    print(json.dumps(found))
"""

# Activation as the bench can do it without TOTP: the state a confirmed enrolment leaves (active,
# activated now) and the read model a real activation builds, when the app has one. Then one
# access token per citizen.
ACTIVATE = """
import importlib, inspect, json, sys, time
from bson import ObjectId
from app import create_app
from app.clock import utcnow
from app.models.citizen import Citizen
from app.runtime import runtime
from app.security.tokens import TokenType
try:  # absent before issue 15's read model; any other import failure is an error, not "before"
    build = getattr(importlib.import_module("app.services.list_index"), "build", None)
except ModuleNotFoundError as error:
    if error.name != "app.services.list_index":
        raise
    build = None
ids = [ObjectId(value) for value in json.load(sys.stdin)]
app = create_app()
with app.app_context():
    now = utcnow()
    for start in range(0, len(ids), 500):
        Citizen.objects(id__in=ids[start:start + 500]).update(set__state="active", set__activated_at=now)
    built = None
    if build is not None:
        started = time.perf_counter()
        takes_now = "now" in inspect.signature(build).parameters
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            build(chunk, now=utcnow()) if takes_now else build(chunk)
        built = time.perf_counter() - started
    tokens = {str(i): runtime().tokens.issue(str(i), TokenType.CITIZEN, utcnow(), sid="bench").token for i in ids}
    print(json.dumps({"tokens": tokens, "built_seconds": built}))
"""


# A new access token for the facility client SETUP made (tokens last 15 minutes; the fill may take longer).
FACILITY_TOKEN = """
from app import create_app
from app.clock import utcnow
from app.models.facility import FacilityClient
from app.runtime import runtime
from app.security.tokens import TokenType
app = create_app()
with app.app_context():
    client = FacilityClient.objects(facility_code="01001").first()
    print(runtime().tokens.issue(client.client_id, TokenType.FACILITY, utcnow(), facility="01001").token)
"""


def scale_national_id(serial: int) -> str:
    """A CCCD for the bench's citizens: province 002, a woman born in 1990, ``serial`` (< 10^6)."""
    return f"002190{serial:06d}"


def create_citizens(env: dict[str, str], serials: range) -> dict[str, ObjectId]:
    """Citizens created by the app's own ``find_or_create_citizens``: national id -> citizen id."""
    people = [{"national_id": scale_national_id(n), "full_name": "Trần Thị Mai", "date_of_birth": "1990-05-01",
               "sex": "female"} for n in serials]
    found = json.loads(_in_app(env, CREATE_CITIZENS, json.dumps(people)))
    return {key: ObjectId(value) for key, value in found.items()}


@dataclass
class Activation:
    tokens: dict[ObjectId, str]
    built_seconds: float | None  # None: the app has no list_index.build (the "before" code)

    def model(self) -> str:
        if self.built_seconds is None:
            return "no read model (app.services.list_index.build absent)"
        return f"read model built by list_index.build in {self.built_seconds:.1f} s"


def activate_now(env: dict[str, str], citizen_ids: list[ObjectId]) -> Activation:
    """Activate these citizens now (see ``ACTIVATE``) and mint one access token each."""
    answer = json.loads(_in_app(env, ACTIVATE, json.dumps([str(c) for c in citizen_ids])))
    return Activation({ObjectId(key): value for key, value in answer["tokens"].items()}, answer["built_seconds"])


# ---------------------------------------------------------------- raw seeding

def visit_template(uri: str, port: int, facility_token: str) -> dict[str, Any]:
    """A visit as the API stores it (pushed through POST /facility/bulk), to copy for raw seeding."""
    line = (json.dumps({"type": "visit", "source_id": "TEMPLATE", **_visit(0, national_id(99_999))},
                       ensure_ascii=False) + "\n").encode()
    assert _stream_bulk(port, facility_token, [line]) == 1
    with pymongo.MongoClient(uri) as client:
        template = client.get_default_database().visits.find_one({"source_id": "TEMPLATE"})
    assert template is not None
    return template


def visit_copies(template: dict[str, Any], citizen_id: ObjectId, count: int, tag: str,
                 newest: datetime) -> Iterator[dict[str, Any]]:
    """``count`` visits of one citizen shaped as ``template``, a day and a half apart, newest first."""
    for n in range(count):
        started = newest - timedelta(hours=36 * n)
        yield {**template, "_id": ObjectId(), "citizen_id": citizen_id, "source_id": f"{tag}-{citizen_id}-{n}",
               "started_at": started, "ended_at": started + timedelta(minutes=40),
               "created_at": newest, "updated_at": newest}


def insert_batched(collection: Any, documents: Iterator[dict[str, Any]], batch: int = INSERT_BATCH,
                   deadline: float | None = None) -> int:
    """Raw ``insert_many`` in batches of ``batch``; stops after the batch that passes ``deadline``."""
    inserted, chunk = 0, []
    for document in documents:
        chunk.append(document)
        if len(chunk) == batch:
            collection.insert_many(chunk, ordered=False)
            inserted, chunk = inserted + len(chunk), []
            if deadline is not None and time.perf_counter() > deadline:
                return inserted
    if chunk:
        collection.insert_many(chunk, ordered=False)
        inserted += len(chunk)
    return inserted


def seed_visits(uri: str, template: dict[str, Any], citizens: list[ObjectId], per_citizen: int,
                tag: str) -> float:
    """Each citizen gets ``per_citizen`` raw visits; returns the seconds it took."""
    newest = datetime.now(UTC) - timedelta(hours=1)
    started = time.perf_counter()
    with pymongo.MongoClient(uri) as client:
        visits = client.get_default_database().visits
        insert_batched(visits, (visit for citizen in citizens
                                for visit in visit_copies(template, citizen, per_citizen, tag, newest)))
    return time.perf_counter() - started


# ---------------------------------------------------------------- reading

@dataclass
class Reads:
    """What one read phase measured."""

    wanted: int
    latencies: list[float] = field(default_factory=list)
    bodies: dict[int, bytes] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def cut(self, percent: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[percent - 1]

    def joined(self, other: Reads) -> Reads:
        """Two phases as one: their requests, latencies and errors, over their summed time."""
        return Reads(wanted=self.wanted + other.wanted, latencies=self.latencies + other.latencies,
                     bodies={}, errors=self.errors + other.errors, seconds=self.seconds + other.seconds)

    def stopped(self) -> str:
        """Why the phase did not make every request, or ''."""
        if self.done + len(self.errors) >= self.wanted:
            return ""
        return f" (STOPPED at the {PHASE_BUDGET:.0f} s budget after {self.done} of {self.wanted} requests)"


class Connections:
    """CONCURRENCY keep-alive connections kept across read phases, so that phases compared with
    each other are served alike: gunicorn's workers share out a phase's new connections as they
    happen to accept them, which can move a short phase's rate by itself (the two workers' CPU
    shares were 57/34 % in one phase, 36/46 % in another of the same kind). A connection that
    fails is replaced in its slot."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._slots = [self.new() for _ in range(CONCURRENCY)]

    def new(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)

    def take(self, slot: int) -> http.client.HTTPConnection:
        return self._slots[slot]

    def put(self, slot: int, connection: http.client.HTTPConnection) -> None:
        self._slots[slot] = connection

    def close(self) -> None:
        for connection in self._slots:
            connection.close()


@contextmanager
def kept_connections(port: int) -> Iterator[Connections]:
    """:class:`Connections` for the phases of one section, closed at its end."""
    connections = Connections(port)
    try:
        yield connections
    finally:
        connections.close()


def read_each_once(port: int, requests: list[tuple[str, dict[str, str]]], keep_bodies: bool = False,
                   budget: float = PHASE_BUDGET, connections: Connections | None = None) -> Reads:
    """Each request made once, by CONCURRENCY keep-alive clients taking the next one in turn (on
    ``connections`` when given, else on new ones)."""
    reads = Reads(wanted=len(requests))
    lock = threading.Lock()
    position = iter(range(len(requests)))
    stop = time.perf_counter() + budget
    pool = connections or Connections(port)

    def client(slot: int) -> None:
        connection = pool.take(slot)
        while time.perf_counter() < stop:
            with lock:
                index = next(position, None)
            if index is None:
                break
            path, headers = requests[index]
            begin = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = pool.new()
                with lock:
                    reads.errors.append(repr(error))
                continue
            elapsed = (time.perf_counter() - begin) * 1000
            with lock:
                if response.status != 200:
                    reads.errors.append(f"{response.status} {body[:120]!r}")
                    continue
                reads.latencies.append(elapsed)
                if keep_bodies:
                    reads.bodies[index] = body
        pool.put(slot, connection)

    reads.seconds = run_clients([threading.Thread(target=client, args=(slot,)) for slot in range(CONCURRENCY)])
    if connections is None:
        pool.close()
    return reads


def read_repeatedly(port: int, requests: list[tuple[str, dict[str, str]]], seconds: float,
                    connections: Connections | None = None) -> Reads:
    """The same requests over and over for ``seconds`` (each client cycles through them; on
    ``connections`` when given, else on new ones)."""
    reads = Reads(wanted=0)
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    pool = connections or Connections(port)

    def client(offset: int) -> None:
        connection = pool.take(offset)
        mine: list[float] = []
        n = offset
        while time.perf_counter() < stop:
            path, headers = requests[n % len(requests)]
            n += 1
            begin = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                with lock:
                    reads.errors.append(f"{response.status} {body[:120]!r}")
                continue
            mine.append((time.perf_counter() - begin) * 1000)
        pool.put(offset, connection)
        with lock:
            reads.latencies.extend(mine)

    reads.seconds = run_clients([threading.Thread(target=client, args=(i,)) for i in range(CONCURRENCY)])
    reads.wanted = reads.done
    if connections is None:
        pool.close()
    return reads


def _raw_reads(jobs: list[Any], read: Callable[[Any], str | None]) -> Reads:
    """Each job run once by CONCURRENCY clients (``read`` answers an error, or None)."""
    reads = Reads(wanted=len(jobs))
    lock = threading.Lock()
    position = iter(range(len(jobs)))

    def reader() -> None:
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                return
            begin = time.perf_counter()
            error = read(jobs[index])
            elapsed = (time.perf_counter() - begin) * 1000
            with lock:
                if error is None:
                    reads.latencies.append(elapsed)
                else:
                    reads.errors.append(error)

    reads.seconds = run_clients([threading.Thread(target=reader) for _ in range(CONCURRENCY)])
    return reads


def raw_first_pages(uri: str, citizens: list[ObjectId]) -> Reads:
    """The raw operation under the cold first page: each citizen's list index document (the page's
    keys and rows) read once directly from the database by CONCURRENCY pymongo clients, with the
    query the app sends. No app, no audit, no authentication: what the database alone allows."""
    projection = {"lists.visits": 1, "rows.visits": 1, "version": 1, "counters": 1}
    with pymongo.MongoClient(uri, maxPoolSize=CONCURRENCY) as client:
        indexes = client.get_default_database().list_index

        def read(citizen: ObjectId) -> str | None:
            document = indexes.find_one({"_id": citizen}, projection) or {}
            held = len(document.get("lists", {}).get("visits", b"")) // SLOT_BYTES
            return None if held >= PAGE and document.get("rows", {}).get("visits") else f"{held} keys and rows"

        return _raw_reads(citizens, read)


def raw_visit_fetches(uri: str, citizens: list[ObjectId]) -> Reads:
    """For comparison: each citizen's 20 newest visit documents fetched once (one index range of
    the citizen, without the fields a timeline row leaves out), what a page read before the list
    index kept rows."""
    excluded = {"lab_results": 0, "prescriptions": 0, "notes": 0, "provenance": 0, "payload_hash": 0}
    with pymongo.MongoClient(uri, maxPoolSize=CONCURRENCY) as client:
        visits = client.get_default_database().visits
        ranges = []
        for citizen in citizens:  # (set-up, not measured: the page's time range)
            times = [d["started_at"] for d in visits.find({"citizen_id": citizen}, {"started_at": 1})
                     .sort("started_at", -1).limit(PAGE)]
            ranges.append({"citizen_id": citizen, "started_at": {"$gt": times[-1] - timedelta(milliseconds=1),
                                                                 "$lte": times[0]}})

        def read(query: dict[str, Any]) -> str | None:
            found = len(list(visits.find(query, excluded)))
            return None if found == PAGE else f"{found} visits in a page's range"

        return _raw_reads(ranges, read)


FLOOR_EVENTS = "bench_floor_audit_events"  # a twin of audit_events (same indexes), dropped afterwards


def raw_floor_pages(uri: str, citizens: list[ObjectId]) -> Reads:
    """The floor under any cold page on this server: for each citizen once, by CONCURRENCY pymongo
    clients with no app, the three operations no design of a cold page can skip, in the app's own
    shapes. The token's citizen (the revocation checks, SECURITY.md 16: a cold citizen is in no
    cache), the citizen's list index document (the page) and one audit event of the read
    (SECURITY.md 29), a copy of the one the app stored for a first page, inserted into a twin of
    ``audit_events`` with the same indexes (so the trail and its sizing stay the app's own).
    No batching: the app's group commits may beat it a little where requests coincide."""
    projection = {"lists.visits": 1, "rows.visits": 1, "version": 1, "counters": 1}
    with pymongo.MongoClient(uri, maxPoolSize=CONCURRENCY) as client:
        db = client.get_default_database()
        template = db.audit_events.find_one({"action": "visits.list"}, {"_id": 0})
        if template is None:
            return Reads(wanted=len(citizens), errors=["no visits.list audit event to copy"])
        events = db[FLOOR_EVENTS]
        for name, info in db.audit_events.index_information().items():
            if name != "_id_":
                events.create_index(info["key"], name=name)

        def read(citizen: ObjectId) -> str | None:
            found = list(db.citizens.find({"_id": {"$in": [citizen]}}))
            document = db.list_index.find_one({"_id": citizen}, projection) or {}
            events.insert_one({**template, "citizen_id": citizen, "citizen_ids": [citizen], "at": datetime.now(UTC)})
            held = len(document.get("lists", {}).get("visits", b"")) // SLOT_BYTES
            return None if found and held >= PAGE else f"citizen found {bool(found)}, {held} keys"

        try:
            return _raw_reads(citizens, read)
        finally:
            events.drop()


def first_page(token: str) -> tuple[str, dict[str, str]]:
    return f"/api/v1/me/visits?limit={PAGE}", {"Authorization": f"Bearer {token}"}


def next_page(token: str, body: bytes) -> tuple[str, dict[str, str]] | None:
    """The request of the page after ``body`` (a first page's response), None on a last page."""
    cursor = json.loads(body)["next_cursor"]
    if not cursor:
        return None
    return f"/api/v1/me/visits?limit={PAGE}&cursor={quote(cursor, safe='')}", {"Authorization": f"Bearer {token}"}


@dataclass
class Health:
    """``GET /health`` at CONCURRENCY clients, measured before and after what it is compared with."""

    runs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def measure(self, port: int) -> None:
        rate, latencies = _load(port, "/api/v1/health", {}, seconds=HEALTH_SECONDS)
        self.runs.append(rate)
        if not self.latencies:
            self.latencies = latencies

    @property
    def best(self) -> float:
        return max(self.runs)

    def describe(self) -> str:
        return (f"GET /health {self.best:,.0f} req/s (better of " + " and ".join(f"{r:,.0f}" for r in self.runs)
                + ")")


@contextmanager
def health_around(port: int) -> Iterator[Health]:
    health = Health()
    health.measure(port)
    yield health
    health.measure(port)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def latency_text(reads: Reads) -> str:
    if not reads.latencies:
        return "no request answered 200"
    return f"p50 {reads.cut(50):.1f} ms, p95 {reads.cut(95):.1f} ms, p99 {reads.cut(99):.1f} ms"


def errors_text(reads: Reads) -> str:
    return f"; {len(reads.errors)} ERRORS, e.g. {reads.errors[0]}" if reads.errors else ""


def ratio_line(label: str, reads: Reads, health: Health, goal: float) -> list[str]:
    """A rate vs /health with its goal, and the latency spread with the p99 < 10 x p50 goal."""
    ratio = reads.rate / health.best
    spread = reads.cut(99) / reads.cut(50) if reads.latencies else float("inf")
    ok = ratio >= goal and not reads.errors and not reads.stopped()
    return [f"{label}: {reads.rate:,.1f} req/s vs {health.describe()} at {CONCURRENCY} clients -> ratio "
            f"{ratio:.3f} (goal >= {goal}: {verdict(ok)}){reads.stopped()}{errors_text(reads)}",
            f"    latency {latency_text(reads)}; p99/p50 = {spread:.1f} (goal < 10: {verdict(spread < 10)})"]


# ---------------------------------------------------------------- the sections

@dataclass
class Setting:
    uri: str
    env: dict[str, str]
    port: int
    facility_token: str
    template: dict[str, Any]


def cold_timeline(s: Setting) -> tuple[list[str], dict[str, Any]]:
    """Section 1; also returns the audit growth its reads caused (for the sizing note)."""
    citizens = list(create_citizens(s.env, range(COLD_CITIZENS)).values())
    seeded = seed_visits(s.uri, s.template, citizens, COLD_VISITS, "cold")
    activation = activate_now(s.env, citizens)
    first = [first_page(activation.tokens[c]) for c in citizens]
    before = sizing.audit_totals(s.uri)
    with health_around(s.port) as health:
        firsts = read_each_once(s.port, first, keep_bodies=True)
        seconds = [page for index, body in sorted(firsts.bodies.items())
                   if (page := next_page(activation.tokens[citizens[index]], body)) is not None]
        second_reads = read_each_once(s.port, seconds)
        growth = sizing.growth_per("per_read", before, s.uri, firsts.done + second_reads.done)
        floor = raw_floor_pages(s.uri, citizens)
        raw = raw_first_pages(s.uri, citizens)
        fetches = raw_visit_fetches(s.uri, citizens)
    floor_ratio = floor.rate / health.best
    of_floor = firsts.rate / floor.rate if floor.rate else float("nan")
    lines = [f"cold timeline: {COLD_CITIZENS:,} citizens x {COLD_VISITS} visits (seeded raw in {seeded:.0f} s), "
             f"activated just now, {activation.model()}; each citizen's first page read once by {CONCURRENCY} "
             "clients, then each one's second page (its first page's next_cursor) once",
             *ratio_line("  first pages", firsts, health, 0.3),
             *ratio_line("  second pages", second_reads, health, 0.3),
             f"  the floor under any cold page on this server (the three operations none can skip: the token's "
             f"citizen for the revocation checks, the citizen's list index document, the read's audit event; "
             f"{CONCURRENCY} pymongo clients, each citizen once, no app): {floor.rate:,.1f} req/s -> "
             f"{floor_ratio:.3f} of /health: the 0.3 goal is "
             f"{'within' if floor_ratio >= 0.3 else 'BEYOND'} this database's reach{errors_text(floor)}",
             f"    floor latency {latency_text(floor)}; first pages are {of_floor:.2f} of the floor",
             f"  the raw operation under a first page (the citizen's list index document, its keys and rows, read "
             f"by {CONCURRENCY} pymongo clients, each citizen once; no app): {raw.rate:,.1f} req/s -> "
             f"{raw.rate / health.best:.3f} of /health; first pages are {firsts.rate / raw.rate:.2f} of it "
             f"(for reading){errors_text(raw)}",
             f"    raw latency {latency_text(raw)}",
             f"  for comparison, fetching each first page's {PAGE} visit documents instead (what a page read before "
             f"the index kept rows): {fetches.rate:,.1f} req/s -> {fetches.rate / health.best:.3f} of /health"
             f"{errors_text(fetches)}"]
    if len(seconds) < firsts.done:
        lines.append(f"  NOTE: only {len(seconds)} of {firsts.done} first pages had a next_cursor")
    return lines, growth


def record_size_growth(s: Setting) -> list[str]:
    """Section 2: first pages of small and large records, cold (each once) and warm (repeated)."""
    small = list(create_citizens(s.env, range(10_000, 10_000 + GROWTH_CITIZENS)).values())
    large = list(create_citizens(s.env, range(20_000, 20_000 + GROWTH_CITIZENS)).values())
    seeded = seed_visits(s.uri, s.template, small, SMALL_RECORD, "small")
    seeded += seed_visits(s.uri, s.template, large, LARGE_RECORD, "large")
    activation = activate_now(s.env, small + large)
    small_pages = [first_page(activation.tokens[c]) for c in small]
    large_pages = [first_page(activation.tokens[c]) for c in large]
    half = GROWTH_CITIZENS // 2
    with health_around(s.port) as health, kept_connections(s.port) as kept:
        # cold: small, large, large, small (halves of each), so a drift of the machine weighs on
        # both alike; every phase on the same connections, so both are served by the same workers
        cold_small = read_each_once(s.port, small_pages[:half], connections=kept)
        cold_large = read_each_once(s.port, large_pages[:half], connections=kept)
        cold_large = cold_large.joined(read_each_once(s.port, large_pages[half:], connections=kept))
        cold_small = cold_small.joined(read_each_once(s.port, small_pages[half:], connections=kept))
        warm_small = read_repeatedly(s.port, small_pages, WARM_SECONDS, connections=kept)
        warm_large = read_repeatedly(s.port, large_pages, WARM_SECONDS, connections=kept)
    lines = [f"record-size growth: first pages of {GROWTH_CITIZENS} citizens with {SMALL_RECORD} visits and "
             f"{GROWTH_CITIZENS} with {LARGE_RECORD:,} (seeded raw in {seeded:.0f} s), activated just now, "
             f"{activation.model()}; {health.describe()}"]
    for label, a, b in (("cold (each citizen read once, in halves: small, large, large, small, on one set of "
                          "connections)",
                         cold_small, cold_large),
                        (f"warm (the same pages repeated for {WARM_SECONDS:.0f} s)", warm_small, warm_large)):
        ratio = b.rate / a.rate if a.rate else 0.0
        ok = ratio >= 0.8 and not (a.errors or b.errors or a.stopped() or b.stopped())
        lines += [f"  {label}: {LARGE_RECORD:,} visits {b.rate:,.1f} req/s / {SMALL_RECORD} visits {a.rate:,.1f} "
                  f"req/s -> ratio {ratio:.2f} (goal >= 0.8: {verdict(ok)}){a.stopped()}{b.stopped()}"
                  f"{errors_text(a)}{errors_text(b)}",
                  f"    {SMALL_RECORD} visits: {latency_text(a)}; {LARGE_RECORD:,} visits: {latency_text(b)}"]
    return lines


@dataclass
class Stage:
    """The database-growth measurements at one database size."""

    stored: int
    bulk_rate: float
    reads: Reads
    health: Health
    model: str
    audit: dict[str, Any]  # what each written record added to the audit collections


def growth_stage(s: Setting, stage: int, probe_serials: range, bulk_lines: list[bytes]) -> Stage:
    """Bulk ingestion, then fresh citizens' first pages (each once), at the database's current size."""
    s.facility_token = _in_app(s.env, FACILITY_TOKEN)  # a fresh one: the fill before may outlast a token
    probes = list(create_citizens(s.env, probe_serials).values())
    seed_visits(s.uri, s.template, probes, PROBE_VISITS, f"probe{stage}")
    with pymongo.MongoClient(s.uri) as client:
        stored = client.get_default_database().visits.estimated_document_count()
    activation = activate_now(s.env, probes)
    with health_around(s.port) as health:
        before = sizing.audit_totals(s.uri)
        started = time.perf_counter()
        created = _stream_bulk(s.port, s.facility_token, bulk_lines)
        bulk_rate = created / (time.perf_counter() - started)
        audit = sizing.growth_per("per_write", before, s.uri, created)
        reads = read_each_once(s.port, [first_page(activation.tokens[c]) for c in probes])
    if created != len(bulk_lines):
        raise RuntimeError(f"bulk: {created} of {len(bulk_lines)} lines created")
    return Stage(stored, bulk_rate, reads, health, activation.model(), audit)


def fill(s: Setting, target: int, deadline: float) -> tuple[int, float]:
    """Raw visits (and their record keys) over many citizens until ``target`` are stored or the
    deadline passes; returns the count reached and the seconds it took."""
    started = time.perf_counter()
    newest = datetime.now(UTC) - timedelta(days=400)  # older than every probe's visits
    with pymongo.MongoClient(s.uri) as client:
        db = client.get_default_database()
        stored = db.visits.estimated_document_count()
        while stored < target and time.perf_counter() < deadline:
            # 10 visits for each of 10,000 filler citizens per round (ids only: no citizen documents,
            # which would not change the visits' cost), with their record keys as the app writes them
            citizens = [ObjectId() for _ in range(min(10_000, (target - stored + 9) // 10))]
            visits = [v for c in citizens for v in visit_copies(s.template, c, 10, "fill", newest)]
            visits = visits[:target - stored]
            for start in range(0, len(visits), INSERT_BATCH):
                chunk = visits[start:start + INSERT_BATCH]
                db.visits.insert_many(chunk, ordered=False)
                db.record_keys.insert_many([{"_id": f"visit:01001:{v['source_id']}", "record_id": v["_id"],
                                             "citizen_id": v["citizen_id"], "created_at": newest} for v in chunk],
                                           ordered=False)
                stored += len(chunk)
                if time.perf_counter() > deadline:
                    break
            newest -= timedelta(hours=1)
    return stored, time.perf_counter() - started


def database_growth(s: Setting, growth: dict[str, Any], sizes: dict[str, sizing.CollectionSize],
                    deadline: float) -> list[str]:
    """Section 3: the same measurements at 10^4 and 10^6 stored visits (or as many as fit before
    ``deadline``). For the sizing note, ``growth`` gets the audit growth per written record and
    ``sizes`` the collections' sizes, measured at 10^4 (``collStats`` on the embedded server
    reads the whole collection: minutes at 10^6; the sizes do not depend on the count)."""
    lines_of = [(json.dumps({"type": "visit", "source_id": f"G{n:07d}", **_visit(n, national_id(n % 500))},
                            ensure_ascii=False) + "\n").encode() for n in range(500 + 2 * GROWTH_BULK_LINES)]
    assert _stream_bulk(s.port, s.facility_token, lines_of[:500]) == 500  # creates the 500 citizens
    small_fill, small_seconds = fill(s, SMALL_DATABASE - PROBE_CITIZENS * PROBE_VISITS, float("inf"))
    small = growth_stage(s, 1, range(30_000, 30_000 + PROBE_CITIZENS), lines_of[500:500 + GROWTH_BULK_LINES])
    sizes.update(sizing.measure(s.uri, s.port, s.facility_token))
    large_fill, large_seconds = fill(s, LARGE_DATABASE - PROBE_CITIZENS * PROBE_VISITS, deadline - STAGE_RESERVE)
    large = growth_stage(s, 2, range(40_000, 40_000 + PROBE_CITIZENS), lines_of[500 + GROWTH_BULK_LINES:])
    growth.update(small.audit)
    rate_ratio = large.bulk_rate / small.bulk_rate
    p99_ratio = large.reads.cut(99) / small.reads.cut(99)
    reads_ok = not (small.reads.errors or large.reads.errors or small.reads.stopped() or large.reads.stopped())
    short = large.stored < LARGE_DATABASE * 0.99
    reached = (f" (NOT the {LARGE_DATABASE:,} asked for: the fill stopped after {large_seconds:.0f} s to keep "
               f"the suite within {SUITE_BUDGET / 60:.0f} minutes)" if short else "")
    # the machine's own drift between the stages (other work on a shared machine), for reading the ratios
    drift = large.health.best / small.health.best
    at = f" at {large.stored:,} only" if short else ""
    lines = [f"database growth: {small.stored:,} vs {large.stored:,} stored visits{reached}; filled with raw "
             f"insert_many of API-shaped visits and their record keys: {small_fill:,} in {small_seconds:.0f} s, "
             f"then to {large_fill:,} in {large_seconds:.0f} s ({(large_fill - small_fill) / large_seconds:,.0f}/s); "
             f"{PROBE_CITIZENS} fresh citizens x {PROBE_VISITS} visits per size, activated just now, {large.model}",
             f"  bulk ingestion ({GROWTH_BULK_LINES:,} lines): {large.bulk_rate:,.0f} records/s at {large.stored:,} / "
             f"{small.bulk_rate:,.0f} at {small.stored:,} -> ratio {rate_ratio:.2f} (goal >= 0.8: "
             f"{verdict(rate_ratio >= 0.8)}{at}); /health moved {drift:.2f}x between the two, the ratio over "
             f"it {rate_ratio / drift:.2f} (for reading only)",
             f"  timeline first pages p99: {large.reads.cut(99):.1f} ms at {large.stored:,} / "
             f"{small.reads.cut(99):.1f} ms at {small.stored:,} -> ratio {p99_ratio:.2f} (goal <= 1.5: "
             f"{verdict(p99_ratio <= 1.5 and reads_ok)}{at}); times /health's drift {p99_ratio * drift:.2f} "
             f"(for reading only){small.reads.stopped()}"
             f"{large.reads.stopped()}{errors_text(small.reads)}{errors_text(large.reads)}"]
    for stage in (small, large):
        lines.append(f"    at {stage.stored:,}: first pages {stage.reads.rate:,.1f} req/s, "
                     f"{latency_text(stage.reads)}; {stage.health.describe()}")
    return lines


def sizing_growth(s: Setting, citizens: int = 64, bulk_lines: int = 1_000) -> dict[str, Any]:
    """The audit growth per written record and per page read, on a small scale (``python -m bench.sizing``)."""
    lines = [(json.dumps({"type": "visit", "source_id": f"Z{n:06d}", **_visit(n, national_id(n % 500))},
                         ensure_ascii=False) + "\n").encode() for n in range(500 + bulk_lines)]
    assert _stream_bulk(s.port, s.facility_token, lines[:500]) == 500  # creates the 500 citizens
    growth: dict[str, Any] = {}
    before = sizing.audit_totals(s.uri)
    created = _stream_bulk(s.port, s.facility_token, lines[500:])
    growth.update(sizing.growth_per("per_write", before, s.uri, created))
    probes = list(create_citizens(s.env, range(50_000, 50_000 + citizens)).values())
    seed_visits(s.uri, s.template, probes, 2 * PAGE + 1, "sizing")
    activation = activate_now(s.env, probes)
    before = sizing.audit_totals(s.uri)
    reads = read_each_once(s.port, [first_page(activation.tokens[c]) for c in probes])
    growth.update(sizing.growth_per("per_read", before, s.uri, reads.done))
    return growth


def timed(name: str, section: Callable[[], list[str]]) -> list[str]:
    """A section's lines, headed by how long it took."""
    started = time.perf_counter()
    lines = section()
    return [f"[{name}: {time.perf_counter() - started:.0f} s]", *lines]


def _setting(uri: str, env: dict[str, str], port: int, facility_token: str) -> Setting:
    return Setting(uri, env, port, facility_token, visit_template(uri, port, facility_token))


def run() -> list[str]:
    """All scale benchmarks and the measured sizes; returns the lines to print."""
    deadline = time.perf_counter() + SUITE_BUDGET
    lines: list[str] = []
    growth: dict[str, Any] = {}
    sizes: dict[str, sizing.CollectionSize] = {}
    with database() as uri, tempfile.TemporaryDirectory() as var_dir:
        env = _secrets_env(uri, var_dir)
        token = _in_app(env, SETUP)
        with api_server(env, workers=2, threads=8) as port:
            s = _setting(uri, env, port, token)

            def cold() -> list[str]:
                cold_lines, audit = cold_timeline(s)
                growth.update(audit)
                return cold_lines

            lines += timed("cold timeline", cold)
            lines += timed("record-size growth", lambda: record_size_growth(s))
    with database() as uri, tempfile.TemporaryDirectory() as var_dir:
        env = _secrets_env(uri, var_dir)
        token = _in_app(env, SETUP)
        with api_server(env, workers=2, threads=8) as port:
            s = _setting(uri, env, port, token)
            lines += timed("database growth", lambda: database_growth(s, growth, sizes, deadline))
    sizing.save(sizes, growth)
    return [*lines, "[sizing: measured in the database growth section at its first size]",
            *sizing.describe(sizes, growth), "", *sizing.note(sizes, growth)]


if __name__ == "__main__":
    print("\n".join(run()))
