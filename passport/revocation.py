"""Revocation hashes (DCC revocation design) and the revocation list a verifier checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cose import ES256
from .errors import RevocationListError

__all__ = ["HASH_TYPES", "RevocationHashes", "RevocationList", "revocation_hashes"]

HASH_TYPES = ("UCI", "COUNTRYCODEUCI", "SIGNATURE")
_HASH_BYTES = 16


def _truncated_sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:_HASH_BYTES]


@dataclass(frozen=True)
class RevocationHashes:
    """The three 16-byte revocation hashes of one certificate.

    :ivar uci: SHA-256 of the UVCI (the ``ci`` field), first 16 bytes
    :ivar countrycode_uci: SHA-256 of the issuing country code (CWT ``iss``) followed by the UVCI
    :ivar signature: SHA-256 of the signature (for ES256 only ``r``, its first half)
    """

    uci: bytes
    countrycode_uci: bytes
    signature: bytes

    def by_type(self) -> dict[str, bytes]:
        """The hashes keyed by their type name (``UCI``, ``COUNTRYCODEUCI``, ``SIGNATURE``)."""
        return {"UCI": self.uci, "COUNTRYCODEUCI": self.countrycode_uci, "SIGNATURE": self.signature}


def revocation_hashes(uci: str, country: str, signature: bytes, algorithm: int = ES256) -> RevocationHashes:
    """Compute the revocation hashes of a certificate.

    :param uci: the UVCI as in the payload's ``ci``
    :param country: the issuing country as in the CWT ``iss`` claim
    :param signature: the COSE signature bytes
    :param algorithm: the COSE algorithm; for ES256 only ``r`` is hashed, because ``(r, n - s)`` is an
        equally valid signature and must not escape revocation
    :returns: the hashes
    """
    signed = signature[: len(signature) // 2] if algorithm == ES256 else signature
    return RevocationHashes(
        uci=_truncated_sha256(uci.encode("utf-8")),
        countrycode_uci=_truncated_sha256((country + uci).encode("utf-8")),
        signature=_truncated_sha256(signed),
    )


def _decode_hashes(values: object, where: str) -> frozenset[bytes]:
    if not isinstance(values, list):
        raise RevocationListError(f"{where} must be a list of base64 strings")
    out = set()
    for value in values:
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except binascii.Error:
            raw = b""
        if len(raw) != _HASH_BYTES:
            raise RevocationListError(f"{where}: each entry must be 16 bytes in base64")
        out.add(raw)
    return frozenset(out)


def _encode_hashes(values: Iterable[bytes]) -> list[str]:
    return sorted(base64.b64encode(value).decode("ascii") for value in values)


@dataclass(frozen=True)
class RevocationList:
    """Revoked certificates as 16-byte hashes, by hash type, for every signer or for one kid.

    JSON form (what :meth:`from_json` reads and :meth:`to_json` writes)::

        {"UCI": [b64, ...], "COUNTRYCODEUCI": [...], "SIGNATURE": [...],
         "kids": {"<kid b64>": {"UCI": [...], "COUNTRYCODEUCI": [...], "SIGNATURE": [...]}}}

    Every key is optional. Hashes at the top level apply whichever key signed the certificate; those
    under ``kids`` only to certificates signed with that kid (the EU gateway's layout).

    :ivar hashes: hash type -> revoked hashes, for any kid
    :ivar by_kid: kid -> hash type -> revoked hashes
    """

    hashes: Mapping[str, frozenset[bytes]] = field(default_factory=dict)
    by_kid: Mapping[bytes, Mapping[str, frozenset[bytes]]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: object) -> RevocationList:
        """Read the JSON form.

        :param document: the parsed JSON
        :returns: the list
        :raises RevocationListError: on unknown hash types, bad base64 or hashes that are not 16 bytes
        """
        if not isinstance(document, dict):
            raise RevocationListError("a revocation list is a JSON object")
        unknown = set(document) - set(HASH_TYPES) - {"kids"}
        if unknown:
            raise RevocationListError(f"unknown keys {sorted(unknown)}")
        top = {kind: _decode_hashes(document[kind], kind) for kind in HASH_TYPES if kind in document}
        kids = document.get("kids", {})
        if not isinstance(kids, dict):
            raise RevocationListError("'kids' must map base64 kids to hash lists")
        by_kid: dict[bytes, dict[str, frozenset[bytes]]] = {}
        for kid_text, entry in kids.items():
            try:
                kid = base64.b64decode(kid_text, validate=True)
            except binascii.Error:
                raise RevocationListError(f"kid {kid_text!r} is not base64") from None
            if not isinstance(entry, dict) or set(entry) - set(HASH_TYPES):
                raise RevocationListError(f"kid {kid_text}: expected an object of hash lists")
            by_kid[kid] = {kind: _decode_hashes(entry[kind], f"{kid_text}/{kind}") for kind in entry}
        return cls(top, by_kid)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (sorted, so that equal lists serialise equally)."""
        document: dict[str, Any] = {kind: _encode_hashes(self.hashes[kind]) for kind in HASH_TYPES
                                    if self.hashes.get(kind)}
        if self.by_kid:
            document["kids"] = {
                base64.b64encode(kid).decode("ascii"): {kind: _encode_hashes(values[kind])
                                                        for kind in HASH_TYPES if values.get(kind)}
                for kid, values in sorted(self.by_kid.items())
            }
        return document

    @classmethod
    def of(cls, revoked: Iterable[RevocationHashes], kid: bytes | None = None) -> RevocationList:
        """A list revoking the given certificates by all three hash types.

        :param revoked: the hashes of each revoked certificate
        :param kid: restrict the entries to this kid; by default they apply to any kid
        """
        collected: dict[str, set[bytes]] = {kind: set() for kind in HASH_TYPES}
        for entry in revoked:
            for kind, value in entry.by_type().items():
                collected[kind].add(value)
        frozen = {kind: frozenset(values) for kind, values in collected.items()}
        return cls(by_kid={kid: frozen}) if kid is not None else cls(hashes=frozen)

    def match(self, hashes: RevocationHashes, kid: bytes | None) -> str | None:
        """The first hash type under which a certificate is revoked, or ``None``.

        :param hashes: the certificate's revocation hashes
        :param kid: the kid that signed it
        """
        scoped = self.by_kid.get(kid, {}) if kid is not None else {}
        for kind, value in hashes.by_type().items():
            if value in self.hashes.get(kind, ()) or value in scoped.get(kind, ()):
                return kind
        return None
