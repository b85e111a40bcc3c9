"""Vaccination data that cannot make a valid EU DCC: refused at push (422 per field), and at issuance (409)."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import passport as dcc
from app.models.citizen import Citizen
from app.models.passports import Certificate
from app.models.records import Immunization
from app.runtime import runtime
from app.services import valuesets
from app.services.signing_keys import init_keys
from tests.helpers import CitizenActions, assert_problem, facility_token, system_context
from tests.records_data import immunization_body

V1 = "/api/v1"
VAXZEVRIA = {"tg": "840539006", "vp": "29061000087103", "mp": "EU/1/21/1529", "ma": "ORG-100001699"}
JCOVDEN = {"tg": "840539006", "vp": "29061000087103", "mp": "EU/1/20/1525", "ma": "ORG-100001417"}


@pytest.fixture
def clinic(app, client):
    """Signing keys, an enrolled citizen (no vaccination yet) and the facility's token."""
    init_keys(system_context(), runtime().settings)
    account = CitizenActions(client).enrol()
    return account, {"Authorization": f"Bearer {facility_token('01001')}"}


def push(client, headers, source_id: str = "IM1", **changes: Any):
    return client.put(f"{V1}/facility/immunizations/{source_id}", json=immunization_body(**changes), headers=headers)


def issue(client, account):
    return client.post(f"{V1}/me/passports", headers=account.headers)


def with_vaccine(**codes: str) -> dict[str, str]:
    return {**VAXZEVRIA, **codes}


def verified(hc1: str) -> dcc.VerificationResult:
    now = system_context().now
    return dcc.verify(hc1, dcc.TrustList.of([runtime().signer.get(now).certificate]), now)


def stored(source_id: str = "IM1") -> Immunization:
    record = Immunization.objects(source_id=source_id).first()
    assert record is not None
    return record


@pytest.mark.parametrize(("changes", "errors"), [
    ({"dose_number": 10, "series_doses": 2}, {"dose_number": ["Must be greater than or equal to 1 and less than or "
                                                             "equal to 9."]}),
    ({"dose_number": 2, "series_doses": 12}, {"series_doses": ["Must be greater than or equal to 1 and less than or "
                                                               "equal to 9."]}),
])
def test_dose_numbers_an_eu_dcc_cannot_carry_are_refused_at_push(client, clinic, changes, errors):
    _, hanoi = clinic
    problem = assert_problem(push(client, hanoi, **changes), 422)
    assert problem["errors"] == errors
    assert Immunization.objects.count() == 0


def test_a_deprecated_vaccine_type_is_refused_at_push(client, clinic):
    _, hanoi = clinic
    problem = assert_problem(push(client, hanoi, vaccine=with_vaccine(vp="J07BX03")), 422)
    assert problem["errors"] == {"vaccine": {"vp": [
        "`J07BX03` is deprecated in the EU DCC value set for `vp`: not for new certificates."]}}
    assert Immunization.objects.count() == 0


def test_a_deprecated_product_is_refused_at_push(client, clinic):
    _, hanoi = clinic
    vaccine = {"tg": "840539006", "vp": "1162643001", "mp": "NVX-CoV2373", "ma": "ORG-100032020"}
    problem = assert_problem(push(client, hanoi, vaccine=vaccine), 422)
    assert set(problem["errors"]["vaccine"]) == {"mp"}


def test_a_product_with_another_makers_code_is_refused_at_push(client, clinic):
    _, hanoi = clinic
    problem = assert_problem(push(client, hanoi, vaccine=with_vaccine(ma="ORG-100030215")), 422)
    assert problem["errors"] == {"vaccine": {"ma": [
        "`EU/1/21/1529` (Vaxzevria) is made by `ORG-100001699` (AstraZeneca AB), per the EU DCC encoding "
        "instructions."]}}


