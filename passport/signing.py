"""Signing: CWT claims, the ``Signer`` protocol, the in-process signer, and passport issuance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .cose import (
    ES256,
    HEADER_ALG,
    HEADER_KID,
    SIGNATURE1_CONTEXT,
    CoseFormatError,
    bstr,
    decode_sign1,
    encode_cbor,
    loads_exact,
)
from .errors import KeyMaterialError, PayloadError, SigningError, ValidityError
from .keys import kid as kid_of
from .payload import VaccinationRecord, build_payload, is_valid_uvci, new_uvci
from .revocation import RevocationHashes, revocation_hashes
from .schema import validate_payload
from .transport import encode_hc1
from .trust import TrustedCertificate

__all__ = [
    "ISSUER_COUNTRY",
    "MAX_VALIDITY",
    "IssuedPassport",
    "LocalSigner",
    "Signer",
    "build_claims",
    "check_claims",
    "issue",
]

ISSUER_COUNTRY = "VN"
MAX_VALIDITY = timedelta(days=365)
# How far the signing service lets a claimed issue time differ from its own clock.
MAX_FUTURE_SKEW = timedelta(minutes=5)
MAX_BACKDATING = timedelta(days=1)
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


@runtime_checkable
class Signer(Protocol):
    """Something that signs CWT claims with a DSC's key: in process, or in a separate service."""

    @property
    def kid(self) -> bytes:
        """The DSC's kid (first 8 bytes of the SHA-256 of its DER)."""
        ...

    @property
    def certificate(self) -> x509.Certificate:
        """The DSC (public)."""
        ...

    def sign(self, claims: Mapping[int, Any]) -> bytes:
        """Sign CWT claims.

        :param claims: the claims map (see :func:`build_claims`)
        :returns: a COSE_Sign1 message (CBOR tag 18, ES256, ``alg`` and ``kid`` protected)
        :raises SigningError: when the signature cannot be made
        """
        ...


