"""DCC JSON schema validation (eu-dcc-schema releases 1.0.0 to 1.3.3, shipped in ``schemas/``).

jsonschema-rs is used because it validates a payload in about a microsecond; the pure-Python
``jsonschema`` takes about 200 us, three times the ECDSA verification itself.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any, NamedTuple

import jsonschema_rs

__all__ = ["ISSUANCE_VERSION", "SchemaReport", "known_versions", "validate_payload"]

# The version every payload this library issues declares (DCC 1.3.0 payload; checked against the
# newest 1.3.x schema, which only relaxed or clarified 1.3.0).
ISSUANCE_VERSION = "1.3.0"
_LATEST = "1.3.3"
_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class SchemaReport(NamedTuple):
    """The outcome of a schema validation.

    :ivar ok: whether the payload is valid
    :ivar version: the schema release it was checked against (``None`` when none could be chosen)
    :ivar message: why it failed, or which schema was used
    """

    ok: bool
    version: str | None
    message: str


@cache
def known_versions() -> tuple[str, ...]:
    """The schema releases shipped with the library, oldest first."""
    names = [entry.name for entry in resources.files("passport").joinpath("schemas").iterdir()]
    versions = [name.removesuffix(".combined-schema.json") for name in names if name.endswith(".json")]
    return tuple(sorted(versions, key=lambda v: tuple(int(part) for part in v.split("."))))


@cache
def _validator(version: str, formats: bool) -> Any:
    text = resources.files("passport").joinpath(f"schemas/{version}.combined-schema.json").read_text()
    return jsonschema_rs.validator_for(json.loads(text), validate_formats=formats)


def choose_version(declared: object) -> tuple[str | None, str]:
    """The schema release for a payload's ``ver``: the same release, else the newest patch of the
    same minor version, else the newest release of major version 1.

    :param declared: the payload's ``ver`` value
    :returns: the release (``None`` when ``ver`` is unusable) and a note on the choice
    """
    if isinstance(declared, str) and len(declared) <= 20:
        return _choose_version(declared)  # a handful of distinct values: cached
    return _choose(declared)


@lru_cache(maxsize=64)
def _choose_version(declared: str) -> tuple[str | None, str]:
    return _choose(declared)


def _choose(declared: object) -> tuple[str | None, str]:
    if not isinstance(declared, str):
        return None, "the payload has no string 'ver'"
    match = _SEMVER.fullmatch(declared)
    if match is None:
        return None, f"'ver' {declared[:20]!r} is not a version number"
    versions = known_versions()
    if declared in versions:
        return declared, f"schema {declared}"
    major, minor = match.group(1), match.group(2)
    same_minor = [v for v in versions if v.startswith(f"{major}.{minor}.")]
    if same_minor:
        return same_minor[-1], f"no schema {declared}; used {same_minor[-1]}"
    if major == "1":
        return _LATEST, f"no schema {declared}; used {_LATEST}"
    return None, f"no schema for major version {major}"


def validate_payload(payload: object, version: str | None = None, formats: bool = True) -> SchemaReport:
    """Validate a DCC payload against a schema release.

    :param payload: the decoded payload (the ``-260 -> 1`` claim)
    :param version: the release to use; by default the one the payload's own ``ver`` names
    :param formats: also assert ``format`` (``date``, ``date-time``); JSON Schema 2020-12 treats
        ``format`` as an annotation by default, and so do the EU reference tests
    :returns: the report (this function never raises on bad input)
    """
    if version is None:
        declared = payload.get("ver") if isinstance(payload, dict) else None
        version, note = choose_version(declared)
        if version is None:
            return SchemaReport(False, None, note)
    else:
        note = f"schema {version}"
    try:
        errors = [error.message for error in _validator(version, formats).iter_errors(payload)]
    except (ValueError, TypeError) as error:
        # jsonschema-rs refuses values JSON has no type for (bytes, CBOR tags turned into objects).
        return SchemaReport(False, version, f"{note}: not JSON data ({error})")
    if errors:
        return SchemaReport(False, version, f"{note}: {errors[0][:200]}")
    return SchemaReport(True, version, note)
