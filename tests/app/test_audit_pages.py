"""Access-log entries per citizen, and bounded pages of the access log and of the admin's audit list."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import mongoengine
import pytest
from bson import ObjectId
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.collection import Collection

from app.models.access_log import AccessLogEntry
from app.models.audit import AuditCounter, AuditEvent
from app.models.list_index import ListIndex
from app.services import access_log, audit, audit_log, list_index
from app.services.audit import Actor, RequestContext
from app.services.paging import InvalidCursor, encode_cursor

T0 = datetime(2026, 6, 1, 8, 0)
DOCTOR = Actor("facility_client", "client-1", "Bệnh viện", "01001")


def ctx(actor: Actor = DOCTOR, now: datetime = T0) -> RequestContext:
    return RequestContext(actor=actor, now=now, request_id="test")


def citizen_actor(citizen: ObjectId) -> Actor:
    return Actor("citizen", str(citizen), "Citizen")


def entries_of(citizen: ObjectId) -> list[dict[str, Any]]:
    return list(AccessLogEntry._get_collection().find({"citizen_id": citizen}))


def index_keys(citizen: ObjectId) -> list[bytes]:
    document = ListIndex._get_collection().find_one({"_id": citizen}) or {}
    return list(list_index.stored_keys(document.get("lists", {}).get("access_log")))


def test_a_read_by_another_stores_one_entry_with_the_event(app: Flask) -> None:
    citizen = ObjectId()
    list_index.build([citizen], T0)
    event_id = audit.record(ctx(), "visit.read", citizen_id=citizen, target_type="visit", target_id="v1",
                            access="read", reason="khám")
    (entry,) = entries_of(citizen)
    event = AuditEvent._get_collection().find_one({"_id": event_id})
    assert entry["event_id"] == event_id and entry["at"] == event["at"] and entry["citizen_id"] == citizen
    assert index_keys(citizen) == [list_index.key(entry["at"], entry["_id"])]
    AccessLogEntry(**{("id" if k == "_id" else k): v for k, v in entry.items()}).validate()


def test_own_reads_and_non_accesses_store_no_entry(app: Flask) -> None:
    citizen = ObjectId()
    audit.record(ctx(citizen_actor(citizen)), "visits.list", citizen_id=citizen, access="read")
    audit.record(ctx(citizen_actor(citizen)), "citizen.login", citizen_id=citizen, target_type="session")
    audit.record(ctx(), "support.lock", citizen_id=citizen)  # not an access to the record
    assert entries_of(citizen) == []
    audit.record(ctx(citizen_actor(citizen)), "immunization.reaction_report", citizen_id=citizen, access="write")
    (entry,) = entries_of(citizen)
    assert AuditEvent._get_collection().find_one({"_id": entry["event_id"]})["action"] == "immunization.reaction_report"


def test_a_bulk_write_stores_one_entry_per_active_citizen_and_the_pending_get_theirs_when_read(app: Flask) -> None:
    readable = [ObjectId() for _ in range(30)]
    pending = [ObjectId() for _ in range(40)]
    list_index.build(readable, T0)
    concerned = readable + pending + readable[:5]  # a citizen named twice still gets one entry
    (event_id,) = audit.store_all([audit.event_document(ctx(), "visit.create", citizen_ids=concerned,
                                                        target_type="visit", access="write")],
                                  not_indexed=pending, read_at=T0)
    for citizen in readable:
        (entry,) = entries_of(citizen)
        assert entry["event_id"] == event_id and len(index_keys(citizen)) == 1
    assert all(entries_of(citizen) == [] for citizen in pending)  # most never use the app
    assert ListIndex._get_collection().count_documents({"_id": {"$in": pending}}) == 0
    # activated later: the first read of their access log fills it from the audit trail, once
    activated = pending[0]
    list_index.build([activated], T0 + timedelta(days=1))
    page, _ = access_log.access_log(activated, 10, None, T0 + timedelta(days=1))
    assert [entry.event_id for entry in page] == [event_id] and len(entries_of(activated)) == 1
    assert ListIndex._get_collection().find_one({"_id": activated})["counters"][audit.FILLED] == 1
    again, _ = access_log.access_log(activated, 10, None, T0 + timedelta(days=1))
    assert [entry.event_id for entry in again] == [event_id] and len(entries_of(activated)) == 1


def test_an_upload_that_read_a_citizen_as_pending_writes_their_entry_once_they_are_filled(app: Flask) -> None:
    citizen = ObjectId()
    list_index.build([citizen], T0 + timedelta(seconds=5))  # activated after the upload read them
    access_log.access_log(citizen, 10, None, T0 + timedelta(seconds=5))  # filled: nothing yet
    (event_id,) = audit.store_all([audit.event_document(ctx(), "visit.create", citizen_ids=[citizen, ObjectId()],
                                                        access="write")], not_indexed=[citizen], read_at=T0)
    assert [entry["event_id"] for entry in entries_of(citizen)] == [event_id]
    assert len(index_keys(citizen)) == 1
    assert audit.fill_access_log(citizen, T0 + timedelta(seconds=6)) == 1  # a fill again finds it stored
    assert len(entries_of(citizen)) == 1 and len(index_keys(citizen)) == 1
    # and the other order: stored before the fill, read by it (no entry twice)
    other = ObjectId()
    (second,) = audit.store_all([audit.event_document(ctx(), "visit.create", citizen_ids=[other, citizen],
                                                      access="write")], not_indexed=[other], read_at=T0)
    list_index.build([other], T0 + timedelta(days=2))
    page, _ = access_log.access_log(other, 10, None, T0 + timedelta(days=2))
    assert [entry.event_id for entry in page] == [second] and len(entries_of(other)) == 1
    assert len(index_keys(citizen)) == 2 and len(index_keys(other)) == 1  # each entry reported once
    assert audit.copy_missing_entries(0, 10**9) == 4 and len(entries_of(citizen)) == 2  # idempotent


def test_events_are_numbered_densely_per_batch(app: Flask) -> None:
    trail = audit.AuditTrail()
    ids = [trail.store(audit.event_document(ctx(), "test.event")) for _ in range(3)]
    ids += audit.store_all([audit.event_document(ctx(), "test.batch") for _ in range(4)])
    numbers = [AuditEvent._get_collection().find_one({"_id": i})["seq"] for i in ids]
    assert numbers == list(range(numbers[0], numbers[0] + 7))
    assert AuditCounter._get_collection().find_one({"_id": "audit_events"})["value"] == numbers[-1]


def test_missing_entries_are_copied_again_once(app: Flask) -> None:
    citizen = ObjectId()
    list_index.build([citizen], T0)
    event_id = audit.record(ctx(), "visit.read", citizen_id=citizen, access="read")
    seq = AuditEvent._get_collection().find_one({"_id": event_id})["seq"]
    AccessLogEntry._get_collection().delete_many({"citizen_id": citizen})  # as if it crashed between
    assert audit.copy_missing_entries(seq, seq) == 1
    assert audit.copy_missing_entries(seq, seq) == 1 and len(entries_of(citizen)) == 1
    assert [entry["event_id"] for entry in entries_of(citizen)] == [event_id]


def test_events_from_before_numbers_are_numbered_below_and_listed_last(app: Flask) -> None:
    collection = AuditEvent._get_collection()
    old = [{"_id": ObjectId(), "at": T0 - timedelta(days=n), "actor_type": "system", "action": "old",
            "outcome": "success", "citizen_ids": []} for n in range(5)]
    collection.insert_many([dict(document) for document in old])
    new = audit.store_all([audit.event_document(ctx(), "new") for _ in range(3)])
    assert audit.number_unnumbered(chunk=2) == 5
    assert audit.number_unnumbered() == 0
    listed = _all_pages({}, 2)
    assert [event.id for event in listed] == new[::-1] + [document["_id"] for document in old]


def _all_pages(filters: dict[str, Any], limit: int) -> list[AuditEvent]:
    found: list[AuditEvent] = []
    cursor = None
    for _ in range(10_000):
        page, cursor = audit_log.search(filters, cursor, limit)
        assert len(page) <= limit
        found += page
        if cursor is None:
            return found
    raise AssertionError("the pages did not end")


def _clear() -> None:
    for model in (AuditEvent, AccessLogEntry, AuditCounter, ListIndex):
        model._get_collection().delete_many({})


times = st.integers(min_value=0, max_value=20).map(lambda minutes: T0 + timedelta(minutes=minutes))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(times, st.sampled_from(["a.read", "b.read"]), st.booleans()), min_size=0, max_size=40),
       st.integers(min_value=1, max_value=7), st.integers(min_value=1, max_value=9))
def test_pages_are_right_across_all_pages(app: Flask, monkeypatch: pytest.MonkeyPatch,
                                          events: list[tuple[datetime, str, bool]], limit: int, window: int) -> None:
    """Every event once, newest first, whatever the page size, ties and window size; a filtered page
    may be short but the pages together are the filtered list."""
    _clear()
    monkeypatch.setattr(audit_log, "WINDOW", window)
    monkeypatch.setattr(audit_log, "PREFIX_WINDOW", window)
    citizen, other = ObjectId(), ObjectId()
    list_index.build([citizen], T0)
    stored = []
    for moment, action, mine in events:
        actor = citizen_actor(citizen) if mine and action == "b.read" else DOCTOR
        stored.append(audit.record(ctx(actor, moment), action, citizen_id=citizen if mine else other, access="read"))
    assert [event.id for event in _all_pages({}, limit)] == stored[::-1]
    assert [event.id for event in _all_pages({"action": "a.read"}, limit)] == [
        i for i, (_, action, _) in zip(stored, events, strict=True) if action == "a.read"][::-1]
    assert [event.id for event in _all_pages({"citizen_id": str(citizen)}, limit)] == [
        i for i, (_, _, mine) in zip(stored, events, strict=True) if mine][::-1]
    # the access log: others' reads of the citizen, newest first by time then entry
    newest_first = sorted(entries_of(citizen), key=lambda entry: (entry["at"], entry["_id"]), reverse=True)
    expected = [entry["event_id"] for entry in newest_first]
    assert len(expected) == sum(1 for moment, action, mine in events if mine and action == "a.read")
    listed: list[AccessLogEntry] = []
    cursor = None
    while True:
        page, cursor = access_log.access_log(citizen, limit, cursor, T0)
        assert len(page) <= limit
        listed += page
        if cursor is None:
            break
    assert [entry.event_id for entry in listed] == expected
    by_id = {event.id: event for event in AuditEvent.objects(id__in=expected)}
    for entry in listed:  # each entry shows what its event says
        event = by_id[entry.event_id]
        assert (entry.at, entry.access, entry.action, entry.actor_type, entry.actor_label, entry.facility_code,
                entry.outcome) == (event.at, event.access, event.action, event.actor_type, event.actor_label,
                                   event.facility_code, event.outcome)


def test_bad_cursors_are_refused(app: Flask) -> None:
    audit.record(ctx(), "test.event")
    for bad in (encode_cursor({"s": "x"}), encode_cursor({"t": "x", "id": "y"}), encode_cursor({"s": "1" * 30})):
        with pytest.raises(InvalidCursor):
            audit_log.search({}, bad, 5)
    for bad_position in ({"t": "not a time", "id": str(ObjectId())}, {"t": T0.isoformat(), "id": "nope"}):
        with pytest.raises(InvalidCursor):
            access_log.access_log(ObjectId(), 5, bad_position, T0)


@contextmanager
def finds(collection_name: str) -> Iterator[list[dict[str, Any]]]:
    """The filters of every find sent to one collection in the block."""
    sent: list[dict[str, Any]] = []
    original = Collection.find

    def recording(self: Collection, filter: Any = None, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        if self.name == collection_name:
            sent.append(filter)
        return original(self, filter, *args, **kwargs)

    Collection.find = recording  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Collection.find = original  # type: ignore[method-assign]


def explained(collection: str, query: dict[str, Any]) -> dict[str, Any]:
    result = mongoengine.get_db().command("explain", {"find": collection, "filter": query},
                                          verbosity="executionStats")
    return result


def _stages(plan: dict[str, Any]) -> list[str]:
    found = [plan.get("stage", "")]
    for child in ("inputStage", "queryPlan", "winningPlan"):
        if isinstance(plan.get(child), dict):
            found += _stages(plan[child])
    for child in plan.get("inputStages", []):
        found += _stages(child)
    return found


def assert_bounded(collection: str, queries: list[dict[str, Any]], limit: int) -> None:
    assert queries
    for query in queries:
        result = explained(collection, query)
        stages = _stages(result.get("queryPlanner", {}).get("winningPlan", {}))
        examined = result["executionStats"]["totalDocsExamined"]
        assert "COLLSCAN" not in stages and "IXSCAN" in stages, (query, stages)
        assert examined <= limit + 5, (query, examined)


def test_first_and_second_pages_read_a_bounded_number_of_documents(app: Flask) -> None:
    limit = 20
    citizen = ObjectId()
    others = [ObjectId() for _ in range(20)]
    list_index.build([citizen], T0)
    start = T0 - timedelta(days=400)
    documents = []
    for n in range(300):  # the citizen's large log, and many other citizens' events between its entries
        moment = start + timedelta(hours=n)
        documents.append(audit.event_document(ctx(now=moment), "visit.read", citizen_id=citizen, access="read"))
        documents += [audit.event_document(ctx(now=moment), "visit.read", citizen_id=other, access="read")
                      for other in others[: n % 4]]
        if n % 50 == 0:
            documents.append(audit.event_document(ctx(now=moment), "visit.create", access="write",
                                                  citizen_ids=[citizen, *others]))
    audit.store_all(documents)
    with finds("audit_events") as sent:  # the one fill of the citizen's log (their first read)
        access_log.access_log(citizen, limit, None, T0)
    fill = sent[0]
    assert explained("audit_events", fill)["queryPlanner"]["winningPlan"]["inputStage"]["indexName"] == "citizen"
    with finds("access_log") as sent, finds("audit_events") as events_sent:
        first, cursor = access_log.access_log(citizen, limit, None, T0)
        second, _ = access_log.access_log(citizen, limit, cursor, T0)
    assert len(first) == len(second) == limit and first[-1].at > second[0].at
    assert_bounded("access_log", sent, limit)
    assert events_sent == []  # a page is its entries: one index range of the citizen's shard
    with finds("audit_events") as sent:
        first_events, next_cursor = audit_log.search({}, None, limit)
        second_events, _ = audit_log.search({}, next_cursor, limit)
    assert len(first_events) == len(second_events) == limit
    assert first_events[-1].seq == second_events[0].seq + 1
    assert_bounded("audit_events", sent, limit)
    # a filtered window reads its own index: a citizen's or an actor's events in the window only
    with finds("audit_events") as sent:
        audit_log.search({"citizen_id": str(others[0]), "action": "visit.read"}, None, limit)
        audit_log.search({"actor_id": "nobody", "outcome": "success"}, None, limit)
    for query in sent:
        stages = _stages(explained("audit_events", query)["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in stages, (query, stages)
        assert set(query) <= {"seq", "citizen_ids", "actor_id"}, query  # nothing outside the index
        index = explained("audit_events", query)["queryPlanner"]["winningPlan"]["inputStage"]["indexName"]
        assert index == ("citizen" if "citizen_ids" in query else "actor_id_1_seq_1"), (query, index)


def test_the_access_log_through_the_api_keeps_its_fields(client, world) -> None:  # type: ignore[no-untyped-def]
    alice = world["alice"]
    answer = client.get("/api/v1/me/access-log?limit=2", headers=alice.headers).json
    assert set(answer) == {"items", "next_cursor"} and len(answer["items"]) == 2
    for item in answer["items"]:
        assert set(item) == {"id", "at", "access", "action", "actor_type", "actor_label", "facility_code",
                             "facility_name", "outcome"}
        assert AuditEvent.objects(id=item["id"]).count() == 1  # the id is the audit event's
    rest = client.get(f"/api/v1/me/access-log?limit=100&cursor={answer['next_cursor']}", headers=alice.headers)
    ids = [item["id"] for item in answer["items"] + rest.json["items"]]
    assert len(ids) == len(set(ids)) and rest.json["next_cursor"] is None
    bad = client.get("/api/v1/me/access-log?cursor=" + encode_cursor({"t": "x", "id": "y"}), headers=alice.headers)
    assert bad.status_code == 422 and bad.json["errors"] == {"cursor": ["Not a valid cursor."]}


def test_the_audit_commands_number_and_repair(app: Flask) -> None:
    citizen = ObjectId()
    AuditEvent._get_collection().insert_one({"at": T0, "actor_type": "system", "action": "old",
                                             "outcome": "success", "citizen_ids": []})
    event_id = audit.record(ctx(), "visit.read", citizen_id=citizen, access="read")
    seq = AuditEvent._get_collection().find_one({"_id": event_id})["seq"]
    AccessLogEntry._get_collection().delete_many({})
    runner = app.test_cli_runner()
    numbered = runner.invoke(args=["audit", "number"])
    assert numbered.exit_code == 0 and "numbered 1 events" in numbered.output
    repaired = runner.invoke(args=["audit", "entries", str(seq), str(seq)])
    assert repaired.exit_code == 0 and "wrote 1 entries" in repaired.output
    assert AuditEvent._get_collection().count_documents({"seq": {"$exists": False}}) == 0
    assert [entry["event_id"] for entry in entries_of(citizen)] == [event_id]


def test_a_time_filter_reads_only_windows_near_its_times(app: Flask) -> None:
    """300 days of events stored in order: from/to jump to their windows (a binary search), the
    answer is exactly the events in range, and far fewer windows are read than the trail holds."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    documents = [audit.event_document(ctx(now=(start + timedelta(hours=n)).replace(tzinfo=None)), "test.tick")
                 for n in range(300 * 24)]
    for chunk in range(0, len(documents), 1000):
        audit.store_all(documents[chunk:chunk + 1000])
    hanoi = timezone(timedelta(hours=7))
    since, until = datetime(2025, 3, 1, 7, tzinfo=hanoi), datetime(2025, 3, 4, 7, tzinfo=hanoi)  # 72 hours
    with finds("audit_events") as sent:
        listed = _all_pages({"from_": since, "to": until}, 100)
    expected = [d["_id"] for d in documents if since <= d["at"].replace(tzinfo=UTC) < until][::-1]
    assert [event.id for event in listed] == expected and len(expected) == 72
    windows = [query for query in sent if query["seq"]["$lt"] - query["seq"]["$gte"] > audit_log.PROBE]
    assert len(windows) <= 4  # the 72 hours and the day either side: 3 x 24 + 2 x 24 numbers, 1 window
    assert all(query["seq"]["$lt"] - query["seq"]["$gte"] <= audit_log.WINDOW for query in windows)
    assert len(sent) < 80  # the probes of two binary searches and the windows
    for query in sent[-3:]:
        assert explained("audit_events", query)["executionStats"]["totalDocsExamined"] <= audit_log.WINDOW
    assert _all_pages({"to": start}, 10) == [] and _all_pages({"from_": start + timedelta(days=400)}, 10) == []
