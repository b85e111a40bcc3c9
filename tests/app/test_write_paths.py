"""Every write path to a health collection keeps the list index of every citizen it concerns.

A citizen's lists are paged through their list index, and the timeline's pages are cached keyed
on its ``version`` (``Runtime.pages``); each write goes through
``app.services.ingest.writes.RecordWrites``, which applies what it added, moved and changed to the
index. This test pushes through each write path, after the citizen's pages were read (and so
cached), and checks that the very next ``GET /me/visits``, ``GET /me/immunizations`` and
``GET /me/prescriptions`` show the change. A new write path (a dispensing, an inpatient stay, a
guardian's report...) adds one entry to ``WRITE_PATHS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from app.models.records import Immunization, Visit
from tests.data.xml130 import make_fixtures as xml130
from tests.records_data import immunization_body, visit_body

V1 = "/api/v1"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Timeline:
    """What a citizen's next reads show."""

    visits: list[dict]
    immunizations: list[dict]
    prescribed: set[str]  # the visit ids of the prescription list


def read(client, account) -> Timeline:
    visits = client.get(f"{V1}/me/visits", headers=account.headers)
    immunizations = client.get(f"{V1}/me/immunizations", headers=account.headers)
    prescriptions = client.get(f"{V1}/me/prescriptions?limit=100", headers=account.headers)
    assert visits.status_code == 200 and immunizations.status_code == 200 and prescriptions.status_code == 200
    return Timeline(visits.json["items"], immunizations.json["items"],
                    {item["visit_id"] for item in prescriptions.json["items"]})


def on(day: int) -> dict:
    """A visit body that starts on 2026-06-<day> (nothing else in the world starts then)."""
    return visit_body(started_at=f"2026-06-{day:02d}T08:00:00+07:00", ended_at=None, follow_up_date=None)


def started(timeline: Timeline, day: int) -> bool:
    return any(item["started_at"].startswith(f"2026-06-{day:02d}") for item in timeline.visits)


def visit_id(source_id: str) -> str:
    return str(Visit.objects.get(source_id=source_id).id)


def put_visit(client, world) -> None:
    response = client.put(f"{V1}/facility/visits/WP-PUT", json=on(20), headers=world["hanoi"])
    assert response.status_code == 201, response.json


def put_immunization(client, world) -> None:
    response = client.put(f"{V1}/facility/immunizations/WP-PUT", json=immunization_body(lot="WPLOT"),
                          headers=world["hanoi"])
    assert response.status_code == 201, response.json


def bulk(client, world) -> None:
    lines = [json.dumps({"type": "visit", "source_id": "WP-BULK", **on(21)}, ensure_ascii=False),
             json.dumps({"type": "immunization", "source_id": "WP-BULK", **immunization_body(lot="WPBULK")},
                        ensure_ascii=False)]
    response = client.post(f"{V1}/facility/bulk", data="\n".join(lines) + "\n", content_type=NDJSON,
                           headers=world["hanoi"])
    assert [json.loads(text)["status"] for text in response.get_data(as_text=True).splitlines()] == [201, 201]


def xml130_import(client, world) -> None:
    record = {**xml130.NAM_XML1, "MA_LK": "WP-XML", "MA_CSKCB": "01001", "NGAY_VAO": "202606220830",
              "NGAY_RA": "202606220910", "NGAY_TAI_KHAM": "20260629"}
    document = xml130.envelope([[("XML1", xml130.summary(record))]], facility="01001")
    response = client.post(f"{V1}/facility/xml130", data=document,
                           headers={**world["hanoi"], "Content-Type": "application/xml"})
    assert [r["status"] for r in response.json["records"]] == [201], response.json


def reaction_report(client, world) -> None:
    record = Immunization.objects.get(source_id="IM1")
    response = client.post(f"{V1}/me/immunizations/{record.id}/reactions", headers=world["alice"].headers,
                           json={"onset_at": "2021-09-16T08:00:00+07:00", "description": "WP: đau chỗ tiêm",
                                 "severity": "mild"})
    assert response.status_code == 201, response.json


def void(client, world) -> None:
    body = visit_body(started_at="2026-06-01T08:00:00+07:00", ended_at=None, follow_up_date=None,
                      status="entered-in-error")
    response = client.put(f"{V1}/facility/visits/LK1", json=body, headers=world["hanoi"])
    assert response.status_code == 200 and response.json["outcome"] == "updated", response.json


def correction(client, world) -> None:
    """The facility says BOB1 was Alice's visit all along: it moves from Bob's timeline to Alice's."""
    response = client.put(f"{V1}/facility/visits/BOB1", json=visit_body(), headers=world["hanoi"])
    assert response.status_code == 200 and response.json["outcome"] == "updated", response.json


@dataclass(frozen=True)
class WritePath:
    """A way to write a health collection, and what the concerned citizens' next reads must show."""

    name: str
    write: Callable[..., None]
    shows: Callable[[Timeline, Timeline], bool]  # (Alice's timeline, Bob's timeline) -> the change is seen


def _reaction_seen(alice: Timeline, bob: Timeline) -> bool:
    return any(r["description"] == "WP: đau chỗ tiêm" for item in alice.immunizations
               for r in item.get("reactions", []))


WRITE_PATHS = [
    WritePath("put visit", put_visit, lambda alice, bob: started(alice, 20) and visit_id("WP-PUT") in alice.prescribed),
    WritePath("put immunization", put_immunization,
              lambda alice, bob: any(item.get("lot") == "WPLOT" for item in alice.immunizations)),
    WritePath("bulk ndjson", bulk, lambda alice, bob: started(alice, 21) and any(
        item.get("lot") == "WPBULK" for item in alice.immunizations)),
    WritePath("xml 130 import", xml130_import, lambda alice, bob: started(alice, 22)),
    WritePath("citizen reaction report", reaction_report, _reaction_seen),
    WritePath("void", void, lambda alice, bob: any(
        item["id"] == visit_id("LK1") and item["withdrawn"] for item in alice.visits)
        and visit_id("LK1") not in alice.prescribed),
    WritePath("correction to another citizen", correction, lambda alice, bob: (
        visit_id("BOB1") in {item["id"] for item in alice.visits} and visit_id("BOB1") in alice.prescribed
        and visit_id("BOB1") not in {item["id"] for item in bob.visits} and visit_id("BOB1") not in bob.prescribed)),
]


@pytest.mark.parametrize("path", WRITE_PATHS, ids=[path.name for path in WRITE_PATHS])
def test_the_next_read_after_any_write_shows_it(app, client, world, path):
    alice, bob = world["alice"], world["bob"]
    before = read(client, alice), read(client, bob)  # both timelines read: their pages are now cached
    assert len(app.extensions["hoso"].pages) >= 2
    assert read(client, alice).visits == before[0].visits  # (served from the cache)
    assert not path.shows(*before)
    path.write(client, world)
    assert path.shows(read(client, alice), read(client, bob))
