"""The query-shape recorder (``tests/query_shapes.py``): what it attributes to the app, how it shapes
filters, which shapes fail the run, and that a run with a scattering query exits failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pymongo
import pytest
from bson import ObjectId

from app.infra import embedded_quirks
from app.infra.shard_keys import ScatterAllowed
from tests.query_shapes import RECORDER, ROOT, QueryShapeRecorder, Shape, filters_of, offences, report_lines, shape_of

APP_READ = "app.infra.embedded_quirks:read_back_if_null"


@pytest.fixture
def recorded(mongodb_server: str, pytestconfig: pytest.Config) -> Iterator[
        tuple[QueryShapeRecorder, pymongo.database.Database]]:
    """A recorder listening to a client of its own, and a scratch database on that client that the
    session's recorder leaves out (these tests send scattering queries on purpose)."""
    recorder = QueryShapeRecorder(ROOT)
    client: pymongo.MongoClient = pymongo.MongoClient(mongodb_server, event_listeners=[recorder])
    name = f"shapes_{ObjectId()}"
    pytestconfig.stash[RECORDER].ignore_database(name)
    yield recorder, client[name]
    client.drop_database(name)
    client.close()


def test_a_query_from_app_code_is_recorded_with_its_location(recorded):
    recorder, db = recorded
    embedded_quirks.read_back_if_null(None, db.visits, {"_id": ObjectId(), "version": 3}, ["version"])
    [shape] = recorder.shapes.values()
    assert (shape.collection, shape.command, shape.location) == ("visits", "find", APP_READ)
    assert shape.filter == {"_id": "ObjectId", "version": "int"}
    assert shape.count == 1 and not shape.pinned
    [(stack, count)] = shape.callers.items()
    assert stack[0] == APP_READ and count == 1  # the test that called it is not part of the stack


def test_a_query_from_test_code_is_not_recorded(recorded):
    recorder, db = recorded
    db.visits.find_one({"_id": ObjectId()})
    db.visits.update_one({"_id": ObjectId()}, {"$set": {"a": 1}})
    assert recorder.shapes == {}


def test_a_query_from_an_app_thread_is_recorded(recorded):
    recorder, db = recorded
    thread = threading.Thread(target=embedded_quirks.read_back_if_null,
                              args=(None, db.sessions, {"citizen_id": ObjectId()}, []))
    thread.start()
    thread.join()
    [shape] = recorder.shapes.values()
    assert shape.location == APP_READ and shape.pinned


def test_the_same_shape_is_counted_once_per_query(recorded):
    recorder, db = recorded
    for _ in range(3):
        embedded_quirks.read_back_if_null(None, db.shares, {"code_hash": "h"}, [])
    embedded_quirks.read_back_if_null(None, db.shares, {"code_hash": "another value, same shape"}, [])
    [shape] = recorder.shapes.values()
    assert shape.count == 4 and shape.filter == {"code_hash": "str"}


def test_shape_of_keeps_fields_and_operators_and_types_values():
    query = {"citizen_id": ObjectId(), "t": {"$gte": datetime(2026, 1, 1, tzinfo=UTC), "$lt": 5},
             "$and": [{"kind": {"$in": ["visit", "immunization", 3]}}], "flags": []}
    assert shape_of(query) == {
        "$and": [{"kind": {"$in": ["str", "int"]}}],
        "citizen_id": "ObjectId",
        "flags": [],
        "t": {"$gte": "datetime", "$lt": "int"},
    }


def test_filters_of_each_query_command():
    q1, q2 = {"_id": 1}, {"citizen_id": 2}
    assert filters_of("find", {"find": "v", "filter": q1}) == [q1]
    assert filters_of("find", {"find": "v"}) == [{}]
    assert filters_of("update", {"update": "v", "updates": [{"q": q1, "u": {}}, {"q": q2, "u": {}}]}) == [q1, q2]
    assert filters_of("delete", {"delete": "v", "deletes": [{"q": q2, "limit": 1}]}) == [q2]
    assert filters_of("findAndModify", {"findAndModify": "v", "query": q1}) == [q1]
    assert filters_of("count", {"count": "v", "query": q2}) == [q2]
    assert filters_of("distinct", {"distinct": "v", "key": "k"}) == [{}]
    assert filters_of("aggregate", {"aggregate": "v", "pipeline": [{"$match": q2}, {"$count": "n"}]}) == [q2]
    assert filters_of("aggregate", {"aggregate": "v", "pipeline": [{"$group": {"_id": 1}}]}) == [{}]


