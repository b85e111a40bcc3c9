"""The EU DCC value sets HoSo checks vaccination codes against (copied into ``app/data``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DATA = Path(__file__).parents[1] / "data" / "dcc-valuesets"
FILES = {
    "tg": "disease-agent-targeted.json",
    "vp": "vaccine-prophylaxis.json",
    "mp": "vaccine-medicinal-product.json",
    "ma": "vaccine-mah-manf.json",
    "co": "country-2-codes.json",
}


@cache
def codes(field: str) -> dict[str, str]:
    """Code -> display name of one value set (``tg``, ``vp``, ``mp``, ``ma`` or ``co``)."""
    values = json.loads((DATA / FILES[field]).read_text(encoding="utf-8"))["valueSetValues"]
    return {code: entry.get("display", code) for code, entry in values.items()}


def display(field: str, code: str) -> str | None:
    """The display name of a code, if the value set has it."""
    return codes(field).get(code)
