"""Input validators compare with the app's clock (``Runtime.now``), never the wall clock."""

from __future__ import annotations

from datetime import timedelta

from app.clock import utcnow
from app.runtime import runtime
from tests.helpers import CitizenActions, assert_problem, facility_token
from tests.records_data import immunization_body

V1 = "/api/v1"


def test_a_reaction_after_the_apps_now_is_in_the_future(client):
    account = CitizenActions(client).enrol()
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    assert client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(),
                      headers=hanoi).status_code == 201
    record_id = client.get(f"{V1}/me/immunizations", headers=account.headers).json["items"][0]["id"]
    onset = (utcnow() - timedelta(days=10)).isoformat()  # past for the wall clock
    real_clock = runtime().clock
    runtime().clock = lambda: real_clock() - timedelta(days=30)  # ... but after the app's now
    try:
        refused = client.post(f"{V1}/me/immunizations/{record_id}/reactions", headers=account.headers,
                              json={"onset_at": onset, "description": "Sốt nhẹ", "severity": "mild"})
    finally:
        runtime().clock = real_clock
    assert assert_problem(refused, 422)["errors"] == {"onset_at": ["Cannot be in the future."]}
    accepted = client.post(f"{V1}/me/immunizations/{record_id}/reactions", headers=account.headers,
                           json={"onset_at": onset, "description": "Sốt nhẹ", "severity": "mild"})
    assert accepted.status_code == 201, accepted.json