class LocalSigner:
    """A signer holding the DSC private key in this process (development, and the signing service)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        """:param private_key: the DSC's P-256 private key
        :param certificate: the DSC
        :raises KeyMaterialError: when the key is not P-256 or does not belong to the certificate"""
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise KeyMaterialError("ES256 needs a P-256 key")
        if private_key.public_key() != certificate.public_key():
            raise KeyMaterialError("the private key does not belong to the DSC")
        self._key = private_key
        self._certificate = certificate
        self._kid = kid_of(certificate)
        protected = encode_cbor({HEADER_ALG: ES256, HEADER_KID: self._kid})
        # The protected header never changes, so the fixed parts of both CBOR structures are built once.
        self._to_sign_head = SIGNATURE1_CONTEXT + bstr(protected) + b"\x40"
        self._message_head = b"\xd2\x84" + bstr(protected) + b"\xa0"

    @property
    def kid(self) -> bytes:
        return self._kid

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    def sign(self, claims: Mapping[int, Any]) -> bytes:
        """Sign CWT claims (see :meth:`Signer.sign`)."""
        payload = bstr(encode_cbor(claims if isinstance(claims, dict) else dict(claims)))
        r, s = decode_dss_signature(self._key.sign(self._to_sign_head + payload, _ECDSA_SHA256))
        # COSE carries ECDSA signatures as r || s, each 32 bytes (RFC 9053), not DER.
        return self._message_head + payload + b"\x58\x40" + r.to_bytes(32, "big") + s.to_bytes(32, "big")


def build_claims(payload: Mapping[str, Any], issued_at: datetime, expires_at: datetime,
                 issuer: str = ISSUER_COUNTRY) -> dict[int, Any]:
    """The CWT claims of a DCC: ``{1: iss, 6: iat, 4: exp, -260: {1: payload}}``.

    :param payload: the DCC payload
    :param issued_at: issue time (timezone-aware; sub-second precision is dropped)
    :param expires_at: expiry time (timezone-aware)
    :param issuer: the issuing country
    :returns: the claims map
    """
    return {1: issuer, 6: int(issued_at.timestamp()), 4: int(expires_at.timestamp()), -260: {1: payload}}


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidityError(f"{name} must be timezone-aware")


def check_claims(claims: object, certificate: x509.Certificate, now: datetime,
                 issuer: str = ISSUER_COUNTRY) -> dict[str, Any]:
    """Check claims before signing them (what the signing service does with every request).

    Issuer, integer ``iat``/``exp``, at most 365 days of validity, within the DSC's validity, ``iat``
    near ``now``, a schema-valid payload of a type the DSC may sign, and a well-formed UVCI of the issuer.

    :param claims: the decoded claims
    :param certificate: the DSC that would sign them
    :param now: the signer's current time (timezone-aware)
    :param issuer: the only accepted ``iss``
    :returns: the DCC payload
    :raises PayloadError: on a malformed claims map or payload
    :raises ValidityError: on times outside the rules
    """
    _aware(now, "now")
    if not isinstance(claims, dict) or set(claims) != {1, 4, 6, -260}:
        raise PayloadError("claims must be exactly {1: iss, 4: exp, 6: iat, -260: hcert}")
    if claims[1] != issuer:
        raise PayloadError(f"the issuer must be {issuer!r}")
    iat, exp = claims[6], claims[4]
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (iat, exp)):
        raise PayloadError("iat and exp must be integers")
    if not 0 < exp - iat <= MAX_VALIDITY.total_seconds():
        raise ValidityError("a passport is valid for more than 0 and at most 365 days")
    if iat < certificate.not_valid_before_utc.timestamp() or exp > certificate.not_valid_after_utc.timestamp():
        raise ValidityError("the validity must lie within the DSC's validity")
    if not (now - MAX_BACKDATING).timestamp() <= iat <= (now + MAX_FUTURE_SKEW).timestamp():
        raise ValidityError("iat is too far from the signer's clock")
    hcert = claims[-260]
    if not isinstance(hcert, dict) or set(hcert) != {1} or not isinstance(hcert[1], dict):
        raise PayloadError("claim -260 must be {1: payload}")
    payload: dict[str, Any] = hcert[1]
    report = validate_payload(payload, "1.3.3")
    if not report.ok:
        raise PayloadError(f"the payload violates the DCC schema: {report.message}")
    kinds = [kind for key, kind in (("v", "vaccination"), ("t", "test"), ("r", "recovery")) if key in payload]
    allowed = _allowed_types(certificate)
    if allowed is not None and not set(kinds) <= allowed:
        raise PayloadError(f"the DSC may not sign {', '.join(kinds)} certificates")
    for entry in payload.get("v", []) + payload.get("t", []) + payload.get("r", []):
        uvci = entry.get("ci", "")
        if not is_valid_uvci(uvci) or not uvci.startswith(f"URN:UVCI:01:{issuer}:"):
            raise PayloadError("the UVCI is malformed, has a wrong check character, or another country")
    return payload


@lru_cache(maxsize=8)
def _allowed_types(certificate: x509.Certificate) -> frozenset[str] | None:
    """The types a DSC may sign (read once per certificate: the service checks every request)."""
    return TrustedCertificate.from_certificate(certificate).allowed_types


@dataclass(frozen=True)
class IssuedPassport:
    """A signed vaccine passport.

    :ivar uvci: the certificate identifier
    :ivar hc1: the QR text (``HC1:...``)
    :ivar kid: the signing DSC's kid
    :ivar issued_at: ``iat`` (whole seconds)
    :ivar expires_at: ``exp`` (whole seconds; clipped to the DSC's end of validity)
    :ivar revocation: the hashes that revoke it
    :ivar payload: the signed DCC payload
    """

    uvci: str
    hc1: str
    kid: bytes
    issued_at: datetime
    expires_at: datetime
    revocation: RevocationHashes
    payload: dict[str, Any]


def issue(record: VaccinationRecord, signer: Signer, issued_at: datetime,
          valid_for: timedelta = MAX_VALIDITY, uvci: str | None = None) -> IssuedPassport:
    """Issue a vaccine passport.

    The validity is ``valid_for`` (at most 365 days) but never extends past the DSC's end of
    validity: it is clipped there, because a verifier rejects a certificate whose DSC has expired
    anyway, and the stored ``expires_at`` should say when it really stops working.

    :param record: the vaccination (facility-recorded; the caller checks eligibility)
    :param signer: a :class:`LocalSigner`, a :class:`~passport.remote.RemoteSigner`, or any ``Signer``
    :param issued_at: the issue time (timezone-aware)
    :param valid_for: requested validity
    :param uvci: the certificate identifier; a new random one by default
    :returns: the passport
    :raises ValidityError: on a naive time, a validity over 365 days or not positive, or an ``issued_at``
        outside the DSC's validity
    :raises PayloadError: when the record cannot make a schema-valid payload
    :raises SigningError: when the signer fails or returns something other than it was asked to sign
    """
    _aware(issued_at, "issued_at")
    if not timedelta(0) < valid_for <= MAX_VALIDITY:
        raise ValidityError("a passport is valid for more than 0 and at most 365 days")
    certificate = signer.certificate
    issued_at = issued_at.replace(microsecond=0)
    if not certificate.not_valid_before_utc <= issued_at < certificate.not_valid_after_utc:
        raise ValidityError("the DSC is not valid at the issue time")
    expires_at = min(issued_at + valid_for, certificate.not_valid_after_utc.astimezone(issued_at.tzinfo))
    expires_at = expires_at.replace(microsecond=0)
    uvci = uvci or new_uvci(ISSUER_COUNTRY)
    payload = build_payload(record, uvci)
    claims = build_claims(payload, issued_at, expires_at)
    message = signer.sign(claims)
    try:
        sign1 = decode_sign1(message)
        signed_claims = loads_exact(sign1.payload)
    except (CoseFormatError, ValueError) as error:
        raise SigningError(f"the signer returned a malformed message: {error}") from None
    # A remote signer could sign something else (or with another key): check before handing it out.
    if signed_claims != claims or sign1.protected.get(HEADER_ALG) != ES256 \
            or sign1.protected.get(HEADER_KID) != signer.kid:
        raise SigningError("the signer returned a message for other claims, algorithm or key")
    return IssuedPassport(
        uvci=uvci,
        hc1=encode_hc1(message),
        kid=signer.kid,
        issued_at=issued_at,
        expires_at=expires_at,
        revocation=revocation_hashes(uvci, ISSUER_COUNTRY, sign1.signature, ES256),
        payload=payload,
    )
