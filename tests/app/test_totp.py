"""The TOTP code path against every RFC 4226 and RFC 6238 test vector, and its window rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.security import totp

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "otp" / "rfc_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["hotp"], ids=lambda v: f"hotp-counter-{v['counter']}")
def test_rfc4226_hotp_vectors(vector):
    code = totp.hotp_code(vector["secret_base32"], vector["counter"], vector["digits"],
                          vector["algorithm"])
    assert code == vector["expected"]


@pytest.mark.parametrize(
    "vector", VECTORS["totp"], ids=lambda v: f"totp-{v['algorithm']}-{v['time']}"
)
def test_rfc6238_totp_vectors(vector):
    moment = datetime.fromtimestamp(vector["time"], UTC)
    step = totp.step_at(moment)
    assert step == int(vector["T_hex"], 16)
    code = totp.code_for_step(vector["secret_base32"], step, vector["digits"], vector["algorithm"])
    assert code == vector["expected"]
    # and the verifying side finds exactly that step
    found = totp.matching_step(vector["secret_base32"], vector["expected"], moment,
                               digits=vector["digits"], algorithm=vector["algorithm"])
    assert found == step


def test_codes_outside_one_step_are_refused():
    secret = totp.new_secret()
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    step = totp.step_at(now)
    for offset, accepted in ((-2, False), (-1, True), (0, True), (1, True), (2, False)):
        code = totp.code_for_step(secret, step + offset)
        assert (totp.matching_step(secret, code, now) == step + offset) is accepted


def test_valid_window_above_one_is_refused():
    with pytest.raises(ValueError):
        totp.matching_step(totp.new_secret(), "123456", datetime.now(UTC), valid_window=2)


def test_malformed_codes_never_match():
    secret = totp.new_secret()
    for code in ("", "12345", "1234567", "abcdef", "12 456"):
        assert totp.matching_step(secret, code, datetime.now(UTC)) is None


def test_new_secrets_have_160_bits():
    import base64

    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20
    assert secret != totp.new_secret()
