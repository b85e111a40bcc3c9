"""Second factors shared by staff and citizens: replay-safe TOTP and single-use recovery codes."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import mongoengine as me

from app.security import totp
from app.security.crypto import SecretBox

# Read-aloud-safe alphabet: no 0/O, 1/I/L (also used for activation codes).
READABLE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 10  # 10 x log2(31) = 49.5 bits


def consume_totp(
    document_class: type[me.Document],
    document_id: Any,
    secret: str,
    code: str,
    now: datetime,
    filters: dict[str, Any] | None = None,
    **update: Any,
) -> bool:
    """Accept ``code`` at most once: one conditional update moves the last accepted step forward.

    ``filters`` add conditions and ``update`` (mongoengine keywords such as ``set__state``) adds
    changes to that same single update, so they happen together or not at all. Concurrent
    requests with the same code race on it; exactly one wins.
    """
    step = totp.matching_step(secret, code, now)
    if step is None:
        return False
    return bool(
        document_class.objects(id=document_id, totp_last_step__lt=step, **(filters or {}))
        .update_one(set__totp_last_step=step, **update)
    )


def readable_code(length: int) -> str:
    """A random code from the read-aloud-safe alphabet."""
    return "".join(secrets.choice(READABLE_ALPHABET) for _ in range(length))


def format_code(code: str) -> str:
    """``ABCDEFGHJK`` -> ``ABCDE-FGHJK`` for people to read and type."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_code(text: str) -> str:
    """What a person typed -> the canonical code (case, spaces and dashes do not matter)."""
    return "".join(ch for ch in text.upper() if ch not in " -")


def new_recovery_codes(box: SecretBox, owner: str) -> tuple[list[str], list[str]]:
    """Ten single-use recovery codes and their keyed hashes (only the hashes are stored)."""
    codes = [format_code(readable_code(RECOVERY_CODE_LENGTH)) for _ in range(RECOVERY_CODE_COUNT)]
    return codes, [recovery_code_hash(box, owner, code) for code in codes]


def recovery_code_hash(box: SecretBox, owner: str, code: str) -> str:
    """Keyed hash of a recovery code, bound to its owner."""
    return box.keyed_hash(f"{owner}:{normalize_code(code)}", "recovery-code")


def consume_recovery_code(
    document_class: type[me.Document], document_id: Any, box: SecretBox, owner: str, code: str
) -> bool:
    """Use a recovery code once: one conditional update removes its hash."""
    code_hash = recovery_code_hash(box, owner, code)
    return bool(
        document_class.objects(id=document_id, recovery_code_hashes=code_hash).update_one(
            pull__recovery_code_hashes=code_hash
        )
    )
