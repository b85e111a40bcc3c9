"""Secrets at rest: AES-GCM encryption and keyed hashes, both derived from the data key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = "v1"


class DecryptionError(ValueError):
    """A stored ciphertext is corrupt, or was encrypted for another context or key."""


def _derive(data_key: bytes, label: bytes) -> bytes:
    """Separate keys per use, so the encryption key never doubles as the hashing key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(data_key)


class SecretBox:
    """Encrypts small secrets (TOTP seeds, codes in transit) bound to the record they belong to.

    The ``context`` (for example ``"staff-totp:<id>"``) is authenticated data: a ciphertext copied
    onto another record does not decrypt there.
    """

    def __init__(self, data_key: bytes) -> None:
        self._aead = AESGCM(_derive(data_key, b"hoso/aes-gcm/v1"))
        self._hash_key = _derive(data_key, b"hoso/keyed-hash/v1")

    def encrypt(self, plaintext: str, context: str) -> str:
        """Encrypt ``plaintext``; the result is ``v1.<base64 nonce+ciphertext>``."""
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{FORMAT_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, context: str) -> str:
        """Decrypt what :meth:`encrypt` made for the same ``context``."""
        version, _, body = token.partition(".")
        if version != FORMAT_VERSION:
            raise DecryptionError("unknown ciphertext format")
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except (InvalidTag, ValueError) as error:
            raise DecryptionError("ciphertext does not decrypt") from error

    def keyed_hash(self, value: str, purpose: str) -> str:
        """HMAC-SHA256 of ``value`` for lookups of codes and tokens that are never stored in clear."""
        message = purpose.encode() + b"\x00" + value.encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()

    def hash_matches(self, value: str, purpose: str, stored_hash: str) -> bool:
        """Constant-time comparison of ``value`` against a stored keyed hash."""
        return hmac.compare_digest(self.keyed_hash(value, purpose), stored_hash)
