"""Fixtures shared by the record tests."""

from __future__ import annotations

import pytest

from tests.helpers import CitizenActions, facility_token
from tests.records_data import immunization_body, visit_body

V1 = "/api/v1"


@pytest.fixture
def world(client):
    """A citizen with records from two facilities, another citizen, and the facilities' tokens."""
    citizens = CitizenActions(client)
    alice = citizens.enrol()
    bob = citizens.enrol(serial=222222)
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    saigon = {"Authorization": f"Bearer {facility_token('79001')}"}
    for day in range(1, 6):
        facility = hanoi if day % 2 else saigon
        body = visit_body(started_at=f"2026-06-0{day}T08:00:00+07:00", ended_at=None, follow_up_date=None)
        client.put(f"{V1}/facility/visits/LK{day}", json=body, headers=facility)
    client.put(f"{V1}/facility/visits/VOID", json=visit_body(
        started_at="2026-06-07T08:00:00+07:00", ended_at=None, follow_up_date=None, status="entered-in-error"),
        headers=hanoi)
    client.put(f"{V1}/facility/visits/BOB1", json=visit_body(serial=222222), headers=hanoi)
    client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(), headers=hanoi)
    client.put(f"{V1}/facility/immunizations/IMBOB", json=immunization_body(serial=222222), headers=hanoi)
    return {"alice": alice, "bob": bob, "hanoi": hanoi, "saigon": saigon, "citizens": citizens}


@pytest.fixture
def citizens(client) -> CitizenActions:
    """Citizen actions through the API (enrol, log in, ...) on the test's client."""
    return CitizenActions(client)


@pytest.fixture
def account(citizens):
    """One enrolled citizen."""
    return citizens.enrol()
