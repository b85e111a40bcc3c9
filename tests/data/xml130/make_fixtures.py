"""Writes the QĐ 130/4750 insurance XML fixtures beside this file.

Every person, code and value here is invented for the tests; nothing is copied from a real export. The
structure follows Decision 130/QĐ-BYT (2023) as amended by 4750/QĐ-BYT: an envelope ``GIAMDINHHS`` whose
``HOSO`` elements carry base64 inner tables (XML1 summary, XML2 drugs, XML3 billing, XML4 results,
XML5 clinical progress) and a facility signature ``CHUKYDONVI`` (a dummy here).

Run from the project root after changing anything below (the output is deterministic, and
``tests/app/test_xml130_parser.py`` checks that the committed files match it)::

    .venv/bin/python tests/data/xml130/make_fixtures.py

Files:

- ``two_visits.xml``: a clinic envelope with two visits. The first uses ``yyyyMMddHHmm`` dates, an
  undotted ICD-10 code, secondary codes with blanks and a repeat, and an XML3 the parser must skip. The
  second uses ``yyyyMMdd`` dates, a one-digit MA_LOAI_KCB, two follow-up dates, a UTF-8 BOM on its XML2,
  a vendor's own wrapper names on its XML4 and ``<`` in a lab value.
- ``bad_record.xml``: one good visit, one whose XML1 is not base64, one without XML1.
- ``billion_laughs.xml``: nested entity expansion in the envelope's DTD.
- ``external_entity.xml``: an external entity pointing at ``file:///etc/passwd``.
- ``not_giamdinhhs.xml``: well-formed XML of another kind (a FHIR Bundle).
"""

from __future__ import annotations

import base64
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).parent
FACILITY = "79012"
DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
BOM = b"\xef\xbb\xbf"

Fields = dict[str, str]


def _fields(fields: Fields, indent: str) -> str:
    return "".join(f"{indent}<{name}>{escape(value)}</{name}>\n" for name, value in fields.items())


def summary(fields: Fields) -> bytes:
    """An XML1 table: one ``TONG_HOP`` with the fields as children."""
    return (DECLARATION + "<TONG_HOP>\n" + _fields(fields, "  ") + "</TONG_HOP>\n").encode()


def rows(root: str, wrapper: str, row: str, items: list[Fields]) -> bytes:
    """A detail table (XML2..XML5): ``<root><wrapper><row>fields</row>...</wrapper></root>``."""
    body = "".join(f"    <{row}>\n" + _fields(item, "      ") + f"    </{row}>\n" for item in items)
    return (DECLARATION + f"<{root}>\n  <{wrapper}>\n{body}  </{wrapper}>\n</{root}>\n").encode()


def drugs(items: list[Fields]) -> bytes:
    return rows("CHITIEU_CHITIET_THUOC", "DSACH_CHI_TIET_THUOC", "CHI_TIET_THUOC", items)


def results(items: list[Fields]) -> bytes:
    return rows("CHITIEU_CHITIET_DICHVUCANLAMSANG", "DSACH_CHI_TIET_CLS", "CHI_TIET_CLS", items)


def progress(items: list[Fields]) -> bytes:
    return rows("CHITIEU_CHITIET_DIENBIENLAMSANG", "DSACH_CHI_TIET_DIEN_BIEN_BENH", "CHI_TIET_DIEN_BIEN_BENH",
                items)


def envelope(records: list[list[tuple[str, bytes | str]]], *, facility: str = FACILITY,
             made_on: str = "20260605") -> bytes:
    """A ``GIAMDINHHS`` envelope; a table given as ``str`` goes into NOIDUNGFILE as is (not encoded)."""
    hosos = []
    for files in records:
        parts = []
        for kind, content in files:
            text = content if isinstance(content, str) else base64.b64encode(content).decode()
            parts.append(f"      <FILEHOSO>\n        <LOAIHOSO>{kind}</LOAIHOSO>\n"
                         f"        <NOIDUNGFILE>{escape(text)}</NOIDUNGFILE>\n      </FILEHOSO>\n")
        hosos.append("    <HOSO>\n" + "".join(parts) + "    </HOSO>\n")
    return (DECLARATION + "<GIAMDINHHS>\n"
            f"  <THONGTINDONVI>\n    <MACSKCB>{facility}</MACSKCB>\n  </THONGTINDONVI>\n"
            f"  <THONGTINHOSO>\n    <NGAYLAP>{made_on}</NGAYLAP>\n"
            f"    <SOLUONGHOSO>{len(records)}</SOLUONGHOSO>\n"
            "    <DANHSACHHOSO>\n" + "".join(hosos) + "    </DANHSACHHOSO>\n  </THONGTINHOSO>\n"
            + SIGNATURE + "</GIAMDINHHS>\n").encode()


