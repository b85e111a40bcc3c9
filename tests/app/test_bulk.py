"""POST /facility/bulk: NDJSON in and out, line by line, bad lines alone refused, memory flat."""

from __future__ import annotations

import json

import pytest

from app.models.audit import AuditEvent
from app.models.records import Immunization, Visit
from tests.helpers import NDJSON, facility_token, line, upload
from tests.records_data import immunization_body, visit_body


@pytest.fixture
def facility(client) -> dict[str, str]:
    return {"Authorization": f"Bearer {facility_token('01001')}"}


def test_each_line_is_answered_in_order_and_bad_lines_alone_fail(client, facility):
    too_long = line("visit", "LONG", visit_body(notes="x" * 3000, reason="y" * 900)) + " " * 70_000
    lines = [
        line("visit", "LK1", visit_body()),
        "{not json",
        line("immunization", "IM1", immunization_body()),
        too_long,
        line("visit", "LK2", visit_body(diagnoses=[{"code": "BAD", "principal": True}])),
        json.dumps({"type": "x-ray", "source_id": "X1"}),
        "[1, 2]",
        line("visit", "LK1", visit_body()),  # the same record again: unchanged
        line("visit", "LK1", visit_body(notes="đổi")),  # then changed
        line("visit", "LK3", visit_body(serial=222222)),
    ]
    results = upload(client, facility, lines)
    assert [r["line"] for r in results] == list(range(1, 11))
    assert [r["status"] for r in results] == [201, 400, 201, 413, 422, 422, 422, 200, 200, 201]
    assert results[7]["outcome"] == "unchanged" and results[8]["outcome"] == "updated"
    assert results[8]["version"] == 2 and results[0]["id"] == results[8]["id"]
    assert "diagnoses" in results[4]["errors"] and "type" in results[5]["errors"]
    assert Visit.objects.count() == 2 and Immunization.objects.count() == 1
    assert AuditEvent.objects(action__in=["visit.create", "visit.update", "immunization.create"]).count() == 4


def test_identity_mismatch_is_one_line(client, facility):
    results = upload(client, facility, [
        line("visit", "LK1", visit_body()),
        line("visit", "LK2", visit_body(date_of_birth="1985-12-31")),
        line("visit", "LK3", visit_body()),
    ])
    assert [r["status"] for r in results] == [201, 409, 201]
    assert results[1]["problem"] == "identity-mismatch"


def test_wrong_content_type_and_roles(client, facility, staff):
    response = client.post("/api/v1/facility/bulk", json=[visit_body()], headers=facility)
    assert response.status_code == 415
    response = client.post("/api/v1/facility/bulk", data="{}", content_type=NDJSON, headers=staff.headers())
    assert response.status_code == 403


def test_empty_upload_answers_nothing(client, facility):
    response = client.post("/api/v1/facility/bulk", data="", content_type=NDJSON, headers=facility)
    assert response.status_code == 200 and response.data == b""


def test_a_patient_repeated_across_batches_is_found_once_and_checked_on_every_line(client, facility, monkeypatch):
    from app.models.citizen import Citizen
    from app.services.ingest import records

    looked_up: list[list[str]] = []
    real = records.find_or_create_citizens

    def counting(ctx, people, fields=None):  # type: ignore[no-untyped-def]
        looked_up.append([person.national_id for person in people])
        return real(ctx, people, fields)

    monkeypatch.setattr(records, "find_or_create_citizens", counting)
    lines = [line("visit", f"REP{n}", visit_body()) for n in range(450)]  # three batches of one patient
    lines[420] = line("visit", "REP420", visit_body(date_of_birth="1985-12-31"))
    results = upload(client, facility, lines)
    assert [r["status"] for r in results] == [201] * 420 + [409] + [201] * 29
    assert Citizen.objects(national_id=visit_body()["national_id"]).count() == 1
    assert looked_up == [[visit_body()["national_id"]]]  # found or created once, then remembered


def test_known_citizens_are_reused_briefly_and_bounded():
    from bson import ObjectId

    from app.services.ingest.records import CITIZEN_REUSE_SECONDS, KnownCitizens, _CitizenRef

    first, second, third = (_CitizenRef(ObjectId(), f"{n:012d}", "1985-03-14", "active") for n in (1, 2, 3))
    known = KnownCitizens(max_size=2)
    known.put(first, read_at=100.0)
    assert known.get(first.national_id, now=100.0 + CITIZEN_REUSE_SECONDS) == (first, 100.0)
    assert known.get(first.national_id, now=100.1 + CITIZEN_REUSE_SECONDS) is None  # read too long ago
    known.put(second, read_at=200.0)
    known.put(third, read_at=200.0)
    assert known.get(first.national_id, now=200.0) is None  # the least recently used went first
    assert known.get(third.national_id, now=200.0) == (third, 200.0)


def test_a_batch_reports_when_its_oldest_citizen_was_read(client, facility):
    """The records-version rule measures a batch from the oldest citizen it reused."""
    import time

    from app.clock import utcnow
    from app.services.audit import Actor, RequestContext
    from app.services.ingest import records
    from app.services.ingest.bulk import parse_line
    from app.web.json_body import loads

    ctx = RequestContext(Actor("facility_client", "test", "test", "01001"), utcnow(), "test")
    known = records.KnownCitizens()
    def item(source_id: str, body: dict):  # type: ignore[no-untyped-def]
        return parse_line(line("visit", source_id, body).encode(), ctx.now, loads)

    first = records.prepare(ctx, [item("OLD1", visit_body())], known)
    time.sleep(0.05)
    both = records.prepare(ctx, [item("OLD2", visit_body()), item("OLD3", visit_body(serial=654321))], known)
    assert [p.citizen is not None for p in both.pending] == [True, True]
    assert both.citizens_read_at == first.citizens_read_at  # not the fresh read of the second citizen
    alone = records.prepare(ctx, [item("OLD4", visit_body())])
    assert alone.citizens_read_at > first.citizens_read_at  # nothing remembered: read now


def test_each_line_is_checked_against_the_clock_when_it_is_read(client, facility):
    """An upload streams for minutes: a line's "not in the future" uses the time it is read, not the
    request's start (a visit that began after the upload started is not in the future)."""
    import io
    import json as json_module
    from datetime import timedelta

    from app.clock import utcnow
    from app.services.audit import Actor, RequestContext
    from app.services.ingest import bulk
    from app.web.json_body import loads

    started = utcnow()
    ctx = RequestContext(Actor("facility_client", "test", "test", "01001"), started, "test")
    began, ended = ((started + timedelta(minutes=m)).isoformat() for m in (30, 40))
    body = (line("visit", "LATE1", visit_body(started_at=began, ended_at=ended, follow_up_date=None)) + "\n").encode()

    def answers(**clock):  # type: ignore[no-untyped-def]
        return [json_module.loads(text) for text in bulk.run(ctx, io.BytesIO(body), loads=loads, **clock)]

    assert answers()[0]["status"] == 422  # against the request's start: 30 minutes ahead
    late = answers(clock=lambda: started + timedelta(hours=1))[0]
    assert late["status"] == 201, late