def test_bulk_lines_are_refused_one_by_one(client, clinic):
    _, hanoi = clinic
    lines = [
        {"type": "immunization", "source_id": "B1", **immunization_body(dose_number=10)},
        {"type": "immunization", "source_id": "B2", **immunization_body(vaccine=with_vaccine(vp="J07BX03"))},
        {"type": "immunization", "source_id": "B3", **immunization_body(vaccine=with_vaccine(ma="ORG-100031184"))},
        {"type": "immunization", "source_id": "B4", **immunization_body(vaccine=VAXZEVRIA)},
    ]
    response = client.post(f"{V1}/facility/bulk", data="\n".join(json.dumps(line) for line in lines) + "\n",
                           headers={**hanoi, "Content-Type": "application/x-ndjson"})
    results = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [result["status"] for result in results] == [422, 422, 422, 201]
    assert set(results[0]["errors"]) == {"dose_number"}
    assert results[1]["errors"] == {"vaccine": {"vp": [
        "`J07BX03` is deprecated in the EU DCC value set for `vp`: not for new certificates."]}}
    assert set(results[2]["errors"]["vaccine"]) == {"ma"}
    assert [record.source_id for record in Immunization.objects] == ["B4"]


def test_a_booster_after_a_one_dose_series_is_certified_as_two_of_one(client, clinic):
    """2/1 is the EU's encoding of a booster after Jcovden (or after one dose and a recovery): valid data."""
    account, hanoi = clinic
    assert push(client, hanoi, vaccine=JCOVDEN, dose_number=2, series_doses=1).status_code == 201
    response = issue(client, account)
    assert response.status_code == 201, response.get_json()
    result = verified(response.get_json()["hc1"])
    assert result.valid, result.reasons
    assert result.payload is not None and (result.payload["v"][0]["dn"], result.payload["v"][0]["sd"]) == (2, 1)


def test_a_record_stored_with_a_deprecated_code_can_still_be_withdrawn(client, clinic):
    _, hanoi = clinic
    assert push(client, hanoi).status_code == 201
    Immunization.objects(source_id="IM1").update(set__vaccine__vp="J07BX03")  # stored before the rule
    old = {**immunization_body()["vaccine"], "vp": "J07BX03"}
    response = push(client, hanoi, vaccine=old, status="entered-in-error")
    assert response.status_code == 200, response.get_json()
    assert stored().status == "entered-in-error"


# How a record stored before these rules (or by an older HoSo) can be unfit for a certificate.
UNFIT = {
    "dose-above-the-dcc-range": ({"set__dose_number": 10}, "dose_number: An EU DCC carries 1 to 9."),
    "series-above-the-dcc-range": ({"set__series_doses": 12}, "series_doses: An EU DCC carries 1 to 9."),
    "deprecated-vaccine-type": ({"set__vaccine__vp": "J07BX03"}, "vaccine.vp: `J07BX03` is deprecated"),
    "deprecated-product": ({"set__vaccine__mp": "VLA2001", "set__vaccine__ma": "ORG-100036422"},
                           "vaccine.mp: `VLA2001` is deprecated"),
    "another-makers-code": ({"set__vaccine__ma": "ORG-100030215"}, "vaccine.ma: `EU/1/21/1529` (Vaxzevria) is "
                            "made by `ORG-100001699`"),
    "unknown-code": ({"set__vaccine__mp": "Sputnik-XL"}, "vaccine.mp: Not a code of the EU DCC value set"),
}


@pytest.mark.parametrize("case", sorted(UNFIT))
def test_a_stored_record_that_cannot_make_a_valid_dcc_is_409_and_nothing_is_issued(client, clinic, case):
    account, hanoi = clinic
    assert push(client, hanoi, vaccine=VAXZEVRIA).status_code == 201
    update, reason = UNFIT[case]
    Immunization.objects(source_id="IM1").update(**update)
    problem = assert_problem(issue(client, account), 409)
    assert problem["type"] == "/problems/vaccination-not-certifiable"
    assert reason in problem["detail"] and "facility 01001 on 2021-09-15" in problem["detail"], problem["detail"]
    assert Certificate.objects.count() == 0


