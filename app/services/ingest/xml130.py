"""Vietnam's insurance output XML (QĐ 130/QĐ-BYT, amended by 4750/QĐ-BYT) -> HoSo visit push bodies.

Pure parsing and mapping: no Flask, no database. The envelope ``GIAMDINHHS`` carries one ``HOSO`` per
visit; each holds base64 inner tables (``FILEHOSO``). Only XML1 (summary), XML2 (drugs), XML4 (results)
and XML5 (clinical progress) are read; the other tables are billing or paperwork and are skipped.

Mapping decisions worth knowing (the field names of the output are the push-body contract):

- ``practitioner`` is ``{"code": MA_BAC_SI}`` of the first XML2 row (by STT), else of the first XML4 row;
  the XML carries no doctor names (they live in master lists), so ``name`` is omitted rather than
  filled with the code. MA_BAC_SI may list several doctors separated by ``;``: the first is taken.
- The principal diagnosis uses CHAN_DOAN_RV as both ``text`` and ``display`` (the XML has codes, not
  ICD names); secondary diagnoses (MA_BENH_KT) carry only a code.
- ``notes`` gathers GHI_CHU (the doctor's advice), the treatment result (KET_QUA_DTRI, spelled out),
  every follow-up date when there are several, and the XML5 progress entries, in Vietnamese, capped at
  4000 characters.
- Dates are Vietnam local time: ``yyyyMMddHHmm`` -> ``...T08:30:00+07:00``; a bare ``yyyyMMdd`` means
  midnight local time. A birth date written with ``00`` for an unknown day or month gives ``YYYY-MM``
  or ``YYYY`` (QĐ 130 writes unknown parts as zeros).
- Empty fields are dropped, never sent as ``""``. Text is stripped and NFC-normalised.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = ["MAX_NOTES_CHARS", "MAX_TABLE_BYTES", "Xml130Error", "Xml130Record", "normalise_icd10",
           "parse_envelope"]

MAX_TABLE_BYTES = 5 * 1024 * 1024  # decoded size of one inner table
MAX_NOTES_CHARS = 4000
# Viet Nam's zone, as app.clock.VIETNAM: this parser imports nothing of the app (pure parsing)
VIETNAM = timezone(timedelta(hours=7), "ICT")

ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")
ICD10_UNDOTTED = re.compile(r"^([A-Z][0-9]{2})([0-9A-Z]{1,4})$")
LOAIHOSO = re.compile(r"^XML([0-9]{1,2})$")
QUANTITY = re.compile(r"^[+-]?[0-9]{1,15}(\.[0-9]{1,10})?$")
DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes "²" and other scripts' digits

# QĐ 130 (as amended by 4750): codes of KET_QUA_DTRI.
TREATMENT_RESULTS = {
    "1": "Khỏi",
    "2": "Đỡ",
    "3": "Không thay đổi",
    "4": "Nặng hơn",
    "5": "Tử vong",
    "6": "Tiên lượng nặng xin về",
    "7": "Chưa xác định",
    "8": "Tử vong ngoại viện",
}

# A row of a table is any element with at least one of these as a direct child: wrapper names differ
# between vendors (and namespaces creep in), field names do not.
ROW_MARKERS = {
    "XML1": {"HO_TEN", "NGAY_VAO", "MA_BENH_CHINH", "SO_CCCD", "MA_LOAI_KCB"},
    "XML2": {"MA_THUOC", "TEN_THUOC"},
    "XML4": {"MA_DICH_VU", "MA_CHI_SO", "TEN_CHI_SO", "GIA_TRI", "KET_LUAN"},
    "XML5": {"DIEN_BIEN_LS", "THOI_DIEM_DBLS", "HOI_CHAN", "PHAU_THUAT"},
}


class Xml130Error(ValueError):
    """The whole document is unusable; the message is safe to show to the client."""


@dataclass(frozen=True)
class Xml130Record:
    """One HOSO of the envelope, mapped to a visit push body.

    ``source_id`` is XML1's MA_LK; when XML1 is missing or unreadable it is the MA_LK of another table,
    only so that the facility can tell which record failed (such a record always has problems).
    ``facility_code`` is XML1's MA_CSKCB, else the envelope's MACSKCB. ``visit`` is unvalidated (the
    app validates it) and empty when there is no XML1. Non-empty ``problems`` mean: reject the record.
    """

    index: int  # 0-based position of the HOSO in the envelope
    source_id: str | None
    facility_code: str | None
    visit: dict[str, Any]
    problems: list[str] = field(default_factory=list)


Row = dict[str, str]


class _RecordProblem(Exception):
    """A mapping problem that makes the record unusable (collected, never raised out of the module)."""


def parse_envelope(data: bytes, *, max_records: int = 10_000) -> tuple[str | None, list[Xml130Record]]:
    """Returns (envelope facility code, records).

    Raises ``Xml130Error`` when the document as a whole is unusable: not well-formed, carrying a DTD
    (billion laughs, external entities), not a ``GIAMDINHHS`` envelope, or holding more than
    ``max_records`` records. A problem inside one record never raises: it lands in that record's
    ``problems``.
    """
    root = _parse_envelope_xml(data)
    if _tag(root) != "GIAMDINHHS":
        raise Xml130Error("The document is not a GIAMDINHHS envelope (QĐ 130/QĐ-BYT).")
    envelope_facility = _envelope_facility(root)
    listing = _first(root, "DANHSACHHOSO")
    if listing is None:
        raise Xml130Error("The envelope has no DANHSACHHOSO.")
    hosos = [child for child in listing if _tag(child) == "HOSO"]
    if len(hosos) > max_records:
        raise Xml130Error(f"The envelope holds {len(hosos)} records; at most {max_records} are accepted.")

    records = [_record(index, hoso, envelope_facility) for index, hoso in enumerate(hosos)]
    _flag_repeated_source_ids(records)
    return envelope_facility, records


def normalise_icd10(code: str) -> str:
    """``J209`` -> ``J20.9``; valid codes stay; anything else comes back as sent for the app to reject."""
    raw = code.strip()
    compact = re.sub(r"\s+", "", raw).upper().rstrip(".")
    if ICD10.match(compact):
        return compact
    undotted = ICD10_UNDOTTED.match(compact)
    if undotted:
        return f"{undotted[1]}.{undotted[2]}"
    return raw


# --- XML --------------------------------------------------------------------------------------------

def _safe_fromstring(data: bytes) -> Element:
    """Parse with every DTD refused (that alone stops entity expansion and external entities)."""
    text = _decode(data)
    root: Element = SafeET.fromstring(text if text is not None else data, forbid_dtd=True)
    return root


def _decode(data: bytes) -> str | None:
    """UTF-8 (with or without a BOM) or BOM-marked UTF-16 as text; None leaves it to the parser.

    Parsing text rather than bytes also survives the common .NET export that declares
    ``encoding="utf-16"`` over UTF-8 bytes. Leading whitespace would make the declaration illegal.
    """
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16").lstrip()
        return data.decode("utf-8-sig").lstrip()
    except UnicodeDecodeError:
        return None  # some other declared encoding: expat reads the declaration itself


def _parse_envelope_xml(data: bytes) -> Element:
    if not data or data.isspace():
        raise Xml130Error("The document is empty.")
    try:
        return _safe_fromstring(bytes(data))
    except DefusedXmlException:
        raise Xml130Error("The document declares a DTD or entities, which are not accepted.") from None
    except ParseError as error:
        line, column = error.position
        raise Xml130Error(f"The document is not well-formed XML (line {line}, column {column}).") from None


def _tag(element: Element) -> str:
    """The local name, upper-cased: vendors add namespaces and vary case."""
    tag = element.tag if isinstance(element.tag, str) else ""
    return tag.rsplit("}", 1)[-1].upper()


def _first(root: Element, name: str) -> Element | None:
    return next((element for element in root.iter() if _tag(element) == name), None)


def _text(element: Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return unicodedata.normalize("NFC", element.text.strip())


def _fields(element: Element) -> Row:
    """Leaf children as {FIELD: text}; the first occurrence of a field wins."""
    row: Row = {}
    for child in element:
        if len(child) == 0:
            row.setdefault(_tag(child), _text(child))
    return row


def _rows(root: Element, markers: set[str]) -> list[Row]:
    return [_fields(element) for element in root.iter()
            if len(element) and any(_tag(child) in markers for child in element)]


def _envelope_facility(root: Element) -> str | None:
    unit = _first(root, "THONGTINDONVI")
    code = _text(_first(unit, "MACSKCB")) if unit is not None else ""
    return code or None


# --- one record -------------------------------------------------------------------------------------

def _record(index: int, hoso: Element, envelope_facility: str | None) -> Xml130Record:
    """Map one HOSO; any failure becomes a problem of this record only."""
    problems: list[str] = []
    tables: dict[str, list[Row]] = {}
    unreadable: set[str] = set()
    try:
        tables, unreadable = _tables(hoso, problems)
    except Exception as error:  # one bad record must not sink the envelope
        problems.append(f"The record could not be read ({type(error).__name__}).")
        unreadable.add("XML1")

    summary = tables.get("XML1", [])
    if "XML1" in tables and len(summary) != 1:
        problems.append(f"XML1 must hold exactly one summary row, found {len(summary)}.")
    elif "XML1" not in tables and "XML1" not in unreadable:
        problems.append("The record has no XML1 (visit summary).")
    xml1 = summary[0] if len(summary) == 1 else {}
    source_id = xml1.get("MA_LK") or None
    facility_code = xml1.get("MA_CSKCB") or envelope_facility
    if not xml1:
        # The record is rejected either way; a MA_LK from another table lets the facility find it.
        source_id = next((row["MA_LK"] for rows in tables.values() for row in rows if row.get("MA_LK")), None)
        return Xml130Record(index, source_id, facility_code, {}, problems)

    visit: dict[str, Any] = {}
    try:
        visit = _visit(xml1, tables, problems)
    except Exception as error:  # same reason as above
        problems.append(f"The record could not be mapped ({type(error).__name__}).")
    if source_id is None:
        problems.append("XML1 has no MA_LK, the facility's id of the visit.")
    else:
        _check_link_ids(source_id, tables, problems)
    if envelope_facility and xml1.get("MA_CSKCB") and xml1["MA_CSKCB"] != envelope_facility:
        # A record of another facility inside this facility's envelope is misfiled data.
        problems.append(f"XML1 MA_CSKCB {_shown(xml1['MA_CSKCB'])} differs from the envelope's MACSKCB "
                        f"{_shown(envelope_facility)}.")
    return Xml130Record(index, source_id, facility_code, visit, problems)


def _tables(hoso: Element, problems: list[str]) -> tuple[dict[str, list[Row]], set[str]]:
    """Decode and parse the inner tables this module reads (the others are skipped unread).

    Returns the rows of each readable table and the names of the tables that were present but unreadable.
    """
    tables: dict[str, list[Row]] = {}
    unreadable: set[str] = set()
    for position, file in enumerate(element for element in hoso if _tag(element) == "FILEHOSO"):
        kind_element = next((child for child in file if _tag(child) == "LOAIHOSO"), None)
        kind = _text(kind_element).upper().replace(" ", "")
        if not LOAIHOSO.match(kind):
            problems.append(f"FILEHOSO {position + 1} has no valid LOAIHOSO (XML1..XML15).")
            continue
        kind = f"XML{int(kind[3:])}"  # "XML01" -> "XML1"
        if kind not in ROW_MARKERS:
            continue
        if kind in tables or kind in unreadable:
            problems.append(f"The record holds {kind} more than once.")
            continue
        content = next((child for child in file if _tag(child) == "NOIDUNGFILE"), None)
        try:
            root = _table_root(kind, content)
        except _RecordProblem as problem:
            problems.append(str(problem))
            unreadable.add(kind)
            continue
        tables[kind] = _rows(root, ROW_MARKERS[kind])
    return tables, unreadable


def _table_root(kind: str, content: Element | None) -> Element:
    encoded = "".join((content.text or "").split()) if content is not None else ""
    if not encoded:
        raise _RecordProblem(f"{kind}: NOIDUNGFILE is empty.")
    # Checked before decoding so that an oversized table costs nothing.
    if len(encoded) // 4 * 3 > MAX_TABLE_BYTES:
        raise _RecordProblem(f"{kind}: the table is larger than {MAX_TABLE_BYTES // (1024 * 1024)} MB.")
    try:
        # Whitespace was removed above (exporters wrap base64 lines); anything else non-base64 is refused.
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _RecordProblem(f"{kind}: NOIDUNGFILE is not valid base64.") from None
    try:
        return _safe_fromstring(raw)
    except DefusedXmlException:
        refused = "the table declares a DTD or entities, which are not accepted"
        raise _RecordProblem(f"{kind}: {refused}.") from None
    except ParseError as error:
        line, column = error.position
        where = f"line {line}, column {column}"
        raise _RecordProblem(f"{kind}: the table is not well-formed XML ({where}).") from None


def _check_link_ids(source_id: str, tables: dict[str, list[Row]], problems: list[str]) -> None:
    """Rows of another visit (another MA_LK) would put someone else's data in this record."""
    for kind in ("XML2", "XML4", "XML5"):
        links = {row.get("MA_LK") for row in tables.get(kind, [])}
        foreign = {link for link in links if link and link != source_id}
        if foreign:
            problems.append(f"{kind} has rows of another visit (MA_LK {', '.join(sorted(foreign))}).")


