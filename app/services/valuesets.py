"""The EU DCC value sets HoSo checks vaccination codes against (copied into ``app/data``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from passport.payload import MAX_DOSE_NUMBER

DATA = Path(__file__).parents[1] / "data" / "dcc-valuesets"
FILES = {
    "tg": "disease-agent-targeted.json",
    "vp": "vaccine-prophylaxis.json",
    "mp": "vaccine-medicinal-product.json",
    "ma": "vaccine-mah-manf.json",
    "co": "country-2-codes.json",
}
ENCODING_INSTRUCTIONS = "vaccine-encoding-instructions.json"
VACCINE_FIELDS = ("tg", "vp", "mp", "ma")


@cache
def _values(field: str) -> dict[str, dict[str, Any]]:
    values = json.loads((DATA / FILES[field]).read_text(encoding="utf-8"))["valueSetValues"]
    assert isinstance(values, dict)
    return values


@cache
def codes(field: str) -> dict[str, str]:
    """Code -> display name of one value set (``tg``, ``vp``, ``mp``, ``ma`` or ``co``)."""
    return {code: entry.get("display", code) for code, entry in _values(field).items()}


def display(field: str, code: str) -> str | None:
    """The display name of a code, if the value set has it."""
    return codes(field).get(code)


def is_active(field: str, code: str) -> bool:
    """Whether a code is in its value set and not deprecated (``active: false`` means: do not use it for
    new certificates, e.g. the vaccine type ``J07BX03``)."""
    entry = _values(field).get(code)
    return entry is not None and entry.get("active", True) is True


@cache
def manufacturers() -> dict[str, str]:
    """Product (``mp``) -> its manufacturer or authorisation holder (``ma``), from the EU encoding instructions.

    An entry names its product by code, or (for the three deprecated products) by the product's display
    name, e.g. ``"NVX-CoV2373 (deprecated)"``; both are resolved to the ``mp`` code here.
    """
    by_display = {name: code for code, name in codes("mp").items()}
    entries = json.loads((DATA / ENCODING_INSTRUCTIONS).read_text(encoding="utf-8"))["valueSetValues"]
    out: dict[str, str] = {}
    for entry in entries.values():
        product = entry["vaccine-code"]
        out[product if product in codes("mp") else by_display[product]] = entry["vaccine-manufacturer"]
    return out


def vaccination_problems(vaccine: Mapping[str, Any], dose_number: object, series_doses: object) -> dict[str, str]:
    """Why a vaccination cannot be put in a new EU DCC, by field (empty when it can).

    Codes outside their value set or deprecated, a product with another maker's ``ma``, and dose numbers
    outside the DCC's 1 to 9. A dose number above the series is *not* a problem: the EU encodes a booster
    after a one-dose primary series as 2/1 (and some states count on: 3/1), so it is valid data.

    :param vaccine: ``tg``, ``vp``, ``mp``, ``ma``
    :param dose_number: the dose's number in the series
    :param series_doses: doses in the series
    :returns: field (``vaccine.vp``, ``dose_number``, ...) -> the reason
    """
    problems: dict[str, str] = {}
    for field in VACCINE_FIELDS:
        code = vaccine.get(field)
        if not isinstance(code, str) or code not in codes(field):
            problems[f"vaccine.{field}"] = f"Not a code of the EU DCC value set for `{field}`."
        elif not is_active(field, code):
            problems[f"vaccine.{field}"] = (f"`{code}` is deprecated in the EU DCC value set for `{field}`: "
                                            "not for new certificates.")
    product, maker = vaccine.get("mp"), vaccine.get("ma")
    expected = manufacturers().get(product) if isinstance(product, str) else None
    if expected is not None and maker != expected and "vaccine.ma" not in problems:
        problems["vaccine.ma"] = (f"`{product}` ({display('mp', product)}) is made by `{expected}` "
                                  f"({display('ma', expected)}), per the EU DCC encoding instructions.")
    for field, number in (("dose_number", dose_number), ("series_doses", series_doses)):
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_DOSE_NUMBER:
            problems[field] = f"An EU DCC carries 1 to {MAX_DOSE_NUMBER}."
    return problems