# A placeholder with the shape of the facility's XML-DSig signature; the parser ignores its content.
SIGNATURE = """  <CHUKYDONVI>
    <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">
      <SignedInfo>
        <CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
        <SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
        <Reference URI="">
          <DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
          <DigestValue>ZHVtbXkgZGlnZXN0IGZvciB0ZXN0cw==</DigestValue>
        </Reference>
      </SignedInfo>
      <SignatureValue>ZHVtbXkgc2lnbmF0dXJlIGZvciB0ZXN0cw==</SignatureValue>
    </Signature>
  </CHUKYDONVI>
"""

# --- the first visit: an examination, yyyyMMddHHmm dates ----------------------------------------------

NAM_XML1 = {
    "MA_LK": "KB2606020001", "STT": "1", "MA_BN": "BN000123", "HO_TEN": "Nguyễn Văn Nam",
    "SO_CCCD": "001085123456", "NGAY_SINH": "198503140000", "GIOI_TINH": "1", "MA_QUOCTICH": "000",
    "MA_DANTOC": "01", "DIA_CHI": "Số 12 ngõ 34 phố Láng Hạ, phường Láng Hạ, quận Đống Đa, Hà Nội",
    "DIEN_THOAI": "0912345678", "MA_THE_BHYT": "DN4010123456789", "MA_DKBD": "01005",
    "LY_DO_VV": "Ho kéo dài", "CHAN_DOAN_VAO": "Theo dõi viêm phế quản",
    "CHAN_DOAN_RV": "Viêm phế quản cấp", "MA_BENH_CHINH": "J209", "MA_BENH_KT": "I10; ;E11.9;I10;",
    "NGAY_VAO": "202606020830", "NGAY_RA": "202606020910", "SO_NGAY_DTRI": "0", "KET_QUA_DTRI": "2",
    "MA_LOAI_RV": "1", "GHI_CHU": "Uống nhiều nước ấm, tái khám sau 1 tuần hoặc khi sốt cao",
    "MA_LOAI_KCB": "01", "MA_KHOA": "K01", "MA_CSKCB": FACILITY, "NGAY_TAI_KHAM": "20260609",
    "T_THUOC": "63000", "T_TONGCHI_BV": "163000",
}
NAM_XML2 = [  # listed out of STT order on purpose
    {"MA_LK": "KB2606020001", "STT": "2", "MA_THUOC": "40.1026", "TEN_THUOC": "Paracetamol",
     "DON_VI_TINH": "Viên", "HAM_LUONG": "500mg", "DUONG_DUNG": "1.01",
     "LIEU_DUNG": "1 viên/lần * 2 lần/ngày * 5 ngày [2 viên/ngày]", "CACH_DUNG": "Uống khi sốt trên 38,5 độ",
     "SO_LUONG": "10.000", "DON_GIA": "600", "MA_BAC_SI": "BS002", "NGAY_YL": "202606020850"},
    {"MA_LK": "KB2606020001", "STT": "1", "MA_THUOC": "40.17", "TEN_THUOC": "Amoxicillin",
     "DON_VI_TINH": "Viên", "HAM_LUONG": "500mg", "DUONG_DUNG": "1.01",
     "LIEU_DUNG": "1 viên/lần * 3 lần/ngày * 7 ngày [3 viên/ngày]", "CACH_DUNG": "Uống sau ăn",
     "SO_LUONG": "21", "DON_GIA": "2714", "MA_BAC_SI": "BS001;BS009", "NGAY_YL": "202606020850"},
    {"MA_LK": "KB2606020001", "STT": "3", "MA_THUOC": "40.677", "TEN_THUOC": "Siro ho thảo dược",
     "DON_VI_TINH": "ml", "HAM_LUONG": "", "DUONG_DUNG": "1.01", "LIEU_DUNG": "", "CACH_DUNG": "",
     "SO_LUONG": "7.5", "DON_GIA": "300", "MA_BAC_SI": "BS001", "NGAY_YL": "202606020850"},
]
NAM_XML3 = rows("CHITIEU_CHITIET_DVKT_VTYT", "DSACH_CHI_TIET_DVKT", "CHI_TIET_DVKT", [
    {"MA_LK": "KB2606020001", "STT": "1", "MA_DICH_VU": "01.1894.1771", "TEN_DICH_VU": "Khám Nội",
     "SO_LUONG": "1", "DON_GIA_BV": "38700"},
])
NAM_XML4 = [
    {"MA_LK": "KB2606020001", "STT": "1", "MA_DICH_VU": "23.0123.1495", "MA_CHI_SO": "CRP",
     "TEN_CHI_SO": "CRP", "GIA_TRI": "12.50", "DON_VI_DO": "mg/L", "MO_TA": "",
     "KET_LUAN": "Tăng nhẹ", "NGAY_KQ": "202606020850", "MA_BS_DOC_KQ": "BS005"},
    {"MA_LK": "KB2606020001", "STT": "2", "MA_DICH_VU": "18.0071.0028", "MA_CHI_SO": "",
     "TEN_CHI_SO": "X-quang ngực thẳng", "GIA_TRI": "", "DON_VI_DO": "",
     "MO_TA": "Rốn phổi hai bên đậm, không thấy tổn thương nhu mô", "KET_LUAN": "",
     "NGAY_KQ": "202606020905", "MA_BS_DOC_KQ": "BS007"},
]
NAM_XML5 = [
    {"MA_LK": "KB2606020001", "STT": "2", "DIEN_BIEN_LS": "Hết sốt, còn ho ít đờm", "GIAI_DOAN_BENH": "",
     "HOI_CHAN": "", "PHAU_THUAT": "", "THOI_DIEM_DBLS": "202606020900", "NGUOI_THUC_HIEN": "BS001"},
    {"MA_LK": "KB2606020001", "STT": "1", "DIEN_BIEN_LS": "Sốt 38,2 độ, ho khan, phổi ran rít",
     "GIAI_DOAN_BENH": "", "HOI_CHAN": "Hội chẩn khoa: đồng ý điều trị ngoại trú", "PHAU_THUAT": "",
     "THOI_DIEM_DBLS": "202606020840", "NGUOI_THUC_HIEN": "BS001"},
]