def _flag_repeated_source_ids(records: list[Xml130Record]) -> None:
    """A second visit with the same (facility, MA_LK) would silently replace the first."""
    seen: dict[tuple[str | None, str], int] = {}
    for record in records:
        if record.source_id is None or not record.visit:
            continue
        key = (record.facility_code, record.source_id)
        if key in seen:
            record.problems.append(f"MA_LK {record.source_id!r} repeats record {seen[key]} of this envelope.")
        else:
            seen[key] = record.index


# --- mapping ----------------------------------------------------------------------------------------

def _visit(xml1: Row, tables: dict[str, list[Row]], problems: list[str]) -> dict[str, Any]:
    drugs = _ordered(tables.get("XML2", []))
    results = _ordered(tables.get("XML4", []))
    progress = _ordered(tables.get("XML5", []), by_time="THOI_DIEM_DBLS")
    follow_ups = _follow_up_dates(xml1.get("NGAY_TAI_KHAM", ""), problems)

    visit: dict[str, Any] = {
        "national_id": xml1.get("SO_CCCD"),
        "full_name": " ".join(xml1.get("HO_TEN", "").split()),
        "date_of_birth": _birth_date(xml1.get("NGAY_SINH", ""), problems),
        "sex": {"1": "male", "2": "female"}.get(xml1.get("GIOI_TINH", ""), "unknown"),
        "visit_type": _visit_type(xml1.get("MA_LOAI_KCB", "")),
        "started_at": _local_datetime("XML1", "NGAY_VAO", xml1.get("NGAY_VAO", ""), problems),
        "ended_at": _local_datetime("XML1", "NGAY_RA", xml1.get("NGAY_RA", ""), problems),
        "department": xml1.get("MA_KHOA"),
        "practitioner": _practitioner(drugs, results),
        "reason": xml1.get("LY_DO_VV"),
        "diagnoses": _diagnoses(xml1),
        "lab_results": [_lab_result(row, problems) for row in results],
        "prescriptions": _prescriptions(drugs, problems),
        "follow_up_date": follow_ups[0] if follow_ups else None,
        "notes": _notes(xml1, follow_ups, progress, problems),
        "status": "final",
    }
    compacted: dict[str, Any] = _compact(visit)
    return compacted