def _shape(collection: str, query: dict, *stacks: tuple[str, ...]) -> Shape:
    recorder = QueryShapeRecorder(ROOT)
    for stack in stacks:
        recorder.record(collection, "find", [query], stack)
    return next(iter(recorder.shapes.values()))


def test_a_scatter_on_a_sharded_collection_offends():
    shape = _shape("sessions", {"token_hash": "x"}, ("app.services.sessions:refresh",))
    [offence] = offences([shape], allowed=())
    assert offence.why == "scatters" and offence.count == 1
    assert "sessions.find" in "\n".join(report_lines([offence]))


def test_pinned_and_unsharded_shapes_do_not_offend():
    pinned = _shape("sessions", {"citizen_id": ObjectId(), "token_hash": "x"}, ("app.services.sessions:refresh",))
    unsharded = _shape("facilities", {"name": "x"}, ("app.services.facilities:search",))
    assert offences([pinned, unsharded], allowed=()) == []


def test_an_allowed_location_anywhere_on_the_stack_covers_that_stack_only():
    allowed = [ScatterAllowed("app.services.audit_log:search", "audit_events", "an admin search, paged")]
    shape = _shape("audit_events", {"actor_id": "x"},
                   ("app.services.paging:newest_first", "app.services.audit_log:search"),
                   ("app.services.paging:newest_first", "app.services.access_log:entries"))
    [offence] = offences([shape], allowed=allowed)
    assert [stack for stack, _ in offence.callers] == [
        ("app.services.paging:newest_first", "app.services.access_log:entries")]
    only_admin = _shape("audit_events", {"actor_id": "x"},
                        ("app.services.paging:newest_first", "app.services.audit_log:search"))
    assert offences([only_admin], allowed=allowed) == []


def test_an_allowed_location_covers_its_own_collection_only():
    allowed = [ScatterAllowed("app.services.delivery:claim", "notifications", "the worker claims a batch")]
    shape = _shape("visits", {"status": "x"}, ("app.services.delivery:claim",))
    assert len(offences([shape], allowed=allowed)) == 1


def test_a_query_to_an_undeclared_collection_offends():
    shape = _shape("scratchpad", {"citizen_id": ObjectId()}, ("app.services.x:y",))
    [offence] = offences([shape], allowed=())
    assert offence.why == "undeclared collection"


INNER_TEST = """
from bson import ObjectId
import pymongo
from app.infra import embedded_quirks

def test_one_query():
    client = pymongo.MongoClient({uri!r})
    embedded_quirks.read_back_if_null(None, client[{db!r}].{collection}, {query}, [])
    client.close()
"""


def _inner_run(tmp_path: Path, server: str, collection: str, query: str,
               out: Path | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """A pytest run of its own, with only the recorder plugin, over one test that sends one query
    (the shapes written to ``out``, or without a cache directory to /tmp): its result and the shapes."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TEST.format(
        uri=server, db=f"inner_{ObjectId()}", collection=collection, query=query)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HOSO_QUERY_SHAPES_OUT", None)
    if out is not None:
        env["HOSO_QUERY_SHAPES_OUT"] = str(out)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.query_shapes", "-p", "no:cacheprovider",
                          "test_inner.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    written = Path(run.stdout.rsplit(", written to ", 1)[-1].split()[0])
    shapes = json.loads(written.read_text())
    if out is None:
        written.unlink()
    return run, shapes


def test_a_run_with_a_scattering_query_fails_and_names_it(tmp_path, mongodb_server):
    run, written = _inner_run(tmp_path, mongodb_server, "shares", '{"code_hash": "h"}', tmp_path / "shapes.json")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "query shapes that do not pin the shard key" in run.stdout
    assert f'{APP_READ}:\n  shares.find {{"code_hash":"str"}}  x1' in run.stdout
    [shape] = written["shapes"]
    assert shape["offending"] and shape["location"] == APP_READ and shape["callers"][0]["count"] == 1


def test_a_run_whose_queries_pin_their_keys_passes(tmp_path, mongodb_server):
    run, written = _inner_run(tmp_path, mongodb_server, "shares", '{"citizen_id": ObjectId()}')
    assert run.returncode == 0, run.stdout + run.stderr
    assert "query shapes: 1 recorded, written to /tmp/hoso-query-shapes-" in run.stdout
    assert [shape["pins_shard_key"] for shape in written["shapes"]] == [True]
