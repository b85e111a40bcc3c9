"""Vietnamese identity checks: the CCCD and what its digits say about birth year and sex; the
citizen who holds a CCCD (through the ``citizen_keys`` registry)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from bson import ObjectId

from app.infra.embedded_quirks import in_chunks
from app.models.citizen import Citizen
from app.models.registries import CitizenKey

CCCD = re.compile(r"^[0-9]{12}$")
# Decree 137/2015/NĐ-CP: the 4th digit encodes century and sex, even = male, odd = female.
CENTURY_OF_DIGIT = {0: 1900, 1: 1900, 2: 2000, 3: 2000, 4: 2100, 5: 2100, 6: 2200, 7: 2200,
                    8: 2300, 9: 2300}


def cccd_problems(national_id: str, date_of_birth: date, sex: str) -> list[str]:
    """Why a 12-digit CCCD does not agree with a birth date and sex (empty when it does).

    The first three digits (province or country of birth registration) are not checked: people
    born abroad carry a country code.
    """
    if not CCCD.match(national_id):
        return ["A CCCD is exactly 12 digits."]
    digit = int(national_id[3])
    year = CENTURY_OF_DIGIT[digit] + int(national_id[4:6])
    problems = []
    if year != date_of_birth.year:
        problems.append("The CCCD's century and year digits do not match the date of birth.")
    if sex in ("male", "female") and ("male" if digit % 2 == 0 else "female") != sex:
        problems.append("The CCCD's sex digit does not match the sex given.")
    return problems


def split_vietnamese_name(full_name: str) -> tuple[str, str]:
    """Vietnamese order: the first word is the family name, the rest are given names."""
    words = full_name.split()
    return (words[0], " ".join(words[1:])) if len(words) > 1 else (full_name.strip(), "")


def citizen_ids(national_ids: Sequence[str]) -> dict[str, ObjectId]:
    """national id -> citizen id, for those of ``national_ids`` the registry knows (by ``_id``, in chunks)."""
    found: dict[str, ObjectId] = {}
    collection = CitizenKey._get_collection()
    for chunk in in_chunks(list(dict.fromkeys(national_ids))):
        found.update((key["_id"], key["citizen_id"]) for key in collection.find({"_id": {"$in": chunk}}))
    return found


def citizen_by_national_id(national_id: str) -> Citizen | None:
    """The citizen holding this CCCD, or None: the registry by ``_id``, then the citizen by ``_id``.

    (Citizens are sharded by id: a query by national id would ask every shard.) A registry entry
    whose citizen is missing (a creation that crashed half-way) is no citizen until the next
    find-or-create of the CCCD heals it.
    """
    key = CitizenKey._get_collection().find_one({"_id": national_id}, {"citizen_id": 1})
    if key is None:
        return None
    citizen: Citizen | None = Citizen.objects(id=key["citizen_id"]).first()
    return citizen