# --- the second visit: outpatient treatment, yyyyMMdd dates ---------------------------------------------

HOA_XML1 = {
    "MA_LK": "DT2606030007", "STT": "2", "MA_BN": "BN000456", "HO_TEN": "Trần Thị Hoà",
    "SO_CCCD": "079190004321", "NGAY_SINH": "19900725", "GIOI_TINH": "2",
    "DIA_CHI": "45 đường Lê Lợi, phường Bến Thành, Quận 1, TP. Hồ Chí Minh",
    "LY_DO_VV": "Đau thượng vị", "CHAN_DOAN_RV": "Viêm dạ dày cấp; trào ngược dạ dày thực quản",
    "MA_BENH_CHINH": "K29.1", "MA_BENH_KT": "K21.9;;  ; k219 ;R10.1", "NGAY_VAO": "20260603",
    "NGAY_RA": "20260605", "SO_NGAY_DTRI": "3", "KET_QUA_DTRI": "1", "MA_LOAI_RV": "1",
    "GHI_CHU": "Ăn nhẹ, chia nhiều bữa, tránh đồ cay nóng", "MA_LOAI_KCB": "2", "MA_KHOA": "K03;K19",
    "MA_CSKCB": FACILITY, "NGAY_TAI_KHAM": "20260619;20260612",
}
HOA_XML2 = [
    {"MA_LK": "DT2606030007", "STT": "1", "MA_THUOC": "40.678", "TEN_THUOC": "Omeprazol",
     "DON_VI_TINH": "Viên", "HAM_LUONG": "20mg", "DUONG_DUNG": "1.01",
     "LIEU_DUNG": "1 viên/lần * 2 lần/ngày * 14 ngày [2 viên/ngày]", "CACH_DUNG": "Uống trước ăn 30 phút",
     "SO_LUONG": "28", "MA_BAC_SI": "BS014", "NGAY_YL": "20260603"},
]
HOA_XML4 = rows("CHI_TIEU_CHI_TIET_CLS", "DANH_SACH_CLS", "CLS", [  # a vendor's own wrapper names
    {"MA_LK": "DT2606030007", "STT": "1", "MA_DICH_VU": "22.0120.1370", "TEN_CHI_SO": "Test H. pylori nhanh",
     "GIA_TRI": "Âm tính", "DON_VI_DO": "", "KET_LUAN": "", "MO_TA": "Không phát hiện H. pylori",
     "NGAY_KQ": "20260603"},
    {"MA_LK": "DT2606030007", "STT": "2", "MA_DICH_VU": "23.0054.1493", "MA_CHI_SO": "AMYLASE",
     "TEN_CHI_SO": "Amylase máu", "GIA_TRI": "<5", "DON_VI_DO": "U/L", "NGAY_KQ": "20260604"},
])
HOA_XML5 = [
    {"MA_LK": "DT2606030007", "STT": "1", "DIEN_BIEN_LS": "Đau thượng vị giảm, ăn uống được",
     "PHAU_THUAT": "Nội soi dạ dày: niêm mạc hang vị xung huyết", "THOI_DIEM_DBLS": "20260604"},
]