def _compact(value: Any) -> Any:
    """Drop None, empty strings and empty containers, at every depth."""
    if isinstance(value, dict):
        kept = {key: _compact(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, "", [], {})}
    if isinstance(value, list):
        kept_items = [_compact(item) for item in value]
        return [item for item in kept_items if item not in (None, "", [], {})]
    return value


def _ordered(rows: list[Row], by_time: str | None = None) -> list[Row]:
    """By STT (then time, then document order); rows without a numeric STT go last."""
    def key(item: tuple[int, Row]) -> tuple[bool, int, str, int]:
        position, row = item
        stt = row.get("STT", "")
        numeric = bool(DIGITS.fullmatch(stt)) and len(stt) <= 10
        return not numeric, int(stt) if numeric else 0, row.get(by_time, "") if by_time else "", position

    return [row for _, row in sorted(enumerate(rows), key=key)]


def _visit_type(code: str) -> str:
    """MA_LOAI_KCB as two digits (``1`` -> ``01``); anything else as sent, for the app to judge."""
    return code.zfill(2) if DIGITS.fullmatch(code) and len(code) < 2 else code


def _practitioner(drugs: list[Row], results: list[Row]) -> dict[str, str] | None:
    for row in (*drugs, *results):
        code = next((part.strip() for part in row.get("MA_BAC_SI", "").split(";") if part.strip()), "")
        if code:
            return {"code": code}
    return None


