"""The DCC payload: names, ICAO transliteration, UVCI, schema."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from passport import PayloadError, build_payload, is_valid_uvci, new_uvci, split_full_name, transliterate
from passport.payload import uvci_check_character
from passport.schema import choose_version, validate_payload
from tests.passport.conftest import make_record

UVCI = "URN:UVCI:01:VN:ABCDEFGHJK1234567890#" + uvci_check_character("URN:UVCI:01:VN:ABCDEFGHJK1234567890")


def test_uvci_check_character_of_the_published_example():
    assert uvci_check_character("URN:UVCI:01:NL:187/37512422923") == "Z"
    assert is_valid_uvci("URN:UVCI:01:NL:187/37512422923#Z")


def test_new_uvcis_are_random_and_valid():
    made = {new_uvci() for _ in range(200)}
    assert len(made) == 200
    for uvci in made:
        assert re.fullmatch(r"URN:UVCI:01:VN:[A-Z0-9]{20,}#[A-Z0-9/:]", uvci)
        assert is_valid_uvci(uvci)


@pytest.mark.parametrize("tampered", [
    "URN:UVCI:01:NL:187/37512422924#Z",  # a digit changed
    "URN:UVCI:01:NL:187/37512422923#Y",  # wrong check character
    "URN:UVCI:01:NL:187/37512422923",  # no check character
    "urn:uvci:01:NL:187/37512422923#Z",  # lower case
    "URN:UVCI:02:NL:187/37512422923#Z",  # unknown version
])
def test_tampered_uvcis_are_invalid(tampered):
    assert not is_valid_uvci(tampered)


def test_luhn_mod_38_detects_every_single_substitution():
    body = "URN:UVCI:01:VN:ABCDEFGHJK1234567890"
    check = uvci_check_character(body)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"
    for position in range(len(body)):
        for replacement in alphabet:
            if replacement != body[position]:
                changed = body[:position] + replacement + body[position + 1:]
                assert uvci_check_character(changed) != check


def test_check_character_refuses_foreign_characters():
    with pytest.raises(PayloadError):
        uvci_check_character("URN:UVCI:01:VN:abc")


@pytest.mark.parametrize("name, expected", [
    ("Đặng", "DANG"),
    ("Thị Ngọc Ánh", "THI<NGOC<ANH"),
    ("Nguyễn Văn Nam", "NGUYEN<VAN<NAM"),
    ("đỗ  Thị   Hương", "DO<THI<HUONG"),
    ("Ưng Ơn Ứ Ợ", "UNG<ON<U<O"),
    ("Lê-Hoàng", "LE<HOANG"),
    ("Bùi Thị Thuỷ", "BUI<THI<THUY"),
    ("Musterfrau-Gößinger", "MUSTERFRAU<GOESSINGER"),
    ("O'Brien", "OBRIEN"),
    ("  Trần  ", "TRAN"),
    ("Ærøskøbing Åsa", "AEROESKOEBING<AASA"),
    ("", ""),
])
def test_icao_transliteration(name, expected):
    assert transliterate(name) == expected


def test_transliteration_is_capped_at_80_characters():
    long = " ".join(["Nguyễn"] * 30)
    result = transliterate(long)
    assert len(result) <= 80 and not result.endswith("<")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_transliteration_only_yields_a_to_z_and_filler(name):
    result = transliterate(name)
    assert re.fullmatch(r"[A-Z<]*", result)
    assert len(result) <= 80
    assert "<<" not in result and not result.startswith("<") and not result.endswith("<")


@pytest.mark.parametrize("full, expected", [
    ("Đặng Thị Ngọc Ánh", ("Đặng", "Thị Ngọc Ánh")),
    ("Nguyễn Văn Nam", ("Nguyễn", "Văn Nam")),
    ("  Lò   Văn  Pá ", ("Lò", "Văn Pá")),
    ("Hoa", ("Hoa", "")),
])
def test_split_full_name_in_vietnamese_order(full, expected):
    assert split_full_name(full) == expected


def test_payload_of_a_vaccination():
    payload = build_payload(make_record(), UVCI)
    assert payload == {
        "ver": "1.3.0",
        "nam": {"fn": "Đặng", "fnt": "DANG", "gn": "Thị Ngọc Ánh", "gnt": "THI<NGOC<ANH"},
        "dob": "1985-03-14",
        "v": [{
            "tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
            "dn": 2, "sd": 2, "dt": "2021-09-15", "co": "VN", "is": "Bộ Y tế", "ci": UVCI,
        }],
    }
    assert validate_payload(payload, "1.3.3", formats=True).ok


def test_names_are_nfc_normalised():
    decomposed = unicodedata.normalize("NFD", "Đặng")
    assert decomposed != "Đặng"
    payload = build_payload(make_record(family_name=decomposed, given_name=" Thị  Ngọc Ánh "), UVCI)
    assert payload["nam"]["fn"] == "Đặng"
    assert payload["nam"]["gn"] == "Thị Ngọc Ánh"


def test_a_one_word_name_has_no_given_name():
    payload = build_payload(make_record(family_name="Hoa", given_name=""), UVCI)
    assert payload["nam"] == {"fn": "Hoa", "fnt": "HOA"}


@pytest.mark.parametrize("dob", ["1985", "1985-03", "1985-03-14", "2000-02-29"])
def test_partial_dates_of_birth(dob):
    assert build_payload(make_record(date_of_birth=dob), UVCI)["dob"] == dob


def test_a_datetime_gives_its_own_local_date():
    moment = datetime(2021, 9, 15, 6, 20, tzinfo=UTC).astimezone()  # any zone: the date is the zone's
    payload = build_payload(make_record(vaccination_date=moment), UVCI)
    assert payload["v"][0]["dt"] == moment.date().isoformat()


@pytest.mark.parametrize("changes, message", [
    ({"date_of_birth": "14/03/1985"}, "date_of_birth"),
    ({"date_of_birth": "1985-02-30"}, "calendar"),
    ({"date_of_birth": "1899-01-01"}, "date_of_birth"),
    ({"date_of_birth": "2022-01-01"}, "before the date of birth"),
    ({"dose_number": 0}, "dose_number"),
    ({"series_doses": 10}, "series_doses"),
    ({"dose_number": True}, "dose_number"),
    ({"family_name": "  "}, "family name is empty"),
    ({"family_name": "李"}, "transliterates"),
    ({"family_name": "A" * 81}, "80"),
    ({"issuer": ""}, "issuer"),
    ({"tg": 840539006}, "schema"),
    ({"country": "Vietnam"}, "country"),
    ({"vp": " "}, "vp is empty"),
    ({"vaccination_date": date(2021, 9, 15), "ma": None}, "schema"),
])
def test_bad_records_are_refused(changes, message):
    with pytest.raises(PayloadError, match=message):
        build_payload(make_record(**changes), UVCI)


def test_a_bad_uvci_is_refused():
    with pytest.raises(PayloadError, match="UVCI"):
        build_payload(make_record(), UVCI[:-1] + ("A" if UVCI[-1] != "A" else "B"))


@pytest.mark.parametrize("declared, chosen", [
    ("1.3.0", "1.3.0"), ("1.3.3", "1.3.3"), ("1.3.7", "1.3.3"), ("1.0.0", "1.0.0"), ("1.4.0", "1.3.3"),
    ("2.0.0", None), ("x", None), (130, None), (None, None),
])
def test_schema_is_chosen_by_the_payloads_own_version(declared, chosen):
    assert choose_version(declared)[0] == chosen


def test_schema_reports_instead_of_raising():
    assert not validate_payload({"ver": "1.3.0"}).ok
    assert not validate_payload({"ver": "1.3.0", "nam": {"fnt": "X"}, "dob": "", "v": [{"ci": b"bytes"}]}).ok
    assert not validate_payload("not a map").ok
    report = validate_payload({"ver": "1.3.0", "nam": {"fnt": "X"}, "dob": "", 1: "int key"})
    assert not report.ok and "not JSON" in report.message
