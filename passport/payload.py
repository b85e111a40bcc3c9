"""The DCC payload of a vaccination: names, ICAO transliteration, UVCI, schema check."""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .errors import PayloadError
from .schema import ISSUANCE_VERSION, validate_payload

__all__ = [
    "MAX_DOSE_NUMBER",
    "VaccinationRecord",
    "build_payload",
    "is_valid_uvci",
    "new_uvci",
    "split_full_name",
    "transliterate",
    "uvci_check_character",
]

# The DCC schema's bound on `dn` and `sd` (1 to 9).
MAX_DOSE_NUMBER = 9
UVCI_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"
_UVCI = re.compile(r"URN:UVCI:01:[A-Z]{2}:[A-Z0-9/:]{1,60}#[A-Z0-9/:]")
_DOB = re.compile(r"(19|20)\d\d(-\d\d(-\d\d)?)?")
_COUNTRY = re.compile(r"[A-Z]{2}")

# ICAO Doc 9303 part 3 (section 6) transliterations of Latin letters that Unicode decomposition does
# not reduce to A-Z. Vietnamese needs only Đ; the rest covers foreign residents vaccinated in Vietnam.
_ICAO_SPECIAL = str.maketrans({
    "Đ": "D", "Ð": "D", "Ä": "AE", "Ö": "OE", "Ü": "UE", "ß": "SS", "Å": "AA", "Æ": "AE",
    "Ø": "OE", "Œ": "OE", "Þ": "TH", "Ĳ": "IJ", "Ł": "L", "Ħ": "H", "Ŋ": "N", "Ŧ": "T", "Ŀ": "L",
    "ẞ": "SS",
})
_SEPARATORS = str.maketrans({character: "<" for character in " \t\n\r\f\v\u00a0-‐‑–,"})
_NOT_ICAO = re.compile(r"[^A-Z<]+")
_FILLERS = re.compile("<+")
_MAX_NAME = 80


@dataclass(frozen=True)
class VaccinationRecord:
    """A facility-recorded vaccination, as much of it as a DCC carries.

    :ivar family_name: family name as written (Vietnamese order: the first word of a full name)
    :ivar given_name: given names as written (may be empty)
    :ivar date_of_birth: ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``
    :ivar tg: target disease (SNOMED CT, 840539006 for COVID-19)
    :ivar vp: vaccine or prophylaxis type, e.g. 1119349007
    :ivar mp: medicinal product, e.g. ``EU/1/20/1528``
    :ivar ma: marketing authorisation holder or manufacturer, e.g. ``ORG-100030215``
    :ivar dose_number: number of this dose in the series (1 or more)
    :ivar series_doses: doses in the series (1 or more)
    :ivar vaccination_date: the local calendar date of the injection (a datetime gives its own date)
    :ivar issuer: the certificate issuer's name, e.g. ``"Bộ Y tế"``
    :ivar country: where the vaccination was given (ISO 3166-1 alpha-2)
    """

    family_name: str
    given_name: str
    date_of_birth: str
    tg: str
    vp: str
    mp: str
    ma: str
    dose_number: int
    series_doses: int
    vaccination_date: date
    issuer: str
    country: str = "VN"