def test_a_name_without_letters_icao_can_write_is_409_not_500(client, app):
    """A foreign resident registered in Chinese script: the push is fine, the DCC needs `fnt` in A-Z."""
    init_keys(system_context(), runtime().settings)
    account = CitizenActions(client).enrol(full_name="李 明")
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    body = immunization_body(full_name="李 明")
    assert client.put(f"{V1}/facility/immunizations/IM1", json=body, headers=hanoi).status_code == 201
    problem = assert_problem(issue(client, account), 409)
    assert problem["type"] == "/problems/vaccination-not-certifiable"
    assert "transliterates" in problem["detail"]


VACCINE_CODES = {field: sorted(valuesets.codes(field)) + ["", "X" * 70, "J07BX03"]
                 for field in valuesets.VACCINE_FIELDS}
DOSES = st.one_of(st.integers(-2, 25), st.just(True), st.text(max_size=3), st.none(), st.floats(allow_nan=True))


def _has_non_finite_number(value: Any) -> bool:
    """True when ``value`` holds NaN or an infinity, which JSON cannot carry (the API answers 400)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite_number(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_non_finite_number(item) for item in value)
    return False


@st.composite
def vaccinations(draw: st.DrawFn) -> dict[str, Any]:
    """A push body around a real one: codes from the value sets (deprecated ones included), mismatched
    makers, junk codes, dose numbers of every type, both statuses."""
    vaccine = {field: draw(st.sampled_from(VACCINE_CODES[field])) if draw(st.integers(0, 3)) == 0
               else VAXZEVRIA[field] for field in valuesets.VACCINE_FIELDS}
    body = immunization_body(vaccine=vaccine)
    for field in ("dose_number", "series_doses"):
        if draw(st.integers(0, 3)) == 0:
            body[field] = draw(DOSES)
    body["status"] = draw(st.sampled_from(["completed", "completed", "entered-in-error"]))
    return body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=vaccinations(), legacy=st.dictionaries(st.sampled_from(["vp", "mp", "ma"]),
                                                   st.sampled_from(sorted({c for v in VACCINE_CODES.values()
                                                                           for c in v})), max_size=2),
       legacy_dose=st.one_of(st.none(), st.integers(-1, 30)))
def test_push_and_issuance_never_answer_500(client, clinic, body, legacy, legacy_dose):
    """Whatever the push and whatever a record was stored with before: 2xx, 400 (a non-finite number,
    which JSON does not have), 409 or 422, never 500; a refused push stores nothing, and a passport that
    is issued verifies."""
    account, hanoi = clinic
    before = [(r.source_id, r.version) for r in Immunization.objects]
    response = client.put(f"{V1}/facility/immunizations/P", json=copy.deepcopy(body), headers=hanoi)
    assert response.status_code in (200, 201, 400, 422), response.get_data(as_text=True)
    event(f"push {response.status_code}")
    assert (response.status_code == 400) == _has_non_finite_number(body), response.get_data(as_text=True)
    if response.status_code in (400, 422):
        assert [(r.source_id, r.version) for r in Immunization.objects] == before
        assert_problem(response, response.status_code)
    if legacy or legacy_dose is not None:  # what an older HoSo may have stored
        changes: dict[str, Any] = {f"set__vaccine__{field}": code for field, code in legacy.items()}
        if legacy_dose is not None:
            changes["set__dose_number"] = legacy_dose
        Immunization.objects(source_id="P").update(inc__version=1, **changes)
    citizen = Citizen.objects(national_id=account.national_id).first()
    runtime().passport_quota.clear(str(citizen.id))  # 20 an hour per citizen: not what is tested here
    issued = issue(client, account)
    assert issued.status_code in (200, 201, 409), issued.get_data(as_text=True)
    event(f"issue {issued.status_code}")
    if issued.status_code in (200, 201):
        assert verified(issued.get_json()["hc1"]).valid
    else:
        assert assert_problem(issued, 409)["type"] in ("/problems/vaccination-not-certifiable",
                                                       "/problems/no-eligible-vaccination")
