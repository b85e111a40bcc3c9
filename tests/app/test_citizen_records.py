"""The citizen's record: timeline, details, reactions, prescriptions, profile, BOLA, access log."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from bson import ObjectId
from hypothesis import given
from hypothesis import strategies as st

from app.clock import utcnow
from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.models.list_index import ListIndex
from app.models.notification import Notification
from app.models.records import Visit
from app.resources.me import present
from app.resources.me.schemas import VisitPageSchema
from app.services import list_index, timeline
from app.services.paging import encode_cursor
from tests.helpers import assert_problem, line, upload
from tests.records_data import immunization_body, visit_body

V1 = "/api/v1"


def get(client, url, account, **kwargs):
    return client.get(f"{V1}{url}", headers=account.headers, **kwargs)


def test_timeline_is_newest_first_across_facilities_with_names(client, world):
    items = get(client, "/me/visits", world["alice"]).json["items"]
    assert [item["started_at"][:10] for item in items] == [
        "2026-06-07", "2026-06-05", "2026-06-04", "2026-06-03", "2026-06-02", "2026-06-01"]
    assert {item["facility"]["name"] for item in items} == {"Bệnh viện 01001", "Bệnh viện 79001"}
    withdrawn = items[0]
    assert withdrawn["withdrawn"] is True and withdrawn["note"] == "Withdrawn by the facility"
    assert "diagnoses" not in withdrawn and "reason" not in withdrawn
    assert items[1]["diagnoses"][0]["code"] == "J20.9"


def test_timeline_pages_with_an_opaque_cursor(client, world):
    seen = []
    url = "/me/visits?limit=2"
    while url:
        page = get(client, url, world["alice"]).json
        seen += [item["id"] for item in page["items"]]
        url = f"/me/visits?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else None
    assert len(seen) == 6 and len(set(seen)) == 6


def test_timeline_filters(client, world):
    alice = world["alice"]
    ranged = get(client, "/me/visits?from=2026-06-02T00:00:00%2B07:00&to=2026-06-04T00:00:00%2B07:00", alice)
    assert [i["started_at"][:10] for i in ranged.json["items"]] == ["2026-06-03", "2026-06-02"]
    saigon = get(client, "/me/visits?facility=79001", alice).json["items"]
    assert {i["facility"]["code"] for i in saigon} == {"79001"} and len(saigon) == 2
    assert_problem(get(client, "/me/visits?facility=x", alice), 422)
    assert_problem(get(client, "/me/visits?cursor=bm90LWEtY3Vyc29y", alice), 422)


def test_visit_detail_and_withdrawn_detail(client, world):
    items = get(client, "/me/visits", world["alice"]).json["items"]
    detail = get(client, f"/me/visits/{items[1]['id']}", world["alice"]).json
    assert detail["lab_results"][0]["value"] == "12.5"
    assert detail["prescriptions"][0]["code"] == "79001abcdefg-c"
    withdrawn = get(client, f"/me/visits/{items[0]['id']}", world["alice"]).json
    assert withdrawn["withdrawn"] and "lab_results" not in withdrawn


def test_immunizations_and_citizen_reactions(client, world):
    alice = world["alice"]
    items = get(client, "/me/immunizations", alice).json["items"]
    assert len(items) == 1 and items[0]["administered_at"].startswith("2021-09-15T03:20:00")
    record_id = items[0]["id"]
    response = client.post(f"{V1}/me/immunizations/{record_id}/reactions", headers=alice.headers,
                           json={"onset_at": "2021-09-16T07:00:00+07:00", "description": "Đau tay",
                                 "severity": "moderate"})
    assert response.status_code == 201
    assert [r["reported_by"] for r in response.json["reactions"]] == ["facility", "citizen"]
    assert Notification.objects(kind="reaction_recorded").count() == 1
    too_early = client.post(f"{V1}/me/immunizations/{record_id}/reactions", headers=alice.headers,
                            json={"onset_at": "2021-09-14T07:00:00+07:00", "description": "x", "severity": "mild"})
    assert_problem(too_early, 422)


def test_reaction_to_a_withdrawn_vaccination_is_409(client, world):
    client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(status="entered-in-error"),
               headers=world["hanoi"])
    record_id = get(client, "/me/immunizations", world["alice"]).json["items"][0]["id"]
    response = client.post(f"{V1}/me/immunizations/{record_id}/reactions", headers=world["alice"].headers,
                           json={"onset_at": "2021-09-16T07:00:00+07:00", "description": "x", "severity": "mild"})
    assert assert_problem(response, 409)["type"] == "/problems/record-withdrawn"


def test_prescriptions_show_national_codes_and_skip_withdrawn(client, world):
    items = get(client, "/me/prescriptions", world["alice"]).json["items"]
    assert len(items) == 5 and {i["code"] for i in items} == {"79001abcdefg-c"}
    assert items[0]["items"][0]["name"] == "Amoxicillin"


def test_another_citizens_records_are_404_everywhere(client, world):
    alice, bob = world["alice"], world["bob"]
    bob_visit = get(client, "/me/visits", bob).json["items"][0]["id"]
    bob_shot = get(client, "/me/immunizations", bob).json["items"][0]["id"]
    assert_problem(get(client, f"/me/visits/{bob_visit}", alice), 404)
    assert_problem(get(client, f"/me/immunizations/{bob_shot}", alice), 404)
    reaction = client.post(f"{V1}/me/immunizations/{bob_shot}/reactions", headers=alice.headers,
                           json={"onset_at": "2021-09-16T07:00:00+07:00", "description": "x", "severity": "mild"})
    assert_problem(reaction, 404)
    share = client.post(f"{V1}/me/shares", headers=bob.headers, json={"scope": ["visits"], "expires_in_hours": 1})
    assert_problem(client.delete(f"{V1}/me/shares/{share.json['id']}", headers=alice.headers), 404)
    assert_problem(get(client, "/me/visits/not-an-id", alice), 404)
    assert all(item["id"] != bob_visit for item in get(client, "/me/visits", alice).json["items"])
    assert all(e["action"] != "visit.read" or e.get("actor_type") != "citizen"
               for e in get(client, "/me/access-log", bob).json["items"])


READ_PATHS = ["/me/visits", "/me/visits/{visit}", "/me/immunizations", "/me/immunizations/{shot}",
              "/me/prescriptions", "/me/export"]


@pytest.mark.parametrize("path", READ_PATHS)
def test_each_read_path_leaves_exactly_one_audit_event(client, world, path):
    alice = world["alice"]
    visit = Visit.objects(source_id="LK1").first().id
    shot = get(client, "/me/immunizations", alice).json["items"][0]["id"]
    before = AuditEvent.objects(access="read").count()
    assert get(client, path.format(visit=visit, shot=shot), alice).status_code == 200
    assert AuditEvent.objects(access="read").count() == before + 1


def test_access_log_shows_others_reads_and_all_writes_not_own_reads(client, world, staff):
    alice = world["alice"]
    get(client, "/me/visits", alice)  # own read: not listed
    client.get(f"{V1}/support/citizens/{alice.national_id}", headers=staff.headers("support"))
    code = client.post(f"{V1}/me/shares", headers=alice.headers,
                       json={"scope": ["visits"], "expires_in_hours": 1}).json["code"]
    client.post(f"{V1}/shared-records", json={"code": code}, headers=world["saigon"])
    log = get(client, "/me/access-log", alice).json["items"]
    actions = [(e["action"], e["access"]) for e in log]
    assert actions[0] == ("share.open", "read") and log[0]["facility_name"] == "Bệnh viện 79001"
    assert actions[1] == ("support.lookup", "read")
    assert ("visits.list", "read") not in actions
    assert actions.count(("visit.create", "write")) == 6 and ("immunization.create", "write") in actions
    page = get(client, "/me/access-log?limit=3", alice).json
    assert len(page["items"]) == 3 and page["next_cursor"]


def test_profile_read_and_patch(client, world):
    alice = world["alice"]
    profile = get(client, "/me", alice).json
    assert profile["national_id"] == alice.national_id and profile["language"] == "vi"
    patched = client.patch(f"{V1}/me", headers=alice.headers, json={
        "phone": "+84987654321", "address": {"line": "12 Phố Huế", "province_code": "01"},
        "language": "en", "notification_preferences": {"record_added": {"sms": False, "push": True}}})
    assert patched.status_code == 200
    assert patched.json["phone"] == "+84987654321" and patched.json["address"]["line"] == "12 Phố Huế"
    changed = Notification.objects(kind="contact_changed")
    assert {m.channel for m in changed} == {"in_app", "sms", "email"}
    assert {m.language for m in changed} == {"vi"}  # sent before the language change applied


@pytest.mark.parametrize("body", [{"full_name": "Someone Else"}, {"national_id": "001085000000"},
                                  {"date_of_birth": "1990-01-01"}, {"phone": "12"},
                                  {"notification_preferences": {"access_reset": {"sms": False}}},
                                  {"email": {"$ne": ""}}])
def test_profile_patch_refuses_identity_and_bad_values(client, world, body):
    assert_problem(client.patch(f"{V1}/me", headers=world["alice"].headers, json=body), 422)


def test_timeline_query_uses_the_timeline_index(app, world):
    citizen_id = Visit.objects(source_id="LK1").first().citizen_id
    keys, version, _ = list_index.read_index(citizen_id, "visits", utcnow())
    page = list_index.window(keys, version, None, 20)
    [query] = list_index.range_filters(list_index.SOURCES["visits"], citizen_id, page)
    text = str(Visit._get_collection().find(query).explain()["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in text and "COLLSCAN" not in text
    assert "'indexName': 'timeline'" in text


def test_timeline_never_serves_a_stale_page(client, world, monkeypatch):
    alice = world["alice"]
    first = get(client, "/me/visits?limit=3", alice).json["items"]
    load_page = timeline.indexed_page

    def no_query(*args, **kwargs):
        raise AssertionError("the page should have come from the cache")

    monkeypatch.setattr(timeline, "indexed_page", no_query)
    assert get(client, "/me/visits?limit=3", alice).json["items"] == first  # served from the cache
    monkeypatch.setattr(timeline, "indexed_page", load_page)
    client.put(f"{V1}/facility/visits/LK9", json=visit_body(started_at="2026-06-08T08:00:00+07:00",
                                                            ended_at=None, follow_up_date=None),
               headers=world["hanoi"])
    after_push = get(client, "/me/visits?limit=3", alice).json["items"]
    assert after_push[0]["started_at"].startswith("2026-06-08")
    client.put(f"{V1}/facility/visits/LK9", json=visit_body(
        started_at="2026-06-08T08:00:00+07:00", ended_at=None, follow_up_date=None, status="entered-in-error"),
        headers=world["hanoi"])
    assert get(client, "/me/visits?limit=3", alice).json["items"][0]["withdrawn"] is True
    before = AuditEvent.objects(action="visits.list").count()
    get(client, "/me/visits?limit=3", alice)
    assert AuditEvent.objects(action="visits.list").count() == before + 1  # cached or not, audited


def _index(national_id: str) -> ListIndex | None:
    return ListIndex.objects(id=Citizen.objects.get(national_id=national_id).id).first()


def test_activation_builds_the_list_index(client, world):
    index = _index(world["alice"].national_id)
    assert index is not None  # built when the enrolment was confirmed, before any page was read
    visits = Visit.objects(citizen_id=index.id)
    assert {list_index.key_id(k) for k in list_index.stored_keys(index.lists["visits"])} == {v.id for v in visits}
    assert {list_index.key_id(k) for k in list_index.stored_keys(index.lists["prescriptions"])} == {
        v.id for v in visits if v.prescriptions and v.status != "entered-in-error"}


def test_pushes_change_the_index_of_readable_citizens_only(client, world):
    alice = _index(world["alice"].national_id)
    first = upload(client, world["hanoi"], [line("visit", "BUMP1", visit_body()),
                                            line("visit", "BUMP2", visit_body(serial=333333))])
    assert [answer["status"] for answer in first] == [201, 201]
    carol_id = visit_body(serial=333333)["national_id"]  # created by the push, not yet active
    assert _index(world["alice"].national_id).version > alice.version
    assert _index(carol_id) is None
    upload(client, world["hanoi"], [line("visit", "BUMP3", visit_body(serial=333333))])
    assert _index(carol_id) is None  # cannot read a list yet: nothing to keep
    world["citizens"].enrol(serial=333333)  # activation builds it from the records
    carol = _index(carol_id)
    assert carol is not None
    assert {list_index.key_id(k) for k in list_index.stored_keys(carol.lists["visits"])} == {
        v.id for v in Visit.objects(citizen_id=carol.id)} and len(list_index.stored_keys(carol.lists["visits"])) == 2


def test_a_reaction_report_changes_the_index_version(client, world):
    alice = _index(world["alice"].national_id)
    record_id = client.get(f"{V1}/me/immunizations", headers=world["alice"].headers).json["items"][0]["id"]
    response = client.post(f"{V1}/me/immunizations/{record_id}/reactions", headers=world["alice"].headers,
                           json={"onset_at": "2021-09-16T08:00:00+07:00", "description": "Đau", "severity": "mild"})
    assert response.status_code == 201
    after = _index(world["alice"].national_id)
    assert after.version > alice.version and after.lists["immunizations"] == alice.lists["immunizations"]


def test_a_bulk_upload_is_one_write_event_per_action_in_each_citizens_log(client, world, staff):
    alice, bob = world["alice"], world["bob"]
    answers = upload(client, world["hanoi"], [line("visit", "MANY1", visit_body()),
                                              line("visit", "MANY2", visit_body(serial=222222)),
                                              line("visit", "MANY3", visit_body(notes="khác"))])
    assert [answer["status"] for answer in answers] == [201, 201, 201]
    event = AuditEvent.objects.get(action="visit.create", details__channel="bulk")
    ids = {Citizen.objects.get(national_id=account.national_id).id for account in (alice, bob)}
    assert set(event.citizen_ids) == ids and event.citizen_id is None
    assert [record["source_id"] for record in event.details["records"]] == ["MANY1", "MANY2", "MANY3"]
    assert {record["id"] for record in event.details["records"]} == {answer["id"] for answer in answers}
    for account in (alice, bob):
        log = get(client, "/me/access-log?limit=100", account).json["items"]
        assert [entry["id"] for entry in log].count(str(event.id)) == 1
        assert all(set(entry) <= {"id", "at", "access", "action", "actor_type", "actor_label", "facility_code",
                                  "facility_name", "outcome"} for entry in log)  # no other citizen's records
    admin = staff.headers("admin")
    alice_id = Citizen.objects.get(national_id=alice.national_id).id
    found = client.get(f"{V1}/admin/audit?citizen_id={alice_id}&action=visit.create", headers=admin)
    assert found.status_code == 200, found.json
    listed = next(item for item in found.json["items"] if item["id"] == str(event.id))
    assert sorted(listed["citizen_ids"]) == sorted(str(citizen_id) for citizen_id in ids)


def test_admin_search_by_citizen_finds_every_event_about_them(client, world, staff):
    """Reads, writes and events that are not accesses (e.g. activation), newest first, paged."""
    alice = world["alice"]
    alice_id = Citizen.objects.get(national_id=alice.national_id).id
    get(client, "/me/visits", alice)
    get(client, "/me/immunizations", alice)
    expected = [str(event.id) for event in AuditEvent.objects(citizen_ids=alice_id).order_by("-at", "-id")]
    kinds = {event.access for event in AuditEvent.objects(citizen_ids=alice_id)}
    assert {None, "read", "write"} <= kinds  # the search must cover all three
    admin = staff.headers("admin")
    found: list[str] = []
    url = f"{V1}/admin/audit?citizen_id={alice_id}&limit=2"
    while url:
        page = client.get(url, headers=admin).json
        found += [item["id"] for item in page["items"]]
        url = page["next_cursor"] and f"{V1}/admin/audit?citizen_id={alice_id}&limit=2&cursor={page['next_cursor']}"
    assert found == expected


# The timeline is rendered without marshmallow (``present.timeline_entry``); its schema stays the
# contract, so for any stored visit the two must give the same JSON.
_texts = st.one_of(st.none(), st.text(max_size=12))
_aware = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
_diagnoses = st.lists(st.fixed_dictionaries({"code": st.text(max_size=8)}, optional={
    "display": _texts, "text": _texts, "principal": st.booleans()}), max_size=3)
_stored_visits = st.fixed_dictionaries(
    {"_id": st.builds(ObjectId), "facility_code": st.sampled_from(["01001", "79001"]), "started_at": _aware},
    optional={"status": st.sampled_from(["final", "entered-in-error"]), "visit_type": _texts, "ended_at":
              st.one_of(st.none(), _aware), "department": _texts, "reason": _texts, "diagnoses": _diagnoses,
              "follow_up_date": _texts})


@given(st.lists(_stored_visits, max_size=4), st.sampled_from([{}, {"01001": "Bệnh viện 01001"}]),
       st.sampled_from([None, {"t": "2026-01-01T00:00:00+00:00", "id": "6b0f3b96e4bc658e1d086023"}]))
def test_the_timeline_renders_as_its_schema_dumps_it(stored, names, cursor):
    page = timeline.Page(stored, cursor)
    by_schema = VisitPageSchema().dump({"items": [present.timeline_row(row, names) for row in stored],
                                        "next_cursor": encode_cursor(cursor) if cursor else None})
    assert json.loads(present.visit_page(page, names)) == json.loads(json.dumps(by_schema))