def _diagnoses(xml1: Row) -> list[dict[str, Any]]:
    diagnoses: list[dict[str, Any]] = []
    seen: set[str] = set()
    principal = xml1.get("MA_BENH_CHINH", "")
    if principal:
        code = normalise_icd10(principal)
        text = xml1.get("CHAN_DOAN_RV")
        diagnoses.append({"code": code, "display": text, "text": text, "principal": True})
        seen.add(code)
    for part in xml1.get("MA_BENH_KT", "").split(";"):
        if not part.strip():
            continue
        code = normalise_icd10(part)
        if code not in seen:
            seen.add(code)
            diagnoses.append({"code": code, "principal": False})
    return diagnoses


def _lab_result(row: Row, problems: list[str]) -> dict[str, Any]:
    return {
        "code": row.get("MA_CHI_SO") or row.get("MA_DICH_VU"),
        "name": row.get("TEN_CHI_SO"),
        "value": row.get("GIA_TRI"),  # a string as sent: no conversion, no invented high/low flag
        "unit": row.get("DON_VI_DO"),
        "conclusion": row.get("KET_LUAN") or row.get("MO_TA"),
        "at": _local_datetime("XML4", "NGAY_KQ", row.get("NGAY_KQ", ""), problems),
    }


def _prescriptions(drugs: list[Row], problems: list[str]) -> list[dict[str, Any]]:
    """One prescription for the visit; XML2 has no national e-prescription code, so none is sent."""
    items = [_drug(row, problems) for row in drugs]
    return [{"items": items}] if items else []


