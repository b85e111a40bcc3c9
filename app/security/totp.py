"""TOTP (RFC 6238) on pyotp: code checks that tell which time step matched.

pyotp keeps no state; replay protection is the caller's one conditional update on the last
accepted step (see the staff and citizen services).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

import pyotp

ISSUER = "HoSo"
STEP_SECONDS = 30
DIGITS = 6
MAX_VALID_WINDOW = 1
SECRET_BYTES = 20  # 160 bits, RFC 4226 section 4 recommends at least this

_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def new_secret() -> str:
    """A fresh base32 secret of 160 bits from the operating system's CSPRNG."""
    return pyotp.random_base32(length=32)  # 32 base32 characters = 20 bytes


def _totp(secret: str, digits: int = DIGITS, algorithm: str = "SHA1") -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=digits, digest=_DIGESTS[algorithm], interval=STEP_SECONDS)


def step_at(moment: datetime) -> int:
    """The RFC 6238 time step counter of an aware datetime."""
    return int(moment.timestamp()) // STEP_SECONDS


def code_for_step(secret: str, step: int, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """The code of one time step (RFC 6238 T = step)."""
    return _totp(secret, digits, algorithm).generate_otp(step)


def hotp_code(secret: str, counter: int, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """An RFC 4226 HOTP code (the primitive under TOTP)."""
    return pyotp.HOTP(secret, digits=digits, digest=_DIGESTS[algorithm]).at(counter)


def matching_step(
    secret: str,
    code: str,
    now: datetime,
    valid_window: int = MAX_VALID_WINDOW,
    digits: int = DIGITS,
    algorithm: str = "SHA1",
) -> int | None:
    """The time step whose code equals ``code``, within ``valid_window`` steps of ``now``.

    Every candidate is compared in constant time; ``valid_window`` above 1 is refused.
    """
    if not 0 <= valid_window <= MAX_VALID_WINDOW:
        raise ValueError("valid_window must be 0 or 1")
    if len(code) != digits or not code.isdigit():
        return None
    current = step_at(now)
    found: int | None = None
    for step in range(current - valid_window, current + valid_window + 1):
        if hmac.compare_digest(code_for_step(secret, step, digits, algorithm), code):
            found = step  # keep looping: same work whichever step matched
    return found


def provisioning_uri(secret: str, account_name: str, **extra: Any) -> str:
    """An ``otpauth://`` URI with issuer "HoSo" for authenticator apps."""
    return _totp(secret).provisioning_uri(name=account_name, issuer_name=ISSUER, **extra)
