"""Business rules through the API and the Flask CLI: verdict per rule, public rules, admin replacement, import."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.models.audit import AuditEvent
from app.models.rules import PassportRuleSet
from app.runtime import runtime
from app.services.signing_keys import init_keys
from tests.helpers import CitizenActions, assert_problem, facility_token, system_context
from tests.records_data import immunization_body

V1 = "/api/v1"
ROOT = Path(__file__).parents[2]
VN_RULES = json.loads((ROOT / "app" / "data" / "dcc-rules" / "VN.json").read_text(encoding="utf-8"))
FOREIGN = json.loads((ROOT / "tests" / "data" / "dcc" / "rules" / "XA.json").read_text(encoding="utf-8"))


def recent(days: int = 60) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).astimezone().isoformat(timespec="seconds")


@pytest.fixture
def passports(app, client):
    """Issue passports through the API for a few vaccinations; returns a function serial, changes -> hc1."""
    init_keys(system_context(), runtime().settings)
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}

    def issue(serial: int, **changes) -> str:
        account = CitizenActions(client).enrol(serial=serial)
        body = immunization_body(serial=serial, **({"reactions": None} if changes else {}), **changes)
        pushed = client.put(f"{V1}/facility/immunizations/IM{serial}", json=body, headers=hanoi)
        assert pushed.status_code == 201, pushed.json
        issued = client.post(f"{V1}/me/passports", headers=account.headers)
        assert issued.status_code == 201, issued.json
        return issued.json["hc1"]

    return issue


def verdicts(document) -> dict[str, str]:
    return {rule["id"]: rule["result"] for rule in document["rules"]}


def test_verify_answers_authentic_rules_and_valid(client, passports):
    fresh = passports(100001, administered_at=recent())
    answer = client.post(f"{V1}/passport/verify", json={"hc1": fresh}).json
    assert answer["authentic"] is True and answer["valid"] is True and answer["country"] == "VN"
    assert verdicts(answer) == dict.fromkeys(["GR-VN-0001", "VR-VN-0001", "VR-VN-0002", "VR-VN-0003",
                                              "VR-VN-0004", "VR-VN-0005"], "passed")
    first = answer["rules"][0]
    assert first["description"]["vi"].startswith("Việt Nam") and first["description"]["en"].startswith("Viet Nam")
    for field in ("reasons", "checks", "holder", "certificate"):  # the fields verifiers used before
        assert field in answer
    assert answer["reasons"] == []

    # The 2021 course of issue 13: authentic, but more than 365 days old.
    old = passports(100002)
    answer = client.post(f"{V1}/passport/verify", json={"hc1": old}).json
    assert answer["authentic"] is True and answer["valid"] is False
    assert {k for k, v in verdicts(answer).items() if v != "passed"} == {"VR-VN-0005"}
    assert answer["reasons"] == [f"rule VR-VN-0005: failed: {VN_RULES[5]['Description'][0]['desc']}"]
    # ... and on the day it was still within the window it met them (the clock is `at`).
    answer = client.post(f"{V1}/passport/verify", json={"hc1": old, "at": "2021-12-01T09:00:00+07:00"}).json
    # issued (and its DSC made) today, so not authentic then; but the rules all passed
    assert answer["authentic"] is False and answer["valid"] is False
    assert [c["name"] for c in answer["checks"] if c["status"] == "failed"] == ["issued_at", "dsc_validity"]
    assert set(verdicts(answer).values()) == {"passed"}


def test_bbibp_corv_meets_viet_nam_rules_but_not_a_country_that_takes_only_ema_products(client, passports, staff):
    sinopharm = passports(100003, administered_at=recent(), vaccine={
        "tg": "840539006", "vp": "1157024006", "mp": "BBIBP-CorV", "ma": "ORG-100020693", "name": "Vero Cell"})
    assert client.post(f"{V1}/passport/verify", json={"hc1": sinopharm}).json["valid"] is True
    response = client.post(f"{V1}/passport/verify", json={"hc1": sinopharm, "country": "XA"})
    assert_problem(response, 422)
    assert response.json["type"].endswith("/no-rules-for-country") and "country" in response.json["errors"]
    put = client.put(f"{V1}/admin/passport-rules/XA", json={"rules": FOREIGN}, headers=staff.headers())
    assert put.status_code == 200, put.json
    answer = client.post(f"{V1}/passport/verify", json={"hc1": sinopharm, "country": "XA"}).json
    assert answer["authentic"] is True and answer["valid"] is False and answer["country"] == "XA"
    assert {k for k, v in verdicts(answer).items() if v == "failed"} == {"VR-XA-0001"}


@pytest.mark.parametrize("body", [
    {"country": "vn"}, {"country": "VNM"}, {"country": {"$ne": ""}}, {"at": "2021-12-01T09:00:00"},
    {"at": "1999-01-01T00:00:00Z"}, {"at": "soon"}, {"rules": []},
])
def test_verify_refuses_bad_country_and_clock(client, body):
    assert_problem(client.post(f"{V1}/passport/verify", json={"hc1": "HC1:X", **body}), 422)


def test_rules_are_public_with_their_value_sets(client):
    document = client.get(f"{V1}/passport/rules").json
    assert list(document["countries"]) == ["VN"]
    assert document["countries"]["VN"]["rules"] == VN_RULES
    assert "840539006" in document["valueSets"]["disease-agent-targeted"]
    assert "BBIBP-CorV" in document["valueSets"]["vaccines-covid-19-names"]
    one = client.get(f"{V1}/passport/rules/VN").json
    assert one["countries"]["VN"]["rules"] == VN_RULES
    assert_problem(client.get(f"{V1}/passport/rules/XA"), 404)
    # installed once, audited as the shipped set
    assert AuditEvent.objects(action="passport.rules.install", target_id="VN").count() == 1


def test_admin_lists_and_replaces_a_rule_set_audited(client, staff):
    headers = staff.headers()
    listed = client.get(f"{V1}/admin/passport-rules/VN", headers=headers)
    assert listed.status_code == 200 and listed.json["rules"] == VN_RULES and listed.json["source"] == "shipped"
    assert_problem(client.get(f"{V1}/admin/passport-rules/XA", headers=headers), 404)

    stricter = copy.deepcopy(VN_RULES)
    stricter[5]["Version"] = "1.1.0"
    stricter[5]["Logic"]["if"][1]["not-after"][1]["plusTime"][1] = 270
    replaced = client.put(f"{V1}/admin/passport-rules/VN", json={"rules": stricter}, headers=headers)
    assert replaced.status_code == 200 and replaced.json["revision"] == 2 and replaced.json["source"] == "admin"
    assert client.get(f"{V1}/passport/rules/VN").json["countries"]["VN"]["rules"] == stricter  # at once here
    event = AuditEvent.objects(action="passport.rules.replace", target_id="VN").first()
    assert event is not None and event.actor_type == "staff" and event.details["rules"] == 6

    # every rule checked; nothing changes when one is wrong
    for bad in ([{**VN_RULES[0], "Country": "DE"}], [{**VN_RULES[0], "Identifier": "GR-DE-0001", "Country": "DE"}],
                [{**VN_RULES[0], "Logic": {"eval": ["1"]}}], [{**VN_RULES[0], "Logic": 1.5}],
                [{**VN_RULES[0], "Extra": "x"}], [{**VN_RULES[0], "Description": [{"lang": "en", "desc": "a\x00"}]}],
                [VN_RULES[0], VN_RULES[0]]):
        assert_problem(client.put(f"{V1}/admin/passport-rules/VN", json={"rules": bad}, headers=headers), 422)
    assert_problem(client.put(f"{V1}/admin/passport-rules/vn", json={"rules": VN_RULES}, headers=headers), 404)
    assert PassportRuleSet.objects(country="VN").first().revision == 2
    assert AuditEvent.objects(action="passport.rules.replace").count() == 1


def test_only_admins_change_rules(client, staff):
    assert client.put(f"{V1}/admin/passport-rules/VN", json={"rules": VN_RULES}).status_code == 401
    support = staff.headers("support")
    assert client.put(f"{V1}/admin/passport-rules/VN", json={"rules": VN_RULES}, headers=support).status_code == 403


def test_flask_cli_imports_rules_from_a_file(app, tmp_path):
    runner = app.test_cli_runner()
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(FOREIGN + VN_RULES[:2], ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(args=["passport", "rules", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert f"XA: {len(FOREIGN)} rule(s) stored" in result.output and "VN: 2 rule(s) stored" in result.output
    assert len(PassportRuleSet.objects(country="VN").first().rules) == 2
    assert AuditEvent.objects(action="passport.rules.replace", request_id="cli").count() == 2
    listed = runner.invoke(args=["passport", "rules", "list"])
    assert "VN: 2 rule(s)" in listed.output and f"XA: {len(FOREIGN)} rule(s)" in listed.output

    for bad in ("[]", "not json", json.dumps([{**VN_RULES[0], "Description": [{"lang": "en", "desc": "a\u0007"}]}])):
        path.write_text(bad, encoding="utf-8")
        result = runner.invoke(args=["passport", "rules", "import", str(path)])
        assert result.exit_code == 1 and "Error" in result.output
    assert len(PassportRuleSet.objects(country="VN").first().rules) == 2


def test_the_shipped_set_is_installed_once_and_never_over_an_admins(client, staff, passports):
    from app.services.passport_rules import install_shipped

    assert install_shipped(system_context()) == ["VN"]
    assert install_shipped(system_context()) == []
    event = AuditEvent.objects(action="passport.rules.install").get()
    assert event.actor_type == "system" and event.details == {"rules": 6, "source": "shipped"}
    # An administrator may decide that Viet Nam has no entry rules: then valid means authentic.
    emptied = client.put(f"{V1}/admin/passport-rules/VN", json={"rules": []}, headers=staff.headers())
    assert emptied.status_code == 200 and emptied.json["rules"] == []
    assert install_shipped(system_context()) == []
    old = passports(100009)
    answer = client.post(f"{V1}/passport/verify", json={"hc1": old}).json
    assert answer["rules"] == [] and answer["authentic"] is True and answer["valid"] is True


def test_cli_with_the_published_rules_gives_the_api_verdicts(client, passports, tmp_path):
    import io

    from passport.cli import main

    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(client.get(f"{V1}/passport/trust-list").json))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(client.get(f"{V1}/passport/rules/VN").json, ensure_ascii=False), encoding="utf-8")
    for serial, changes in ((100011, {"administered_at": recent()}), (100012, {}),
                            (100013, {"administered_at": recent(3), "dose_number": 1})):
        hc1 = passports(serial, **changes)
        api = client.post(f"{V1}/passport/verify", json={"hc1": hc1}).json
        out = io.StringIO()
        status = main(["verify", "--trust-list", str(trust), "--rules", str(rules), "--country", "VN", hc1],
                      stdout=out, stderr=io.StringIO())
        cli = json.loads(out.getvalue())
        assert status == (0 if api["valid"] else 1)
        assert [(r["id"], r["result"]) for r in cli["rules"]] == [(r["id"], r["result"]) for r in api["rules"]]
        assert (cli["authentic"], cli["valid"]) == (api["authentic"], api["valid"])