def _drug(row: Row, problems: list[str]) -> dict[str, Any]:
    dose_parts = [row.get("LIEU_DUNG", ""), row.get("CACH_DUNG", "")]
    dose = "; ".join(dict.fromkeys(part for part in dose_parts if part))
    return {
        "drug_code": row.get("MA_THUOC"),
        "name": row.get("TEN_THUOC"),
        "strength": row.get("HAM_LUONG"),
        "dose_text": dose,
        "quantity": _quantity(row.get("SO_LUONG", ""), problems),
        "route": row.get("DUONG_DUNG"),
    }


def _quantity(value: str, problems: list[str]) -> int | float | None:
    if not value:
        return None
    # A plain decimal only: Decimal alone would take "1E+999999999" and int() of it would never end.
    if not QUANTITY.match(value):
        problems.append(f"XML2: SO_LUONG {_shown(value)} is not a number.")
        return None
    number = Decimal(value)
    return int(number) if number == number.to_integral_value() else float(number)


def _notes(xml1: Row, follow_ups: list[str], progress: list[Row], problems: list[str]) -> str:
    lines: list[str] = []
    if xml1.get("GHI_CHU"):
        lines.append(xml1["GHI_CHU"])
    result = xml1.get("KET_QUA_DTRI", "")
    if result:
        lines.append(f"Kết quả điều trị: {TREATMENT_RESULTS.get(result, result)}")
    if len(follow_ups) > 1:
        lines.append("Hẹn tái khám: " + "; ".join(_vietnamese_date(day) for day in follow_ups))
    entries = [entry for entry in (_progress_entry(row, problems) for row in progress) if entry]
    if entries:
        lines.append("Diễn biến lâm sàng:")
        lines.extend(entries)
    notes = "\n".join(lines)
    if len(notes) > MAX_NOTES_CHARS:
        notes = notes[: MAX_NOTES_CHARS - 1].rstrip() + "…"
    return notes


