"""Password and client-secret hashing with argon2id."""

from __future__ import annotations

import secrets
import string
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher as _Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Generated one-time passwords avoid characters that are easy to misread.
_READABLE = "".join(ch for ch in string.ascii_letters + string.digits if ch not in "0O1lI")


class PasswordHasher:
    """argon2id hashing with the cost from settings; verification never raises on a mismatch."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = _Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verified against when the account does not exist, so both paths cost the same time.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """Hash a password or secret for storage."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; a missing hash costs as much time as a real check."""
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, password) and bool(
                stored_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def generate_password(length: int = 20) -> str:
    """A random one-time password for new staff (about 115 bits of entropy)."""
    return "".join(secrets.choice(_READABLE) for _ in range(length))


MIN_LENGTH = 12
MAX_LENGTH = 128
_COMMON_FILE = Path(__file__).with_name("common-passwords.txt")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The list of known-weak passwords (lower case)."""
    lines = _COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def password_problems(password: str, *personal: str) -> list[str]:
    """Why a citizen's new password is refused (empty when it is acceptable).

    Length 12-128 (any characters, spaces and Vietnamese included), not on the common list, not a
    run of three or fewer distinct characters, and not containing personal data such as the CCCD.
    """
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    if lowered in common_passwords() or lowered.rstrip("0123456789!@#$.") in common_passwords():
        problems.append("This password is too common.")
    if len(set(lowered)) <= 3:
        problems.append("Use more different characters.")
    if any(item and len(item) >= 4 and item.lower() in lowered for item in personal):
        problems.append("Do not use your identity number or birth date in your password.")
    return problems
