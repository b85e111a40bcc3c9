"""Business rules in the gateway's format: parsing, selection, and a verdict per rule (passport.rules)."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from passport import RulesError, RuleSet, check_rules, verdict_json, verify
from passport.cli import main
from passport.rules import Rule, evaluate_logic, evaluate_rules, external_data, select_rules
from tests.passport.conftest import NOW, issue_checked, make_record

ROOT = Path(__file__).parents[2]
VN_RULES = json.loads((ROOT / "app" / "data" / "dcc-rules" / "VN.json").read_text(encoding="utf-8"))
VALUE_SETS = {"disease-agent-targeted": ["840539006"]}
RECENT = (NOW - timedelta(days=60)).date()


def vn() -> RuleSet:
    return RuleSet.from_json(VN_RULES, VALUE_SETS)


def verdicts(outcomes) -> dict[str, str]:
    return {outcome.rule.identifier: outcome.result for outcome in outcomes}


def rule(**changes) -> dict:
    document = copy.deepcopy(VN_RULES[3])  # VR-VN-0003, complete series
    document.update(changes)
    return document


def test_the_shipped_vn_rules_parse_and_speak_both_languages():
    rules = vn().of_country("VN")
    assert [r.identifier for r in rules] == ["GR-VN-0001", "VR-VN-0001", "VR-VN-0002", "VR-VN-0003",
                                             "VR-VN-0004", "VR-VN-0005"]
    assert all(set(r.descriptions) == {"vi", "en"} for r in rules)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"dose_number": 2, "series_doses": 2, "vaccination_date": RECENT}, set()),
    ({"mp": "BBIBP-CorV", "ma": "ORG-100020693", "vp": "J07BX03", "vaccination_date": RECENT}, set()),
    ({"vaccination_date": date(2021, 9, 15)}, {"VR-VN-0005"}),  # the 2021 course of issue 13
    ({"vaccination_date": (NOW - timedelta(days=3)).date()}, {"VR-VN-0004"}),
    ({"dose_number": 1, "series_doses": 2, "vaccination_date": RECENT}, {"VR-VN-0003"}),
    ({"mp": "CVnCoV", "ma": "ORG-100032020", "vaccination_date": RECENT}, {"VR-VN-0002"}),
])
def test_each_vn_rule_gives_its_own_verdict(signer, trust_list, changes, expected):
    passport = issue_checked(make_record(**changes), signer, NOW)
    result = verify(passport.hc1, trust_list, NOW)
    outcomes = check_rules(result, vn(), "VN", NOW)
    assert len(outcomes) == 6
    assert {identifier for identifier, verdict in verdicts(outcomes).items() if verdict != "passed"} == expected
    assert all(outcome.result in ("passed", "failed") for outcome in outcomes)
    document = verdict_json(result, outcomes, "VN")
    assert document["authentic"] is True and document["valid"] is (not expected)
    assert [r["id"] for r in document["rules"] if r["result"] == "failed"] == sorted(expected)
    assert {"vi", "en"} == set(document["rules"][0]["description"])
    assert len(document["reasons"]) == len(expected)


def test_a_forged_passport_is_not_valid_even_when_every_rule_passes(signer, trust_list):
    passport = issue_checked(make_record(vaccination_date=RECENT), signer, NOW)
    result = verify(passport.hc1, None, NOW)  # nothing trusted
    outcomes = check_rules(result, vn(), "VN", NOW)
    assert {o.result for o in outcomes} == {"passed"}
    document = verdict_json(result, outcomes, "VN")
    assert document["authentic"] is False and document["valid"] is False


def test_selection_follows_country_type_validity_and_version():
    base = vn().of_country("VN")[3]
    newer = Rule.from_json({**base.document, "Version": "1.1.0",
                            "ValidFrom": (NOW + timedelta(days=1)).isoformat()})
    recovery = Rule.from_json({**base.document, "Identifier": "RR-VN-0001", "CertificateType": "Recovery"})
    invalidation = Rule.from_json({**base.document, "Identifier": "IR-DE-0001", "Country": "DE",
                                   "Type": "Invalidation"})
    other = Rule.from_json({**base.document, "Identifier": "VR-DE-0003", "Country": "DE"})
    pool = [base, newer, recovery, invalidation, other]
    assert select_rules(pool, "VN", "VN", "vaccination", NOW) == [base]
    assert select_rules(pool, "VN", "VN", "vaccination", NOW + timedelta(days=2)) == [newer]
    assert select_rules(pool, "VN", "DE", "vaccination", NOW) == [invalidation, base]
    assert select_rules(pool, "VN", "VN", "recovery", NOW) == [recovery]
    assert select_rules(pool, "DE", "VN", "vaccination", NOW) == [other]
    assert select_rules(pool, "VN", "VN", "vaccination", datetime(2020, 1, 1, tzinfo=UTC)) == []


def test_open_when_a_rule_cannot_be_decided():
    payload = {"ver": "1.3.0", "v": [{"dn": 2, "sd": 2, "dt": "2026-05-01", "tg": "840539006"}]}
    external = external_data(NOW, "VN", {}, issued=NOW, expires=NOW, issuer_country="VN", kid=None)
    rules = [Rule.from_json(rule()), Rule.from_json(rule(Identifier="VR-VN-0009", EngineVersion="2.0.0")),
             Rule.from_json(rule(Identifier="VR-VN-0008", SchemaVersion="2.0.0")),
             Rule.from_json(VN_RULES[1]),  # names a value set that is not given
             Rule.from_json(rule(Identifier="VR-VN-0007", Logic={"var": "payload.v.0.dn"}))]
    outcomes = {o.rule.identifier: (o.result, o.reason) for o in evaluate_rules(rules, payload, external)}
    assert outcomes["VR-VN-0003"] == ("passed", None)
    assert outcomes["VR-VN-0009"][0] == "open" and "engine" in outcomes["VR-VN-0009"][1]
    assert outcomes["VR-VN-0008"][0] == "open" and "schema" in outcomes["VR-VN-0008"][1]
    assert outcomes["VR-VN-0001"][0] == "open"
    assert outcomes["VR-VN-0007"] == ("open", "evaluated to 2, not true or false")


@pytest.mark.parametrize(("logic", "data", "expected"), [
    ({"<": [1, 2]}, {}, True),
    ({"===": [1, True]}, {}, False),
    ({"in": ["a", ["a", "b"]]}, {}, True),
    ({"+": [1, 2]}, {}, 3),
    ({"after": [{"plusTime": ["2021-06", 0, "day"]}, {"plusTime": ["2021-06-29", 0, "day"]}]}, {}, True),
    ({"not-after": [{"dccDateOfBirth": ["1990"]}, {"plusTime": ["1990-12-31", 0, "day"]}]}, {}, True),
    ({"extractFromUVCI": [{"var": "u"}, 1]}, {"u": "URN:UVCI:01:VN:ABC#Q"}, "VN"),
])
def test_certlogic_operations(logic, data, expected):
    assert evaluate_logic(logic, data) == expected


@pytest.mark.parametrize("logic", [
    {"<": [None, 2]},  # JsonLogic would say true; CertLogic needs integers
    {"in": ["a", "abc"]},  # JsonLogic looks for a substring; CertLogic needs an array
    {"after": ["2021-01-02", "2021-01-01"]},  # date-times come from plusTime
    {"plusTime": ["2021-01-01", 1, "week"]},
    {"!": [{"plusTime": ["2021-01-01", 0, "day"]}]},
])
def test_certlogic_type_errors_raise(logic):
    with pytest.raises((TypeError, ValueError)):
        evaluate_logic(logic, {})


@pytest.mark.parametrize(("changes", "message"), [
    ({"Identifier": "XX-VN-0001"}, "Identifier"),
    ({"Country": "DE"}, "Country"),
    ({"Identifier": "GR-VN-0003"}, "named VR"),
    ({"Version": "1.0"}, "Version"),
    ({"ValidTo": "2021-01-01T00:00:00Z"}, "after ValidFrom"),
    ({"ValidFrom": "2021-07-01"}, "time zone"),
    ({"Description": [{"lang": "vi", "desc": "chỉ tiếng Việt"}]}, "English"),
    ({"Logic": {"eval": ["x"]}}, "unknown CertLogic operation"),
    ({"Logic": {"if": [True, 1.5, 2]}}, "no literal"),
    ({"Logic": {"===": [1, 1], "in": [1, [1]]}}, "exactly one key"),
    ({"Extra": 1}, "unknown field"),
])
def test_malformed_rules_are_refused(changes, message):
    with pytest.raises(RulesError, match=message):
        RuleSet.from_json([rule(**changes)])


def test_deeply_nested_logic_is_refused():
    logic: object = True
    for _ in range(100):
        logic = {"!": [logic]}
    with pytest.raises(RulesError, match="nested"):
        RuleSet.from_json([rule(Logic=logic)])


def run(*argv: str) -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdin=io.StringIO(""), stdout=out, stderr=err)
    return status, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


@pytest.fixture
def files(tmp_path, signer, trust_list):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(trust_list.to_json()))
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": VN_RULES, "valueSets": VALUE_SETS}, ensure_ascii=False))
    return trust, rules


def test_cli_verdict_per_rule(files, signer):
    trust, rules = files
    at = NOW.isoformat()
    fresh = issue_checked(make_record(vaccination_date=RECENT), signer, NOW)
    status, document, _ = run("verify", "--trust-list", str(trust), "--rules", str(rules), "--at", at, fresh.hc1)
    assert status == 0 and document["valid"] is True and document["authentic"] is True
    assert document["country"] == "VN" and {r["result"] for r in document["rules"]} == {"passed"}

    old = issue_checked(make_record(), signer, NOW)  # vaccinated on 2021-09-15
    status, document, _ = run("verify", "--trust-list", str(trust), "--rules", str(rules), "--country", "VN",
                              "--at", at, old.hc1)
    assert status == 1 and document["authentic"] is True and document["valid"] is False
    assert {r["id"]: r["result"] for r in document["rules"]}["VR-VN-0005"] == "failed"
    assert any(reason.startswith("rule VR-VN-0005: failed") for reason in document["reasons"])

    # Without rules nothing but authenticity is judged.
    status, document, _ = run("verify", "--trust-list", str(trust), "--at", at, old.hc1)
    assert status == 0 and document["rules"] == [] and document["valid"] is True


@pytest.mark.parametrize("extra", [["--country", "DE"], ["--country", "vn"], ["--rules", "missing.json"],
                                   ["--rules", "BAD"]])
def test_cli_rule_usage_errors(files, signer, tmp_path, extra):
    trust, rules = files
    (tmp_path / "BAD").write_text(json.dumps([{"Identifier": "nope"}]))
    extra = [str(tmp_path / "BAD") if item == "BAD" else item for item in extra]
    argv = ["verify", "--trust-list", str(trust)]
    if "--rules" not in extra:
        argv += ["--rules", str(rules)]
    passport = issue_checked(make_record(), signer, NOW)
    status, document, err = run(*argv, *extra, passport.hc1)
    assert status == 2 and document is None and err


def test_cli_country_needs_rules(files, signer):
    trust, _rules = files
    passport = issue_checked(make_record(), signer, NOW)
    status, _, err = run("verify", "--trust-list", str(trust), "--country", "VN", passport.hc1)
    assert status == 2 and "--rules" in err


def test_a_validity_past_year_one_is_a_rules_error_not_an_overflow():
    """Review: a zone that moves ValidFrom before year 1 raised OverflowError (a 500 on the admin route)."""
    rule = copy.deepcopy(VN_RULES[0])
    rule["ValidFrom"] = "0001-01-01T00:00:00+01:00"
    with pytest.raises(RulesError):
        RuleSet.from_json([rule], VALUE_SETS)