def _progress_entry(row: Row, problems: list[str]) -> str:
    parts = [f"{label}: {row[name]}" for name, label in
             (("DIEN_BIEN_LS", "Diễn biến"), ("HOI_CHAN", "Hội chẩn"), ("PHAU_THUAT", "Phẫu thuật"))
             if row.get(name)]
    if not parts:
        return ""
    when = _local_datetime("XML5", "THOI_DIEM_DBLS", row.get("THOI_DIEM_DBLS", ""), problems)
    stamp = ""
    if when:
        moment = datetime.fromisoformat(when)
        shown = "%d/%m/%Y" if len(row["THOI_DIEM_DBLS"]) == 8 else "%d/%m/%Y %H:%M"
        stamp = f"[{moment.strftime(shown)}] "
    return f"- {stamp}" + "; ".join(parts)


# --- dates ------------------------------------------------------------------------------------------

def _shown(value: str) -> str:
    """A value quoted in a problem message, cut short."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _local_datetime(table: str, name: str, value: str, problems: list[str]) -> str | None:
    """``yyyyMMddHHmm`` or ``yyyyMMdd`` in Vietnam local time -> ISO 8601 with ``+07:00``."""
    if not value:
        return None
    try:
        if not DIGITS.fullmatch(value) or len(value) not in (8, 12):
            raise ValueError
        moment = datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]),
                          int(value[8:10] or 0), int(value[10:12] or 0), tzinfo=VIETNAM)
    except ValueError:
        problems.append(f"{table}: {name} {_shown(value)} is not a date (yyyyMMddHHmm or yyyyMMdd).")
        return None
    return moment.isoformat()


def _birth_date(value: str, problems: list[str]) -> str | None:
    """``YYYY-MM-DD``; QĐ 130 writes an unknown day or month as ``00``, giving ``YYYY-MM`` or ``YYYY``."""
    if not value:
        return None
    try:
        if not DIGITS.fullmatch(value) or len(value) not in (8, 12):
            raise ValueError
        year, month, day = int(value[0:4]), int(value[4:6]), int(value[6:8])
        if month == 0:
            if day or not year:
                raise ValueError
            return f"{year:04d}"
        if day == 0:
            date(year, month, 1)
            return f"{year:04d}-{month:02d}"
        return date(year, month, day).isoformat()
    except ValueError:
        problems.append(f"XML1: NGAY_SINH {_shown(value)} is not a date (yyyyMMddHHmm or yyyyMMdd).")
        return None


def _follow_up_dates(value: str, problems: list[str]) -> list[str]:
    """NGAY_TAI_KHAM may list several dates (one per specialty) separated by ``;``: sorted, unique."""
    days: set[str] = set()
    for part in _nonblank(value.split(";")):
        moment = _local_datetime("XML1", "NGAY_TAI_KHAM", part, problems)
        if moment:
            days.add(moment[:10])
    return sorted(days)


def _nonblank(parts: Iterable[str]) -> list[str]:
    return [part.strip() for part in parts if part.strip()]


def _vietnamese_date(iso_day: str) -> str:
    return date.fromisoformat(iso_day).strftime("%d/%m/%Y")
