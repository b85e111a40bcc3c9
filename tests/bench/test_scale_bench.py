"""The scale benchmark's own machinery: each request once, budgets, cursors, seeding, verdicts."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymongo
import pytest
from bson import ObjectId
from pymongo import monitoring

from app.services.identity import cccd_problems
from bench import scale_bench
from bench.records_bench import _secrets_env
from bench.scale_bench import Health, Reads


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the app's server
    seen: list[str] = []
    peers: list[int] = []  # each request's client port: which connection it came on
    lock = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            self.seen.append(self.path)
            self.peers.append(self.client_address[1])
        if self.path.startswith("/drop"):  # hang up without an answer
            self.close_connection = True
            return
        status = 500 if self.path.startswith("/fail") else 200
        body = json.dumps({"path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    """A loopback HTTP server answering every GET with its path (500 under /fail)."""
    _Handler.seen, _Handler.peers = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_read_each_once_makes_every_request_exactly_once(port):
    requests = [(f"/page/{n}", {}) for n in range(100)]
    reads = scale_bench.read_each_once(port, requests, keep_bodies=True)
    assert sorted(_Handler.seen) == sorted(path for path, _ in requests)
    assert reads.done == 100 and not reads.errors and not reads.stopped()
    assert {index: json.loads(body)["path"] for index, body in reads.bodies.items()} == {
        n: f"/page/{n}" for n in range(100)}
    assert reads.rate > 0


def test_read_each_once_counts_failures_as_errors_not_latencies(port):
    reads = scale_bench.read_each_once(port, [("/ok", {}), ("/fail", {})])
    assert reads.done == 1 and len(reads.errors) == 1 and reads.errors[0].startswith("500")


def test_a_phase_past_its_budget_stops_and_says_so(port):
    reads = scale_bench.read_each_once(port, [(f"/p/{n}", {}) for n in range(50)], budget=0)
    assert reads.done == 0 and "STOPPED" in reads.stopped() and "0 of 50" in reads.stopped()


def test_read_repeatedly_cycles_through_the_requests(port):
    reads = scale_bench.read_repeatedly(port, [("/a", {}), ("/b", {})], seconds=0.3)
    assert reads.done == len(_Handler.seen) > 2
    assert set(_Handler.seen) == {"/a", "/b"}


def test_phases_on_kept_connections_reuse_them_and_go_on_after_the_server_drops_one(port):
    with scale_bench.kept_connections(port) as kept:
        scale_bench.read_each_once(port, [(f"/one/{n}", {}) for n in range(64)], connections=kept)
        first = set(_Handler.peers)
        assert len(first) <= scale_bench.CONCURRENCY
        scale_bench.read_each_once(port, [(f"/two/{n}", {}) for n in range(64)], connections=kept)
        scale_bench.read_repeatedly(port, [("/three", {})], seconds=0.2, connections=kept)
        assert set(_Handler.peers) == first  # no new connection: the same workers would serve them
        dropped = scale_bench.read_each_once(port, [("/drop", {})], connections=kept)
        assert dropped.done == 0 and len(dropped.errors) == 1  # the server hung up on one connection
        reads = scale_bench.read_each_once(port, [(f"/four/{n}", {}) for n in range(64)], connections=kept)
        assert reads.done == 64 and not reads.errors  # its slot connects again
        assert len(set(_Handler.peers[-64:]) - first) <= 1


def test_next_page_follows_the_cursor_of_the_body():
    path, headers = scale_bench.next_page("T", json.dumps({"items": [], "next_cursor": "eyJ0Ijoi+/="}).encode())
    assert path == "/api/v1/me/visits?limit=20&cursor=eyJ0Ijoi%2B%2F%3D"
    assert headers == {"Authorization": "Bearer T"}
    assert scale_bench.next_page("T", b'{"items": [], "next_cursor": null}') is None


def test_percentiles_and_the_ratio_line_verdicts():
    reads = Reads(wanted=100, latencies=[float(n) for n in range(1, 101)], seconds=10.0)
    assert reads.rate == 10.0 and reads.cut(50) == pytest.approx(50.5) and reads.cut(99) == pytest.approx(99.01)
    health = Health(runs=[20.0, 25.0])
    first, spread = scale_bench.ratio_line("x", reads, health, 0.3)
    assert "ratio 0.400 (goal >= 0.3: met)" in first and "better of 20 and 25" in first
    assert "(goal < 10: met)" in spread
    assert "NOT met" in scale_bench.ratio_line("x", reads, health, 0.5)[0]
    stopped = Reads(wanted=200, latencies=reads.latencies, seconds=10.0)
    assert "goal >= 0.3: NOT met) (STOPPED" in scale_bench.ratio_line("x", stopped, health, 0.3)[0]
    failed = Reads(wanted=100, latencies=reads.latencies[:99], errors=["500 b''"], seconds=10.0)
    assert "NOT met" in scale_bench.ratio_line("x", failed, health, 0.3)[0]
    slow_tail = Reads(wanted=100, latencies=[1.0] * 98 + [50.0, 50.0], seconds=1.0)
    assert "(goal < 10: NOT met)" in scale_bench.ratio_line("x", slow_tail, health, 0.3)[1]


def test_visit_copies_are_distinct_newest_first_and_leave_the_template_alone():
    template = {"_id": ObjectId(), "citizen_id": ObjectId(), "source_id": "T", "diagnoses": [{"code": "J20.9"}],
                "started_at": datetime(2020, 1, 1, tzinfo=UTC)}
    original = dict(template)
    citizen, newest = ObjectId(), datetime(2026, 6, 1, tzinfo=UTC)
    copies = list(scale_bench.visit_copies(template, citizen, 5, "x", newest))
    assert template == original
    assert len({copy["_id"] for copy in copies}) == 5 and len({copy["source_id"] for copy in copies}) == 5
    assert all(copy["citizen_id"] == citizen and copy["diagnoses"] == [{"code": "J20.9"}] for copy in copies)
    assert [copy["started_at"] for copy in copies] == [newest - timedelta(hours=36 * n) for n in range(5)]


def test_insert_batched_inserts_all_or_stops_after_the_batch_past_its_deadline(bench_uri):
    with pymongo.MongoClient(bench_uri) as client:
        collection = client.get_default_database().things
        assert scale_bench.insert_batched(collection, ({"n": n} for n in range(2_500)), batch=1_000) == 2_500
        assert scale_bench.insert_batched(collection, ({"n": n} for n in range(2_500)), batch=1_000,
                                          deadline=0.0) == 1_000
        assert collection.count_documents({}) == 3_500


def test_the_raw_visit_fetches_fetch_each_citizens_page_once(bench_uri):
    template = {"source_id": "T", "diagnoses": [{"code": "J20.9"}], "lab_results": [{"name": "x"}]}
    full, short = ObjectId(), ObjectId()
    newest = datetime(2026, 6, 1)
    with pymongo.MongoClient(bench_uri) as client:
        visits = client.get_default_database().visits
        visits.insert_many([*scale_bench.visit_copies(template, full, 30, "f", newest),
                            *scale_bench.visit_copies(template, short, 5, "s", newest)])
    reads = scale_bench.raw_visit_fetches(bench_uri, [full, full, short])
    assert reads.done == 2 and reads.rate > 0  # a range holding the 20 newest, fetched each time
    assert reads.errors == ["5 visits in a page's range"]


def test_the_raw_first_pages_read_each_citizens_index_document(bench_uri):
    full, short, missing = ObjectId(), ObjectId(), ObjectId()
    with pymongo.MongoClient(bench_uri) as client:
        indexes = client.get_default_database().list_index
        indexes.insert_many([{"_id": full, "lists": {"visits": bytes(32 * 25)}, "rows": {"visits": b"r"}},
                             {"_id": short, "lists": {"visits": bytes(32 * 5)}, "rows": {"visits": b"r"}}])
    reads = scale_bench.raw_first_pages(bench_uri, [full, full, short, missing])
    assert reads.done == 2 and reads.rate > 0
    assert sorted(reads.errors) == ["0 keys and rows", "5 keys and rows"]


def test_the_floor_reads_each_citizen_and_index_and_stores_an_audit_event_each_in_a_twin_it_drops(bench_uri):
    full, short, unknown = ObjectId(), ObjectId(), ObjectId()
    with pymongo.MongoClient(bench_uri) as client:
        db = client.get_default_database()
        assert scale_bench.raw_floor_pages(bench_uri, [full]).errors == ["no visits.list audit event to copy"]
        db.citizens.insert_many([{"_id": full}, {"_id": short}])
        db.list_index.insert_many([{"_id": full, "lists": {"visits": bytes(32 * 25)}},
                                   {"_id": short, "lists": {"visits": bytes(32 * 5)}}])
        db.audit_events.create_index([("citizen_ids", 1), ("seq", 1)], name="citizen")
        db.audit_events.insert_one({"action": "visits.list", "citizen_ids": [short], "seq": 1})
        watched: list[dict] = []
        twin_indexes: list[dict] = []

        class TwinCommands(monitoring.CommandListener):  # (global: it only looks at the twin's commands)
            def started(self, event):
                if event.command.get(event.command_name) != scale_bench.FLOOR_EVENTS:
                    return
                if event.command_name == "insert":
                    watched.extend(event.command["documents"])
                elif event.command_name == "createIndexes":
                    twin_indexes.extend(event.command["indexes"])

            def succeeded(self, event):
                pass

            def failed(self, event):
                pass

        monitoring.register(TwinCommands())
        reads = scale_bench.raw_floor_pages(bench_uri, [full, full, short, unknown])
        assert reads.done == 2 and reads.rate > 0
        assert sorted(reads.errors) == ["citizen found False, 0 keys", "citizen found True, 5 keys"]
        assert sorted(str(event["citizen_id"]) for event in watched) == sorted(map(str, [full, full, short, unknown]))
        assert all(event["action"] == "visits.list" and event["citizen_ids"] == [event["citizen_id"]]
                   for event in watched)
        assert [index["name"] for index in twin_indexes] == ["citizen"]  # the trail's own, beside _id
        assert scale_bench.FLOOR_EVENTS not in db.list_collection_names()
        assert db.audit_events.count_documents({}) == 1  # the trail itself is left alone


def test_two_phases_joined_count_their_requests_over_their_summed_time():
    first = Reads(wanted=3, latencies=[1.0, 2.0], errors=["500"], seconds=2.0)
    second = Reads(wanted=2, latencies=[3.0, 4.0], seconds=1.0)
    both = first.joined(second)
    assert (both.wanted, both.done, both.errors, both.seconds) == (5, 4, ["500"], 3.0)
    assert both.rate == 4 / 3 and both.stopped() == ""
    assert Reads(wanted=4, latencies=[1.0], seconds=1.0).joined(second).stopped().startswith(" (STOPPED")


def test_bench_citizens_have_distinct_national_ids_the_app_accepts():
    ids = {scale_bench.scale_national_id(n) for n in (0, 1, 999_999)}
    assert len(ids) == 3
    assert all(cccd_problems(value, date(1990, 5, 1), "female") == [] for value in ids)


def test_citizens_are_created_by_the_app_and_activated_now_with_a_token_each(bench_uri, tmp_path):
    env = _secrets_env(bench_uri, str(tmp_path))
    created = scale_bench.create_citizens(env, range(3))
    assert set(created) == {scale_bench.scale_national_id(n) for n in range(3)}
    assert scale_bench.create_citizens(env, range(3)) == created  # found, not created twice
    activation = scale_bench.activate_now(env, list(created.values()))
    assert set(activation.tokens) == set(created.values()) and len(set(activation.tokens.values())) == 3
    # the read model is built exactly when the app has one ("before" and "after" say which they are)
    assert (importlib.util.find_spec("app.services.list_index") is None) == (activation.built_seconds is None)
    with pymongo.MongoClient(bench_uri) as client:
        stored = list(client.get_default_database().citizens.find({"_id": {"$in": list(created.values())}}))
    assert len(stored) == 3 and all(c["state"] == "active" for c in stored)
    assert all(datetime.now(UTC) - c["activated_at"].replace(tzinfo=UTC) < timedelta(minutes=2) for c in stored)
