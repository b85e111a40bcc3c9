"""The EU DCC test vectors (dgc-testdata, 2022-04-13) through the CLI's code path, one test per vector.

Every transport and crypto flag a vector sets must agree with ``passport.verify``, except the ones
listed with their reason in ``tests/data/dcc/known-disagreements.json``. Schema flags are noisy
upstream (see that directory's README): their agreement is measured and must not fall.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from passport.cli import verify_document
from passport.verify import VerificationResult

DATA = Path(__file__).parents[1] / "data" / "dcc"
VECTORS = DATA / "vectors"
FILES = sorted(VECTORS.rglob("*.json"))
KNOWN = {
    (entry["vector"], entry["flag"]): entry
    for entry in json.loads((DATA / "known-disagreements.json").read_text())["disagreements"]
}
# The flags the pipeline computes; misspelt or nested keys in the vectors mean "not tested".
TRANSPORT_AND_CRYPTO = (
    "EXPECTEDUNPREFIX", "EXPECTEDB45DECODE", "EXPECTEDCOMPRESSION", "EXPECTEDVERIFY", "EXPECTEDDECODE",
    "EXPECTEDEXPIRATIONCHECK", "EXPECTEDKEYUSAGE", "EXPECTEDPICTUREDECODE",
)
SCHEMA = ("EXPECTEDSCHEMAVALIDATION", "EXPECTEDVALIDOBJECT")
# Measured when the suite was written (format not asserted, schema chosen by the payload's ver).
SCHEMA_AGREEMENT_FLOOR = 575


def _ok(result: VerificationResult, *names: str) -> bool:
    return all((check := result.check(name)) is not None and check.status == "ok" for name in names)


def _instants(value: Any) -> Any:
    """The JSON with every date-time string as a UTC instant (``Z`` and ``+00:00`` are the same time)."""
    if isinstance(value, dict):
        return {key: _instants(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_instants(item) for item in value]
    if isinstance(value, str) and len(value) > 10 and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return value


def _clock(context: dict[str, Any]) -> datetime:
    moment = datetime.fromisoformat(context["VALIDATIONCLOCK"])
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cache
def evaluate(relative: str) -> tuple[dict[str, bool], dict[str, bool]]:
    """(expected, computed) flags of one vector."""
    vector = json.loads((VECTORS / relative).read_text())
    expected = {key: value for key, value in vector.get("EXPECTEDRESULTS", {}).items()
                if key in TRANSPORT_AND_CRYPTO + SCHEMA and isinstance(value, bool)}
    context = vector["TESTCTX"]
    trust = {"dsc": [{"certificate": context["CERTIFICATE"]}]} if context.get("CERTIFICATE") else None
    now = _clock(context)
    result = verify_document(vector["PREFIX"], trust, now)
    decoded = _ok(result, "claims")
    if decoded and "JSON" in vector:
        decoded = _instants(result.payload_json()) == _instants(vector["JSON"])
    computed = {
        "EXPECTEDUNPREFIX": _ok(result, "prefix"),
        "EXPECTEDB45DECODE": _ok(result, "base45"),
        "EXPECTEDCOMPRESSION": _ok(result, "zlib"),
        "EXPECTEDVERIFY": _ok(result, "signature"),
        "EXPECTEDDECODE": decoded,
        "EXPECTEDEXPIRATIONCHECK": _ok(result, "issued_at", "expiry"),
        "EXPECTEDKEYUSAGE": _ok(result, "key_usage"),
        "EXPECTEDSCHEMAVALIDATION": _ok(result, "schema"),
        "EXPECTEDVALIDOBJECT": _ok(result, "schema"),
    }
    if "EXPECTEDPICTUREDECODE" in expected and "2DCODE" in vector:
        # Only the exact key counts: a vector whose image sits under "_2DCODE" has no image to decode.
        try:
            image = base64.b64decode(vector["2DCODE"])
        except (binascii.Error, ValueError):
            image = b""
        from_image = verify_document(image, trust, now)
        computed["EXPECTEDPICTUREDECODE"] = _ok(from_image, "qr") and from_image.hc1 == vector["PREFIX"].strip()
    return expected, computed


def _relative(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def test_the_snapshot_is_complete():
    assert len(FILES) == 574
    assert (VECTORS / "LICENSE").is_file() and (VECTORS / "NOTICE").is_file()


@pytest.mark.parametrize("vector", [_relative(path) for path in FILES])
def test_vector(vector):
    expected, computed = evaluate(vector)
    disagreeing = {
        flag for flag in TRANSPORT_AND_CRYPTO
        if flag in expected and flag in computed and expected[flag] != computed[flag]
    }
    known = {flag for (path, flag) in KNOWN if path == vector}
    assert disagreeing == known, {flag: (expected[flag], computed.get(flag)) for flag in disagreeing ^ known}


def test_known_disagreements_are_explained():
    assert len(KNOWN) == 8
    for (vector, flag), entry in KNOWN.items():
        assert (VECTORS / vector).is_file()
        assert flag in TRANSPORT_AND_CRYPTO
        assert len(entry["reason"]) > 40
        assert entry["expected"] is not entry["ours"]


def test_schema_flag_agreement(capsys):
    agree = total = untestable = 0
    for path in FILES:
        expected, computed = evaluate(_relative(path))
        for flag, value in expected.items():
            if flag not in computed:
                untestable += 1
            elif flag in SCHEMA:
                total += 1
                agree += computed[flag] == value
    with capsys.disabled():
        print(f"\nDCC schema flags: {agree} of {total} agree; {untestable} flags had no input (no 2DCODE)")
    assert total == 911
    assert agree >= SCHEMA_AGREEMENT_FLOOR