def two_visits() -> bytes:
    return envelope([
        [("XML1", summary(NAM_XML1)), ("XML2", drugs(NAM_XML2)), ("XML3", NAM_XML3),
         ("XML4", results(NAM_XML4)), ("XML5", progress(NAM_XML5))],
        [("XML1", summary(HOA_XML1)), ("XML2", BOM + drugs(HOA_XML2)), ("XML4", HOA_XML4),
         ("XML5", progress(HOA_XML5))],
    ])


def bad_record() -> bytes:
    orphan_drugs = [{**row, "MA_LK": "KB2606040002"} for row in NAM_XML2]
    return envelope([
        [("XML1", summary(NAM_XML1)), ("XML2", drugs(NAM_XML2))],
        [("XML1", "VGhpcyBpcyBub3Q@@base64!"), ("XML2", drugs(HOA_XML2))],
        [("XML2", drugs(orphan_drugs))],
    ])


def billion_laughs() -> bytes:
    entities = '  <!ENTITY lol "lol">\n' + "".join(
        f'  <!ENTITY lol{level} "{("&lol" + (str(level - 1) if level > 1 else "") + ";") * 10}">\n'
        for level in range(1, 10))
    return (DECLARATION + "<!DOCTYPE GIAMDINHHS [\n" + entities + "]>\n"
            "<GIAMDINHHS>\n  <THONGTINDONVI>\n    <MACSKCB>&lol9;</MACSKCB>\n  </THONGTINDONVI>\n"
            "</GIAMDINHHS>\n").encode()


def external_entity() -> bytes:
    return (DECLARATION + '<!DOCTYPE GIAMDINHHS [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
            "<GIAMDINHHS>\n  <THONGTINDONVI>\n    <MACSKCB>&xxe;</MACSKCB>\n  </THONGTINDONVI>\n"
            "</GIAMDINHHS>\n").encode()


def not_giamdinhhs() -> bytes:
    return (DECLARATION + '<Bundle xmlns="http://hl7.org/fhir">\n  <type value="collection"/>\n'
            "</Bundle>\n").encode()


def build_all() -> dict[str, bytes]:
    """Every fixture by file name."""
    return {
        "two_visits.xml": two_visits(),
        "bad_record.xml": bad_record(),
        "billion_laughs.xml": billion_laughs(),
        "external_entity.xml": external_entity(),
        "not_giamdinhhs.xml": not_giamdinhhs(),
    }


def main() -> None:
    for name, content in build_all().items():
        (HERE / name).write_bytes(content)
        print(f"wrote {HERE / name} ({len(content)} bytes)")


if __name__ == "__main__":
    main()
