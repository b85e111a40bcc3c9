"""The QĐ 130/4750 insurance XML parser: mapping to visit push bodies, hostile input, bad records, limits.

Pure unit tests (no app, no database). Fixtures are in ``tests/data/xml130/`` and come from its
``make_fixtures.py``; variants are built here with the same helpers.
"""

from __future__ import annotations

import ast
import base64
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.ingest import xml130
from app.services.ingest.xml130 import MAX_NOTES_CHARS, MAX_TABLE_BYTES, Xml130Error, normalise_icd10, parse_envelope
from tests.data.xml130 import make_fixtures as fx

DATA = Path(__file__).parents[1] / "data" / "xml130"
ALLOWED_LAB_KEYS = {"code", "name", "value", "unit", "conclusion", "at"}


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture(scope="module")
def two_visits() -> list[xml130.Xml130Record]:
    facility, records = parse_envelope(fixture("two_visits.xml"))
    assert facility == "79012"
    return records


@pytest.fixture(scope="module")
def nam(two_visits) -> dict[str, Any]:
    return two_visits[0].visit


@pytest.fixture(scope="module")
def hoa(two_visits) -> dict[str, Any]:
    return two_visits[1].visit


def one_record(xml1: dict[str, str] | None = None, *, xml2: list[dict[str, str]] | None = None,
               xml4: list[dict[str, str]] | None = None, xml5: list[dict[str, str]] | None = None,
               files: tuple[tuple[str, bytes | str], ...] = ()) -> xml130.Xml130Record:
    """Parse an envelope holding one visit built from the first fixture visit with changes."""
    tables: list[tuple[str, bytes | str]] = [("XML1", fx.summary({**fx.NAM_XML1, **(xml1 or {})}))]
    if xml2 is not None:
        tables.append(("XML2", fx.drugs(xml2)))
    if xml4 is not None:
        tables.append(("XML4", fx.results(xml4)))
    if xml5 is not None:
        tables.append(("XML5", fx.progress(xml5)))
    _, records = parse_envelope(fx.envelope([tables + list(files)]))
    assert len(records) == 1
    return records[0]


