"""Every page of a citizen's lists costs the page, whatever the size of the record, and is right.

The embedded server reads every document a filter matches before it sorts and cuts (see
``app.services.list_index``), so each page's filters are run again with
``explain("executionStats")``: none may scan a collection, and together they may examine at
most the page and a few items sharing its end times. The pages themselves are checked against a
plain sort of the stored documents: all of them, through the API, and (a hypothesis property)
through the services for random times with many ties, facilities, filters and page sizes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.models.citizen import Citizen
from app.models.notification import Notification
from app.models.records import VOIDED, Immunization, Visit
from app.services import inbox, list_index, timeline
from app.services.ingest.writes import RecordWrites
from tests.helpers import line, system_context, upload
from tests.records_data import immunization_body, visit_body

V1 = "/api/v1"
LIMIT = 20
SLACK = 5
BIG = 300
VN = "+07:00"


def _moments(rng: random.Random, count: int, tied: int) -> list[datetime]:
    """``count`` times in 2024 (Vietnam time), ``tied`` of them one instant."""
    start = datetime(2024, 1, 1, 8, tzinfo=UTC)
    moments = [start + timedelta(minutes=rng.randrange(0, 500_000)) for _ in range(count - tied)]
    return moments + [start + timedelta(days=100)] * tied


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "+00:00"


@pytest.fixture
def big(client, world) -> dict[str, Any]:
    """Alice with 300 visits (two facilities, half prescribing, 40 at one instant), 300
    vaccinations and an inbox of hundreds of messages (each upload notifies its records at one
    instant); Bob with his own records interleaved in time."""
    rng = random.Random(15)
    visits = _moments(rng, BIG, 40)
    for facility, headers in (("01001", world["hanoi"]), ("79001", world["saigon"])):
        lines = [line("visit", f"BIG-{facility}-{n}", visit_body(
            started_at=_iso(moment), ended_at=None, follow_up_date=None, lab_results=None,
            prescriptions=None if n % 2 else visit_body()["prescriptions"]))
            for n, moment in enumerate(visits) if (n % 2 == 0) == (facility == "01001")]
        lines += [line("visit", f"BOB-{facility}-{n}", visit_body(
            serial=222222, started_at=_iso(moment), ended_at=None, follow_up_date=None, lab_results=None))
            for n, moment in enumerate(_moments(rng, 50, 10))]
        assert {answer["status"] for answer in upload(client, headers, lines)} == {201}
    lines = [line("immunization", f"BIG-IM-{n}", immunization_body(administered_at=_iso(moment), reactions=None))
             for n, moment in enumerate(_moments(rng, BIG, 30))]
    lines += [line("immunization", f"BOB-IM-{n}", immunization_body(
        serial=222222, administered_at=_iso(moment), reactions=None)) for n, moment in enumerate(_moments(rng, 50, 0))]
    assert {answer["status"] for answer in upload(client, world["hanoi"], lines)} == {201}
    alice = Citizen.objects.get(national_id=world["alice"].national_id).id
    assert Notification.objects(citizen_id=alice, channel="in_app").count() > BIG
    return {**world, "alice_id": alice}


class Spy:
    """The filters each page sent (``list_index.range_filters``' answers)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, list[dict]]] = []
        original = list_index.range_filters

        def spy(source: list_index.ListSource, citizen_id: ObjectId, page: list_index.Window) -> list[dict]:
            filters = original(source, citizen_id, page)
            self.sent.append((source.model._get_collection_name(), filters))
            return filters

        monkeypatch.setattr(list_index, "range_filters", spy)


def _examined(collection: str, query: dict) -> tuple[int, str]:
    database = Visit._get_collection().database
    plan = database.command("explain", {"find": collection, "filter": query}, verbosity="executionStats")
    return plan["executionStats"]["totalDocsExamined"], str(plan["queryPlanner"]["winningPlan"])


LISTS = [  # (name, path with its filters, the item's id field)
    ("timeline", "/me/visits?", "id"),
    ("timeline by facility", "/me/visits?facility=79001&", "id"),
    ("timeline by date range", f"/me/visits?from={quote('2024-03-01T00:00:00' + VN)}"
                               f"&to={quote('2024-10-01T00:00:00' + VN)}&", "id"),
    ("vaccinations", "/me/immunizations?", "id"),
    ("prescriptions", "/me/prescriptions?", "visit_id"),
    ("inbox", "/me/notifications?", "id"),
]


def _pages(client, account, path: str, limit: int, most: int | None = None) -> list[list[dict]]:
    pages, cursor = [], None
    while most is None or len(pages) < most:
        response = client.get(f"{V1}{path}limit={limit}" + (f"&cursor={cursor}" if cursor else ""),
                              headers=account.headers)
        assert response.status_code == 200, response.json
        pages.append(response.json["items"])
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    return pages


def test_each_page_examines_the_page_and_no_more(client, big, monkeypatch):
    shapes = set()
    for name, path, _ in LISTS:
        spy = Spy(monkeypatch)
        pages = _pages(client, big["alice"], path, LIMIT)
        assert len(pages) > 2 and all(len(page) == LIMIT for page in pages[:-1]), name
        if name.startswith("timeline"):  # the newest items' rows are in the index document
            examined, plan = _examined("list_index", {"_id": big["alice_id"]})
            assert examined == 1 and "COLLSCAN" not in plan, plan
            # the unfiltered timeline's newest pages ask the visits nothing; older ones, one page's range
            if name == "timeline":
                assert len(spy.sent) == len(pages) - list_index.SOURCES["visits"].rows_kept // LIMIT, name
            assert 0 < len(spy.sent) < len(pages), name
        else:
            assert len(spy.sent) == len(pages), name
        for collection, filters in spy.sent:
            assert 1 <= len(filters) <= 3
            shapes.add(len(filters))
            total = 0
            for query in filters:
                examined, plan = _examined(collection, query)
                assert "COLLSCAN" not in plan and "IXSCAN" in plan, (name, query, plan)
                total += examined
            assert total <= LIMIT + SLACK, (name, total, filters)
    assert shapes == {1, 2, 3}  # one range; a page within one instant; a page across a large tie


def _reference(big, name: str) -> list[str]:
    """The list's item ids as a plain sort of the stored documents gives them."""
    alice = big["alice_id"]
    if name.startswith("timeline"):
        query: dict[str, Any] = {"citizen_id": alice}
        if name == "timeline by facility":
            query["facility_code"] = "79001"
        if name == "timeline by date range":
            query["started_at"] = {"$gte": datetime(2024, 2, 29, 17), "$lt": datetime(2024, 9, 30, 17)}
        documents, field = Visit._get_collection().find(query), "started_at"
    elif name == "vaccinations":
        documents, field = Immunization._get_collection().find({"citizen_id": alice}), "administered_at"
    elif name == "prescriptions":
        documents, field = Visit._get_collection().find({"citizen_id": alice, "status": {"$ne": VOIDED},
                                                         "prescriptions.0": {"$exists": True}}), "started_at"
    else:
        documents, field = Notification._get_collection().find({"citizen_id": alice, "channel": "in_app"}), "created_at"
    ordered = sorted(documents, key=lambda d: (d[field], d["_id"]), reverse=True)
    return [str(d["_id"]) for d in ordered]


def test_all_pages_are_the_sorted_list(client, big):
    for name, path, id_field in LISTS:
        for limit in (7, 100):
            pages = _pages(client, big["alice"], path, limit)
            assert all(pages[:-1]) and all(len(page) == limit for page in pages[:-1]), name
            ids = [item[id_field] for page in pages for item in page]
            assert ids == _reference(big, name), (name, limit)
    unread = client.get(f"{V1}/me/notifications?limit=1", headers=big["alice"].headers).json["unread_count"]
    assert unread == Notification.objects(citizen_id=big["alice_id"], channel="in_app", read_at=None).count()


def test_a_bad_cursor_is_refused_on_every_list(client, big):
    for name, path, _ in LISTS:
        for cursor in ("bm90LWEtY3Vyc29y", "eyJ0IjoieCIsImlkIjoieSJ9"):  # not JSON; {"t":"x","id":"y"}
            response = client.get(f"{V1}{path}cursor={cursor}", headers=big["alice"].headers)
            assert response.status_code == 422, (name, cursor)
            assert "cursor" in response.json["errors"]


# --- the same pages through the services, for random records -------------------------------

BASE = datetime(2025, 5, 1, 8)
items = st.lists(st.tuples(st.integers(0, 6),  # one of seven instants: many ties
                           st.sampled_from(["01001", "79001", "48001"]),
                           st.booleans(),  # prescribing
                           st.booleans()),  # voided (or, for a message, read)
                 max_size=45)


def _walk(load, limit: int) -> list[ObjectId]:
    ids, cursor, seen = [], None, 0
    while True:
        page = load(limit, cursor)
        assert len(page.items) <= limit
        ids += [item["_id"] if isinstance(item, dict) else item.id for item in page.items]
        cursor, seen = page.next_cursor, seen + 1
        if cursor is None:
            return ids
        assert page.items and seen < 100


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items, st.integers(1, 8), st.sampled_from([None, "01001"]), st.sampled_from([(None, None), (1, 5), (3, 3)]))
def test_pages_are_the_sorted_list_for_any_record(app, records, limit, facility, bounds):
    ctx, citizen, other = system_context(), ObjectId(), ObjectId()
    list_index.build([citizen], ctx.now)  # readable (active); the other citizen is not
    visits, immunizations, messages = [], [], []
    for n, (instant, code, prescribing, voided) in enumerate(records):
        moment = BASE + timedelta(hours=instant)
        owner = citizen if n % 5 else other
        visit = {"_id": ObjectId(), "citizen_id": owner, "facility_code": code, "source_id": f"P{n}",
                 "started_at": moment, "status": VOIDED if voided else "final", "payload_hash": "x",
                 "prescriptions": [{"code": f"c{n}", "items": []}] if prescribing else []}
        if prescribing and not voided:
            visit["prescribed_at"] = moment
        visits.append(visit)
        immunizations.append({"_id": ObjectId(), "citizen_id": owner, "facility_code": code, "source_id": f"P{n}",
                              "administered_at": moment, "payload_hash": "x"})
        messages.append({"_id": ObjectId(), "citizen_id": owner, "kind": "record_added", "channel": "in_app",
                         "body": "b", "dedupe_key": f"{citizen}:{n}", "created_at": moment,
                         "read_at": moment if voided else None})
    with RecordWrites() as writes:
        writes.insert(Visit, visits)
        writes.insert(Immunization, immunizations)
    if messages:
        Notification._get_collection().insert_many(messages)
    changes = list_index.Changes()
    for message in messages:
        changes.inserted("notifications", message)
    list_index.apply(changes)

    def newest_first(documents: list[dict], field: str, keep=lambda d: True) -> list[ObjectId]:
        mine = [d for d in documents if d["citizen_id"] == citizen and keep(d)]
        return [d["_id"] for d in sorted(mine, key=lambda d: (d[field], d["_id"]), reverse=True)]

    start = BASE + timedelta(hours=bounds[0]) if bounds[0] is not None else None
    end = BASE + timedelta(hours=bounds[1]) if bounds[1] is not None else None

    def in_filters(d: dict) -> bool:
        return ((facility is None or d["facility_code"] == facility)
                and (start is None or d["started_at"] >= start) and (end is None or d["started_at"] < end))

    assert _walk(lambda n, c: timeline.list_visits(ctx, citizen, n, c, start, end, facility), limit) == \
        newest_first(visits, "started_at", in_filters)
    assert _walk(lambda n, c: timeline.list_immunizations(ctx, citizen, n, c), limit) == \
        newest_first(immunizations, "administered_at")
    assert _walk(lambda n, c: timeline.list_prescriptions(ctx, citizen, n, c), limit) == \
        newest_first(visits, "started_at", lambda d: "prescribed_at" in d)
    assert _walk(lambda n, c: inbox.list_messages(citizen, n, c, ctx.now), limit) == \
        newest_first(messages, "created_at")
    unread = inbox.list_messages(citizen, 1, None, ctx.now).unread_count
    assert unread == len(newest_first(messages, "created_at", lambda d: d["read_at"] is None))


def test_marking_messages_read_keeps_the_inbox_and_counts_them_once(client, world):
    alice = world["alice"]
    before = client.get(f"{V1}/me/notifications?limit=100", headers=alice.headers).json
    assert len(before["items"]) >= 3 and before["unread_count"] == len(before["items"])
    chosen = [item["id"] for item in before["items"][:3]]
    for message_id in [*chosen, chosen[0]]:  # the first one twice
        assert client.post(f"{V1}/me/notifications/{message_id}/read", headers=alice.headers).status_code == 200
    after = client.get(f"{V1}/me/notifications?limit=100", headers=alice.headers).json
    assert after["unread_count"] == before["unread_count"] - 3
    assert [item["id"] for item in after["items"]] == [item["id"] for item in before["items"]]
    assert all(item["read_at"] for item in after["items"] if item["id"] in chosen)