def _clean(name: str) -> str:
    """NFC-normalised with runs of white space collapsed (names arrive from many systems)."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def split_full_name(full_name: str) -> tuple[str, str]:
    """Split a Vietnamese full name: the first word is the family name, the rest are given names.

    :param full_name: e.g. ``"Đặng Thị Ngọc Ánh"``
    :returns: ``(family_name, given_name)``, e.g. ``("Đặng", "Thị Ngọc Ánh")``; the given name is
        empty for a one-word name
    """
    words = _clean(full_name).split(" ")
    return words[0], " ".join(words[1:])


def transliterate(name: str) -> str:
    """ICAO 9303 machine-readable form of a name: A-Z and ``<`` only, at most 80 characters.

    Diacritics are removed (Vietnamese tone and vowel marks included), Đ becomes D, spaces and hyphens
    become ``<``, apostrophes and other characters are dropped.

    :param name: e.g. ``"Thị Ngọc Ánh"``
    :returns: e.g. ``"THI<NGOC<ANH"``
    """
    # Letters ICAO spells out (Ä -> AE) first, then decomposition strips the marks from the rest.
    upper = " ".join(unicodedata.normalize("NFC", name).split()).upper().translate(_ICAO_SPECIAL)
    letters = _NOT_ICAO.sub("", unicodedata.normalize("NFD", upper).translate(_SEPARATORS))
    # Separators collapse to one, and none lead or trail (ICAO filler rules).
    joined = _FILLERS.sub("<", letters).strip("<")
    return joined[:_MAX_NAME].rstrip("<")


def uvci_check_character(text: str) -> str:
    """The Luhn mod 38 check character of a UVCI (computed over the whole text, prefix included).

    :param text: e.g. ``"URN:UVCI:01:NL:187/37512422923"``
    :returns: one character of ``A-Z0-9/:``, e.g. ``"Z"``
    :raises PayloadError: when the text holds a character outside that alphabet
    """
    if not text.isascii():
        raise PayloadError("a UVCI holds only A-Z 0-9 / :")
    values = text.encode("ascii").translate(_UVCI_VALUES)
    if b"\xff" in values:
        raise PayloadError("a UVCI holds only A-Z 0-9 / :")
    # Luhn mod N: from the right, every other code point is doubled (and its digits in base N summed).
    backwards = values[::-1]
    total = sum(backwards[0::2].translate(_DOUBLED)) + sum(backwards[1::2])
    modulus = len(UVCI_ALPHABET)
    return UVCI_ALPHABET[(modulus - total % modulus) % modulus]


def _doubled(value: int) -> int:
    return (2 * value) // len(UVCI_ALPHABET) + (2 * value) % len(UVCI_ALPHABET)


_UVCI_VALUES = bytes(UVCI_ALPHABET.find(chr(code)) if chr(code) in UVCI_ALPHABET else 0xFF for code in range(256))
_DOUBLED = bytes(_doubled(value) if value < len(UVCI_ALPHABET) else 0 for value in range(256))


def new_uvci(country: str = "VN") -> str:
    """A new random UVCI ``URN:UVCI:01:<country>:<opaque>#<check>``.

    :param country: issuing country code
    :returns: the UVCI; the opaque part is 24 characters of base32 (120 random bits)
    """
    opaque = base64.b32encode(secrets.token_bytes(15)).decode("ascii")
    body = f"URN:UVCI:01:{country}:{opaque}"
    return f"{body}#{uvci_check_character(body)}"


def is_valid_uvci(text: str) -> bool:
    """Whether a text is a version-01 UVCI with the URN prefix and a correct check character."""
    if _UVCI.fullmatch(text) is None:
        return False
    body, check = text.rsplit("#", 1)
    return uvci_check_character(body) == check


def _check_date_of_birth(value: str) -> None:
    if _DOB.fullmatch(value) is None:
        raise PayloadError("date_of_birth must be YYYY-MM-DD, YYYY-MM or YYYY between 1900 and 2099")
    parts = [int(part) for part in value.split("-")]
    try:
        date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError:
        raise PayloadError(f"date_of_birth {value!r} is not a calendar date") from None


def build_payload(record: VaccinationRecord, uvci: str) -> dict[str, Any]:
    """The DCC 1.3.0 payload of a vaccination, checked against the DCC schema.

    :param record: the vaccination
    :param uvci: the certificate identifier (see :func:`new_uvci`)
    :returns: the payload (the ``-260 -> 1`` claim), ready to sign
    :raises PayloadError: when a field is unusable or the payload violates the schema
    """
    family = _clean(record.family_name)
    given = _clean(record.given_name)
    if not family:
        raise PayloadError("the family name is empty")
    family_icao = transliterate(family)
    given_icao = transliterate(given)
    if not family_icao:
        raise PayloadError("the family name has no letter that transliterates to A-Z")
    if len(family) > _MAX_NAME or len(given) > _MAX_NAME:
        raise PayloadError("a name is longer than 80 characters")
    _check_date_of_birth(record.date_of_birth)
    vaccinated = record.vaccination_date
    if isinstance(vaccinated, datetime):
        vaccinated = vaccinated.date()
    if record.date_of_birth > vaccinated.isoformat()[: len(record.date_of_birth)]:
        raise PayloadError("the vaccination date is before the date of birth")
    if not is_valid_uvci(uvci):
        raise PayloadError("the UVCI is malformed or its check character is wrong")
    for label, number in (("dose_number", record.dose_number), ("series_doses", record.series_doses)):
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_DOSE_NUMBER:
            raise PayloadError(f"{label} must be an integer from 1 to {MAX_DOSE_NUMBER}")
    issuer = _clean(record.issuer)
    if not issuer:
        raise PayloadError("the issuer is empty")
    if not isinstance(record.country, str) or _COUNTRY.fullmatch(record.country) is None:
        raise PayloadError("the country must be an ISO 3166-1 alpha-2 code such as 'VN'")
    for label, code in (("tg", record.tg), ("vp", record.vp), ("mp", record.mp), ("ma", record.ma)):
        if isinstance(code, str) and not code.strip():
            raise PayloadError(f"{label} is empty")
    name: dict[str, str] = {"fn": family, "fnt": family_icao}
    if given:
        name.update(gn=given, gnt=given_icao)
    payload: dict[str, Any] = {
        "ver": ISSUANCE_VERSION,
        "nam": name,
        "dob": record.date_of_birth,
        "v": [
            {
                "tg": record.tg,
                "vp": record.vp,
                "mp": record.mp,
                "ma": record.ma,
                "dn": record.dose_number,
                "sd": record.series_doses,
                "dt": vaccinated.isoformat(),
                "co": record.country,
                "is": issuer,
                "ci": uvci,
            }
        ],
    }
    report = validate_payload(payload, "1.3.3")
    if not report.ok:
        raise PayloadError(f"the payload violates the DCC schema: {report.message}")
    return payload