def walk(value: Any) -> list[Any]:
    """Every scalar in a nested structure."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in walk(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in walk(item)]
    return [value]


# --- the fixtures themselves ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(fx.build_all()))
def test_committed_fixture_matches_its_generator(name):
    assert fixture(name) == fx.build_all()[name]


# --- mapping of the two-visit envelope ------------------------------------------------------------------

def test_envelope_records_in_order_without_problems(two_visits):
    assert [(r.index, r.source_id, r.facility_code, r.problems) for r in two_visits] == [
        (0, "KB2606020001", "79012", []),
        (1, "DT2606030007", "79012", []),
    ]


def test_identity_from_xml1(nam, hoa):
    assert {key: nam[key] for key in ("national_id", "full_name", "date_of_birth", "sex")} == {
        "national_id": "001085123456", "full_name": "Nguyễn Văn Nam", "date_of_birth": "1985-03-14",
        "sex": "male"}
    assert {key: hoa[key] for key in ("national_id", "full_name", "date_of_birth", "sex")} == {
        "national_id": "079190004321", "full_name": "Trần Thị Hoà", "date_of_birth": "1990-07-25",
        "sex": "female"}


def test_visit_fields_with_minute_dates(nam):
    assert nam["visit_type"] == "01"
    assert nam["started_at"] == "2026-06-02T08:30:00+07:00"
    assert nam["ended_at"] == "2026-06-02T09:10:00+07:00"
    assert nam["department"] == "K01"
    assert nam["reason"] == "Ho kéo dài"
    assert nam["follow_up_date"] == "2026-06-09"
    assert nam["status"] == "final"


def test_visit_fields_with_day_dates_mean_local_midnight(hoa):
    assert hoa["visit_type"] == "02"  # MA_LOAI_KCB "2" padded to two digits
    assert hoa["started_at"] == "2026-06-03T00:00:00+07:00"
    assert hoa["ended_at"] == "2026-06-05T00:00:00+07:00"
    assert hoa["department"] == "K03;K19"


def test_principal_and_secondary_diagnoses(nam):
    assert nam["diagnoses"] == [
        {"code": "J20.9", "display": "Viêm phế quản cấp", "text": "Viêm phế quản cấp", "principal": True},
        {"code": "I10", "principal": False},
        {"code": "E11.9", "principal": False},
    ]


def test_secondary_codes_are_normalised_before_dedupe(hoa):
    # "K21.9;;  ; k219 ;R10.1": blanks dropped, "k219" is the same code as "K21.9"
    assert [(d["code"], d["principal"]) for d in hoa["diagnoses"]] == [
        ("K29.1", True), ("K21.9", False), ("R10.1", False)]
    assert all("text" not in d and "display" not in d for d in hoa["diagnoses"][1:])


def test_secondary_code_equal_to_the_principal_is_not_repeated():
    record = one_record({"MA_BENH_CHINH": "J20.9", "MA_BENH_KT": "J209;I10"})
    assert [d["code"] for d in record.visit["diagnoses"]] == ["J20.9", "I10"]


def test_practitioner_is_the_first_drug_row_by_stt_without_a_name(nam, hoa):
    # STT 1 is listed second in the file and names "BS001;BS009": the first doctor of the first row
    assert nam["practitioner"] == {"code": "BS001"}
    assert hoa["practitioner"] == {"code": "BS014"}


def test_practitioner_falls_back_to_the_first_result_row():
    rows = [{**row, "MA_BAC_SI": code} for row, code in zip(fx.NAM_XML4, ("BS021", "BS022"), strict=True)]
    assert one_record(xml4=rows).visit["practitioner"] == {"code": "BS021"}
    assert "practitioner" not in one_record().visit


def test_one_prescription_with_items_by_stt(nam):
    assert nam["prescriptions"] == [{"items": [
        {"drug_code": "40.17", "name": "Amoxicillin", "strength": "500mg",
         "dose_text": "1 viên/lần * 3 lần/ngày * 7 ngày [3 viên/ngày]; Uống sau ăn", "quantity": 21,
         "route": "1.01"},
        {"drug_code": "40.1026", "name": "Paracetamol", "strength": "500mg",
         "dose_text": "1 viên/lần * 2 lần/ngày * 5 ngày [2 viên/ngày]; Uống khi sốt trên 38,5 độ",
         "quantity": 10, "route": "1.01"},
        {"drug_code": "40.677", "name": "Siro ho thảo dược", "quantity": 7.5, "route": "1.01"},
    ]}]
    quantities = [item["quantity"] for item in nam["prescriptions"][0]["items"]]
    assert [type(q) for q in quantities] == [int, int, float]  # "10.000" is whole: an int


def test_prescription_never_carries_a_national_code(nam, hoa):
    assert all("code" not in p for p in nam["prescriptions"] + hoa["prescriptions"])


def test_lab_results_keep_values_as_sent_and_invent_nothing(nam, hoa):
    assert nam["lab_results"] == [
        {"code": "CRP", "name": "CRP", "value": "12.50", "unit": "mg/L", "conclusion": "Tăng nhẹ",
         "at": "2026-06-02T08:50:00+07:00"},
        {"code": "18.0071.0028", "name": "X-quang ngực thẳng",
         "conclusion": "Rốn phổi hai bên đậm, không thấy tổn thương nhu mô",
         "at": "2026-06-02T09:05:00+07:00"},
    ]
    assert hoa["lab_results"] == [  # a vendor's own wrapper names; "<" survives escaping
        {"code": "22.0120.1370", "name": "Test H. pylori nhanh", "value": "Âm tính",
         "conclusion": "Không phát hiện H. pylori", "at": "2026-06-03T00:00:00+07:00"},
        {"code": "AMYLASE", "name": "Amylase máu", "value": "<5", "unit": "U/L",
         "at": "2026-06-04T00:00:00+07:00"},
    ]
    assert all(set(result) <= ALLOWED_LAB_KEYS for result in nam["lab_results"] + hoa["lab_results"])


def test_notes_hold_advice_result_and_dated_progress_by_stt(nam):
    assert nam["notes"] == (
        "Uống nhiều nước ấm, tái khám sau 1 tuần hoặc khi sốt cao\n"
        "Kết quả điều trị: Đỡ\n"
        "Diễn biến lâm sàng:\n"
        "- [02/06/2026 08:40] Diễn biến: Sốt 38,2 độ, ho khan, phổi ran rít; "
        "Hội chẩn: Hội chẩn khoa: đồng ý điều trị ngoại trú\n"
        "- [02/06/2026 09:00] Diễn biến: Hết sốt, còn ho ít đờm")


def test_several_follow_up_dates_give_the_earliest_and_all_in_notes(hoa):
    assert hoa["follow_up_date"] == "2026-06-12"  # NGAY_TAI_KHAM "20260619;20260612"
    assert "Hẹn tái khám: 12/06/2026; 19/06/2026" in hoa["notes"]
    assert "- [04/06/2026] Diễn biến: Đau thượng vị giảm, ăn uống được; Phẫu thuật: Nội soi" in hoa["notes"]


def test_no_empty_strings_are_sent(nam, hoa):
    assert all(leaf not in ("", None, [], {}) for leaf in walk(nam) + walk(hoa))


def test_a_bom_on_an_inner_table_is_accepted(hoa):
    # the second visit's XML2 starts with EF BB BF
    assert b"77u/" in fixture("two_visits.xml")  # base64 of a UTF-8 BOM at the start of a table
    assert hoa["prescriptions"][0]["items"][0]["name"] == "Omeprazol"


# --- field rules, one at a time -------------------------------------------------------------------------

@pytest.mark.parametrize(("sent", "expected"), [
    ("J209", "J20.9"), ("J20.9", "J20.9"), ("j20.9", "J20.9"), (" E11.9 ", "E11.9"), ("I10", "I10"),
    ("S7200", "S72.00"), ("U071", "U07.1"), ("K21.", "K21"), ("J20 9", "J20.9"),
    ("A17.0†", "A17.0†"), ("G01*", "G01*"), ("12345", "12345"), ("J2", "J2"), ("J20.91234", "J20.91234"),
])
def test_icd10_normalisation(sent, expected):
    assert normalise_icd10(sent) == expected


def test_unnormalisable_code_is_passed_through_for_the_app_to_reject():
    record = one_record({"MA_BENH_CHINH": "G01*", "MA_BENH_KT": "xyz"})
    assert [d["code"] for d in record.visit["diagnoses"]] == ["G01*", "xyz"]
    assert record.problems == []


@pytest.mark.parametrize(("sent", "expected"), [
    ("198503140000", "1985-03-14"), ("198503142359", "1985-03-14"), ("19850314", "1985-03-14"),
    ("198503000000", "1985-03"), ("198500000000", "1985"), ("19850000", "1985"),
])
def test_birth_dates_including_unknown_day_or_month(sent, expected):
    record = one_record({"NGAY_SINH": sent})
    assert (record.visit["date_of_birth"], record.problems) == (expected, [])


@pytest.mark.parametrize("sent", ["19850230", "198513140000", "1985031", "85-03-14", "19850014",
                                  "000000000000"])
def test_bad_birth_date_is_a_problem(sent):
    record = one_record({"NGAY_SINH": sent})
    assert "date_of_birth" not in record.visit
    assert record.problems == [f"XML1: NGAY_SINH {sent!r} is not a date (yyyyMMddHHmm or yyyyMMdd)."]


@pytest.mark.parametrize(("field", "sent"), [
    ("NGAY_VAO", "20260631"), ("NGAY_VAO", "202606022460"), ("NGAY_RA", "2026060209"),
    ("NGAY_RA", "2/6/2026"),
    ("NGAY_TAI_KHAM", "20260609;2026069"),
])
def test_bad_visit_date_is_a_problem(field, sent):
    record = one_record({field: sent})
    assert len(record.problems) == 1
    assert record.problems[0].startswith(f"XML1: {field} ")


def test_digits_of_other_scripts_are_not_digits():
    record = one_record({"NGAY_VAO": "٢٠٢٦٠٦٠٢٠٨٣٠"}, xml5=[{"STT": "²", "DIEN_BIEN_LS": "ổn định"}])
    assert record.problems == [
        "XML1: NGAY_VAO '٢٠٢٦٠٦٠٢٠٨٣٠' is not a date (yyyyMMddHHmm or yyyyMMdd)."]
    assert record.visit["notes"].endswith("- Diễn biến: ổn định")


def test_bad_result_or_progress_date_is_a_problem():
    record = one_record(xml4=[{**fx.NAM_XML4[0], "NGAY_KQ": "2026-06-02"}],
                        xml5=[{**fx.NAM_XML5[0], "THOI_DIEM_DBLS": "20261302"}])
    assert record.problems == [
        "XML4: NGAY_KQ '2026-06-02' is not a date (yyyyMMddHHmm or yyyyMMdd).",
        "XML5: THOI_DIEM_DBLS '20261302' is not a date (yyyyMMddHHmm or yyyyMMdd).",
    ]


def test_missing_end_and_follow_up_are_dropped_not_sent_empty():
    visit = one_record({"NGAY_RA": "", "NGAY_TAI_KHAM": "", "GHI_CHU": "", "KET_QUA_DTRI": ""}).visit
    assert {"ended_at", "follow_up_date", "notes"}.isdisjoint(visit)


@pytest.mark.parametrize(("sent", "expected"),
                         [("1", "male"), ("2", "female"), ("3", "unknown"), ("", "unknown")])
def test_sex(sent, expected):
    assert one_record({"GIOI_TINH": sent}).visit["sex"] == expected


@pytest.mark.parametrize(("sent", "expected"),
                         [("1", "01"), ("01", "01"), ("3", "03"), ("09", "09"), ("x1", "x1")])
def test_visit_type_is_two_digits(sent, expected):
    assert one_record({"MA_LOAI_KCB": sent}).visit["visit_type"] == expected


@pytest.mark.parametrize(("code", "label"), [("1", "Khỏi"), ("5", "Tử vong"), ("6", "Tiên lượng nặng xin về"),
                                             ("9", "9")])
def test_treatment_result_is_spelled_out_in_notes(code, label):
    assert f"Kết quả điều trị: {label}" in one_record({"KET_QUA_DTRI": code}).visit["notes"]


def test_lab_code_prefers_the_index_code_and_conclusion_prefers_ket_luan():
    row = {"MA_DICH_VU": "23.0001", "MA_CHI_SO": "GLU", "TEN_CHI_SO": "Glucose", "GIA_TRI": "5.6",
           "DON_VI_DO": "mmol/L", "KET_LUAN": "Bình thường", "MO_TA": "mô tả", "NGAY_KQ": "202606020850"}
    assert one_record(xml4=[row]).visit["lab_results"] == [
        {"code": "GLU", "name": "Glucose", "value": "5.6", "unit": "mmol/L", "conclusion": "Bình thường",
         "at": "2026-06-02T08:50:00+07:00"}]


def test_dose_text_joins_dose_and_directions_once():
    rows = [{"STT": "1", "TEN_THUOC": "A", "LIEU_DUNG": "Uống", "CACH_DUNG": "Uống"},
            {"STT": "2", "TEN_THUOC": "B", "CACH_DUNG": "Sau ăn"}]
    items = one_record(xml2=rows).visit["prescriptions"][0]["items"]
    assert [item.get("dose_text") for item in items] == ["Uống", "Sau ăn"]


@pytest.mark.parametrize("sent", ["1E+999999999", "abc", "1,5", "NaN", "Infinity", "1.2.3"])
def test_quantity_that_is_not_a_plain_number_is_a_problem(sent):
    started = time.monotonic()
    record = one_record(xml2=[{"STT": "1", "TEN_THUOC": "A", "SO_LUONG": sent}])
    assert time.monotonic() - started < 2
    assert record.problems == [f"XML2: SO_LUONG {sent!r} is not a number."]
    assert "quantity" not in record.visit["prescriptions"][0]["items"][0]


def test_progress_without_stt_goes_last_in_document_order():
    rows = [{"DIEN_BIEN_LS": "c"}, {"STT": "2", "DIEN_BIEN_LS": "b"}, {"STT": "1", "DIEN_BIEN_LS": "a"},
            {"DIEN_BIEN_LS": "d"}]
    notes = one_record({"GHI_CHU": "", "KET_QUA_DTRI": ""}, xml5=rows).visit["notes"]
    assert notes.splitlines() == ["Diễn biến lâm sàng:", "- Diễn biến: a", "- Diễn biến: b", "- Diễn biến: c",
                                  "- Diễn biến: d"]


def test_notes_are_capped():
    rows = [{"STT": str(n), "DIEN_BIEN_LS": "Ổn định, tiếp tục điều trị. " * 10,
             "THOI_DIEM_DBLS": "202606020840"} for n in range(1, 60)]
    notes = one_record(xml5=rows).visit["notes"]
    assert len(notes) == MAX_NOTES_CHARS
    assert notes.endswith("…")
    assert notes.startswith("Uống nhiều nước ấm")


def test_text_is_nfc_normalised_and_name_spaces_collapsed():
    decomposed = "Nguye\u0302\u0303n  Va\u0306n   Nam"  # NFD, as some systems send it
    assert one_record({"HO_TEN": decomposed}).visit["full_name"] == "Nguyễn Văn Nam"


# --- tolerance of real exports --------------------------------------------------------------------------

def test_inner_tables_in_utf16_with_bom_or_mislabelled_as_utf16():
    xml1 = fx.summary(fx.NAM_XML1).decode()
    utf16 = xml1.replace('encoding="utf-8"', 'encoding="utf-16"')
    for table in (utf16.encode("utf-16"), utf16.encode()):  # the second: .NET's StringWriter mislabel
        _, [record] = parse_envelope(fx.envelope([[("XML1", table)]]))
        assert (record.visit["full_name"], record.problems) == ("Nguyễn Văn Nam", [])


def test_namespaces_leading_whitespace_and_wrapped_base64_are_accepted():
    xml1 = b"\n  " + fx.summary(fx.NAM_XML1).replace(b"<TONG_HOP>", b'<TONG_HOP xmlns="urn:vendor">')
    encoded = base64.encodebytes(xml1).decode()  # wrapped every 76 characters
    assert "\n" in encoded.strip()
    _, [record] = parse_envelope(fx.envelope([[("XML1", encoded)]]))
    assert (record.visit["full_name"], record.problems) == ("Nguyễn Văn Nam", [])


def test_envelope_with_bom_and_other_tables_skipped_unread():
    data = fx.BOM + fx.envelope([[("XML1", fx.summary(fx.NAM_XML1)), ("XML3", "not base64 at all!"),
                                  ("XML15", "<x/>")]])
    facility, [record] = parse_envelope(data)
    assert (facility, record.problems) == ("79012", [])


def test_facility_code_falls_back_to_the_envelope():
    _, [record] = parse_envelope(fx.envelope([[("XML1", fx.summary({**fx.NAM_XML1, "MA_CSKCB": ""}))]]))
    assert (record.facility_code, record.problems) == ("79012", [])


# --- hostile documents ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_dtd_in_the_envelope_is_refused_before_anything_expands(name):
    started = time.monotonic()
    with pytest.raises(Xml130Error) as raised:
        parse_envelope(fixture(name))
    assert time.monotonic() - started < 2
    message = str(raised.value)
    assert message == "The document declares a DTD or entities, which are not accepted."
    assert "lol" not in message and "root:" not in message


def test_xml130_error_is_a_value_error():
    assert issubclass(Xml130Error, ValueError)


@pytest.mark.parametrize(("data", "message"), [
    (fixture("not_giamdinhhs.xml"), "The document is not a GIAMDINHHS envelope (QĐ 130/QĐ-BYT)."),
    (b"", "The document is empty."),
    (b"  \n", "The document is empty."),
    (b"<GIAMDINHHS><THONGTINHOSO>", "The document is not well-formed XML (line 1, column 26)."),
    (b"\x00\xff garbage", "The document is not well-formed XML (line 1, column 1)."),
    (b"<GIAMDINHHS><THONGTINDONVI/></GIAMDINHHS>", "The envelope has no DANHSACHHOSO."),
])
def test_unusable_documents_raise_a_safe_error(data, message):
    with pytest.raises(Xml130Error, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        parse_envelope(data)


@pytest.mark.parametrize("hostile", [fx.billion_laughs(), fx.external_entity()])
def test_dtd_in_an_inner_table_rejects_only_that_record(hostile):
    data = fx.envelope([[("XML1", fx.summary(fx.NAM_XML1))],
                        [("XML1", fx.summary(fx.HOA_XML1)), ("XML2", hostile)]])
    _, [good, bad] = parse_envelope(data)
    assert good.problems == []
    assert bad.problems == ["XML2: the table declares a DTD or entities, which are not accepted."]
    assert "lol" not in str(bad.visit) and "root:" not in str(bad.visit)


# --- bad records are isolated ---------------------------------------------------------------------------

def test_bad_records_are_isolated():
    facility, records = parse_envelope(fixture("bad_record.xml"))
    assert facility == "79012"
    assert [(r.index, r.source_id, r.problems) for r in records] == [
        (0, "KB2606020001", []),
        (1, "DT2606030007", ["XML1: NOIDUNGFILE is not valid base64."]),
        (2, "KB2606040002", ["The record has no XML1 (visit summary)."]),
    ]
    assert records[0].visit["full_name"] == "Nguyễn Văn Nam"
    assert records[1].visit == records[2].visit == {}


@pytest.mark.parametrize(("files", "problem"), [
    ((("XML1", ""),), "XML1: NOIDUNGFILE is empty."),
    ((("XML1", "PFRPTkdfSE9QPg"),), "XML1: NOIDUNGFILE is not valid base64."),  # padding missing
    ((("XML1", b"<TONG_HOP><HO_TEN>x</TONG_HOP>"),),
     "XML1: the table is not well-formed XML (line 1, column 21)."),
    ((("XML1", b"<TONG_HOP/>"),), "XML1 must hold exactly one summary row, found 0."),
    ((("XML1", b"<A><TONG_HOP><HO_TEN>a</HO_TEN></TONG_HOP><TONG_HOP><HO_TEN>b</HO_TEN></TONG_HOP></A>"),),
     "XML1 must hold exactly one summary row, found 2."),
    ((("XML1", fx.summary(fx.NAM_XML1)), ("XML1", fx.summary(fx.NAM_XML1))),
     "The record holds XML1 more than once."),
    ((("XML1", fx.summary(fx.NAM_XML1)), ("", "eA==")), "FILEHOSO 2 has no valid LOAIHOSO (XML1..XML15)."),
    ((("XML1", fx.summary({**fx.NAM_XML1, "MA_LK": ""})),),
     "XML1 has no MA_LK, the facility's id of the visit."),
    ((("XML1", fx.summary({**fx.NAM_XML1, "MA_CSKCB": "01005"})),),
     "XML1 MA_CSKCB '01005' differs from the envelope's MACSKCB '79012'."),
    ((("XML1", fx.summary(fx.NAM_XML1)), ("XML2", fx.drugs([{**fx.NAM_XML2[0], "MA_LK": "OTHER1"}]))),
     "XML2 has rows of another visit (MA_LK OTHER1)."),
])
def test_record_problems(files, problem):
    _, [record] = parse_envelope(fx.envelope([list(files)]))
    assert record.problems == [problem]


def test_a_repeated_visit_id_is_a_problem_of_the_later_record():
    table = fx.summary(fx.NAM_XML1)
    _, records = parse_envelope(fx.envelope([[("XML1", table)], [("XML1", table)]]))
    assert [r.problems for r in records] == [[], ["MA_LK 'KB2606020001' repeats record 0 of this envelope."]]


def test_an_unexpected_error_in_one_record_does_not_sink_the_others(monkeypatch):
    original = xml130._visit

    def fragile(xml1, tables, problems):
        if xml1.get("MA_LK") == "DT2606030007":
            raise RuntimeError("a bug with a secret Nguyễn")
        return original(xml1, tables, problems)

    monkeypatch.setattr(xml130, "_visit", fragile)
    _, [nam, hoa] = parse_envelope(fixture("two_visits.xml"))
    assert nam.problems == []
    assert hoa.problems == ["The record could not be mapped (RuntimeError)."]


# --- limits ---------------------------------------------------------------------------------------------

def test_record_count_is_capped():
    data = fx.envelope([[("XML1", fx.summary(fx.NAM_XML1))]] * 3)
    assert len(parse_envelope(data, max_records=3)[1]) == 3
    with pytest.raises(Xml130Error, match=r"^The envelope holds 3 records; at most 2 are accepted\.$"):
        parse_envelope(data, max_records=2)


def test_default_record_cap_is_ten_thousand():
    data = (b"<GIAMDINHHS><THONGTINHOSO><DANHSACHHOSO>" + b"<HOSO/>" * 10_001
            + b"</DANHSACHHOSO></THONGTINHOSO></GIAMDINHHS>")
    with pytest.raises(Xml130Error, match="10001 records; at most 10000"):
        parse_envelope(data)


def test_oversized_inner_table_is_refused_without_decoding():
    oversized = "A" * ((MAX_TABLE_BYTES // 3 + 1) * 4)
    data = fx.envelope([[("XML1", fx.summary(fx.NAM_XML1)), ("XML2", oversized)]])
    started = time.monotonic()
    _, [record] = parse_envelope(data)
    assert time.monotonic() - started < 5
    assert record.problems == ["XML2: the table is larger than 5 MB."]


def test_inner_table_at_the_cap_is_read():
    padding = b"<!--" + b"x" * (MAX_TABLE_BYTES - 4096) + b"-->"
    table = fx.summary(fx.NAM_XML1).replace(b"<TONG_HOP>", b"<TONG_HOP>" + padding)
    assert len(table) <= MAX_TABLE_BYTES
    _, [record] = parse_envelope(fx.envelope([[("XML1", table)]]))
    assert record.problems == []


# --- nothing a client sends crashes the parser ----------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_give_records_or_xml130_error(data):
    try:
        parse_envelope(data)
    except Xml130Error:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["XML1", "XML2", "XML4", "XML5"]))
def test_arbitrary_inner_tables_never_raise(text, kind):
    table = f"<TONG_HOP><MA_LK>A</MA_LK>{text}</TONG_HOP>".encode()
    files: list[tuple[str, bytes | str]] = [("XML1", fx.summary(fx.NAM_XML1))] if kind != "XML1" else []
    _, [record] = parse_envelope(fx.envelope([files + [(kind, table)]]))
    assert isinstance(record.problems, list)


def test_module_is_pure_parsing_without_flask_or_database():
    tree = ast.parse(Path(xml130.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported.isdisjoint({"flask", "flask_smorest", "mongoengine", "pymongo", "app"})
