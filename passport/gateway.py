"""The EU DCC Gateway's formats: CMS-signed uploads, trust list entries, revocation batches.

What the gateway (``eu-digital-green-certificates/dgc-gateway``) and the national backends around it
exchange, as their published contract describes it:

- **CMS messages** (RFC 5652 SignedData, DER, sent base64-encoded): the content is the payload (a DSC's
  DER for ``/signerCertificate``, a JSON text for ``/revocation-list``), exactly one certificate (the
  signer's) and exactly one signer. :func:`sign_cms` builds them with ``cryptography``'s PKCS#7
  builder; :func:`verify_cms` checks them (``asn1crypto`` reads the structure, ``cryptography``
  checks the signature).
- **Trust list entries** ``{kid, timestamp, country, certificateType, thumbprint, signature, rawData}``:
  ``rawData`` is the base64 DER, ``thumbprint`` its SHA-256 in hex, ``kid`` the base64 of the first 8
  bytes of that hash, ``signature`` a base64 *detached* CMS over the DER: signed by the gateway's trust
  anchor for ``CSCA``/``UPLOAD``/``AUTHENTICATION`` entries, by the country's upload certificate for
  ``DSC`` entries.
- **Revocation batches** ``{country, expires, kid, hashType, entries: [{hash}]}``, one kid and one hash
  type per batch, 1 to 1,000 entries of base64 16-byte hashes.

:func:`read_trust_list` checks a downloaded list the way a national backend must before trusting it:
trust anchor -> upload certificates and CSCAs -> DSCs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from .errors import GatewayError, PassportError
from .keys import certificate_der, kid
from .revocation import HASH_TYPES
from .trust import TrustedCertificate, TrustList, issued_by

__all__ = [
    "CERTIFICATE_TYPES",
    "MAX_BATCH_ENTRIES",
    "GatewayTrustList",
    "Refusal",
    "TrustListEntry",
    "dsc_entry",
    "gateway_trust_list",
    "read_trust_list",
    "revocation_batch",
    "sign_cms",
    "thumbprint",
    "trusted_party_entry",
    "verify_cms",
]

CERTIFICATE_TYPES = ("DSC", "CSCA", "UPLOAD", "AUTHENTICATION")
MAX_BATCH_ENTRIES = 1000
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512(),
}


def thumbprint(der: bytes) -> str:
    """The gateway's thumbprint of a certificate: the SHA-256 of its DER in lower-case hex."""
    return hashlib.sha256(der).hexdigest()


def sign_cms(content: bytes, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
             *, detached: bool = False) -> bytes:
    """A CMS SignedData over ``content``, signed with SHA-256 by ``key``, carrying ``certificate``.

    :param content: the payload (a DSC's DER, a JSON text's UTF-8)
    :param certificate: the signer's certificate (the upload certificate), the only one embedded
    :param key: its private key
    :param detached: leave the content out (the form of a trust list entry's ``signature``)
    :returns: the DER of the ContentInfo
    """
    options = [pkcs7.PKCS7Options.Binary]
    if detached:
        options.append(pkcs7.PKCS7Options.DetachedSignature)
    return (pkcs7.PKCS7SignatureBuilder().set_data(content)
            .add_signer(certificate, key, hashes.SHA256()).sign(Encoding.DER, options))


def verify_cms(message: bytes, content: bytes | None = None) -> tuple[x509.Certificate, bytes]:
    """Check a CMS SignedData as the gateway does: one certificate, one signer, a valid signature.

    :param message: the DER of the ContentInfo
    :param content: the payload of a detached signature (``None``: it must be embedded)
    :returns: the signer's certificate and the signed content
    :raises GatewayError: when the message is not such a CMS or the signature does not verify
    """
    try:
        info = cms.ContentInfo.load(message, strict=True)
        if info["content_type"].native != "signed_data":
            raise GatewayError("the CMS message is not SignedData")
        signed = info["content"]
        encapsulated = signed["encap_content_info"]
        if encapsulated["content_type"].native != "data":
            raise GatewayError("the CMS content is not data")
        embedded = encapsulated["content"].native if encapsulated["content"] is not None else None
        if (embedded is None) == (content is None):
            raise GatewayError("the CMS content must be either embedded or given, not both or neither")
        payload = bytes(embedded) if embedded is not None else bytes(content or b"")
        certificates = signed["certificates"]
        if certificates is None or len(certificates) != 1 or certificates[0].name != "certificate":
            raise GatewayError("the CMS message must carry exactly one X.509 certificate")
        signer_der = certificates[0].chosen.dump()
        if len(signed["signer_infos"]) != 1:
            raise GatewayError("the CMS message must have exactly one signer")
        signer = signed["signer_infos"][0]
        certificate = x509.load_der_x509_certificate(signer_der)
        _check_signer_id(signer, certificate)
        digest_name = signer["digest_algorithm"]["algorithm"].native
        if digest_name not in _HASHES:
            raise GatewayError(f"unsupported CMS digest {digest_name}")
        algorithm = _HASHES[digest_name]
        try:
            declared = signer["signature_algorithm"].hash_algo
        except ValueError:  # rsaEncryption and the like name no hash: the digest algorithm decides
            declared = digest_name
        if declared != digest_name:
            raise GatewayError("the CMS signature and digest algorithms disagree")
        signed_bytes = payload
        if signer["signed_attrs"] is not None and len(signer["signed_attrs"]):
            attributes = {attr["type"].native: attr["values"] for attr in signer["signed_attrs"]}
            if attributes.get("content_type") is None or attributes["content_type"][0].native != "data":
                raise GatewayError("the CMS content-type attribute is not data")
            digest = hashes.Hash(algorithm)
            digest.update(payload)
            if attributes.get("message_digest") is None \
                    or attributes["message_digest"][0].native != digest.finalize():
                raise GatewayError("the CMS message digest does not match the content")
            # RFC 5652 5.4: the signature covers the attributes' DER as a SET, not as the [0] field.
            signed_bytes = signer["signed_attrs"].untag().dump()
        _check_signature(certificate, signer, signer["signature"].native, signed_bytes, algorithm)
    except GatewayError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, UnsupportedAlgorithm) as error:
        # UnsupportedAlgorithm: a key on a curve or of a kind cryptography cannot load; that entry is
        # refused, and the rest of the list is still read.
        raise GatewayError(f"not a CMS SignedData message: {error}") from None
    return certificate, payload


def _check_signer_id(signer: Any, certificate: x509.Certificate) -> None:
    sid = signer["sid"]
    if sid.name == "issuer_and_serial_number":
        if sid.chosen["serial_number"].native != certificate.serial_number \
                or sid.chosen["issuer"].dump() != certificate.issuer.public_bytes():
            raise GatewayError("the CMS signer is not the embedded certificate")
    else:
        try:
            expected = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except (x509.ExtensionNotFound, ValueError):
            raise GatewayError("the CMS signer names a key identifier the certificate does not carry") from None
        if sid.chosen.native != expected:
            raise GatewayError("the CMS signer is not the embedded certificate")


def _check_signature(certificate: x509.Certificate, signer: Any, signature: bytes, data: bytes,
                     algorithm: hashes.HashAlgorithm) -> None:
    public_key = certificate.public_key()
    scheme = signer["signature_algorithm"].signature_algo
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and scheme == "ecdsa":
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey) and scheme == "rsassa_pkcs1v15":
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, rsa.RSAPublicKey) and scheme == "rsassa_pss":
            public_key.verify(signature, data, padding.PSS(padding.MGF1(algorithm), padding.PSS.AUTO), algorithm)
        else:
            raise GatewayError(f"unsupported CMS signature scheme {scheme}")
    except InvalidSignature:
        raise GatewayError("the CMS signature does not verify with the embedded certificate") from None


@dataclass(frozen=True)
class TrustListEntry:
    """One entry of the gateway's trust list (field names as the gateway writes them)."""

    kid: str
    timestamp: str
    country: str
    certificateType: str  # noqa: N815 - the gateway's field name
    thumbprint: str
    signature: str
    rawData: str  # noqa: N815 - the gateway's field name

    def to_json(self) -> dict[str, str]:
        """The entry as the gateway serialises it."""
        return {"kid": self.kid, "timestamp": self.timestamp, "country": self.country,
                "certificateType": self.certificateType, "thumbprint": self.thumbprint,
                "signature": self.signature, "rawData": self.rawData}

    @classmethod
    def from_json(cls, item: object, where: str) -> TrustListEntry:
        """Read one entry; every field must be a string.

        :raises GatewayError: when a field is missing or not a string
        """
        if not isinstance(item, dict):
            raise GatewayError(f"{where}: a trust list entry is an object")
        values = {}
        for name in ("kid", "timestamp", "country", "certificateType", "thumbprint", "signature", "rawData"):
            value = item.get(name)
            if not isinstance(value, str):
                raise GatewayError(f"{where}: '{name}' must be a string")
            values[name] = value
        return cls(**values)

    def der(self) -> bytes:
        """The certificate's DER (``rawData``), its thumbprint and kid checked.

        :raises GatewayError: on bad base64 or a thumbprint or kid that does not match
        """
        der = _b64(self.rawData, "rawData")
        if thumbprint(der) != self.thumbprint.lower():
            raise GatewayError("the thumbprint is not the SHA-256 of the certificate")
        if self.certificateType == "DSC" and _b64(self.kid, "kid") != kid(der):
            raise GatewayError("the kid is not the SHA-256 prefix of the certificate")
        return der


def _b64(text: str, name: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise GatewayError(f"'{name}' is not base64") from None


def _entry(der: bytes, country: str, kind: str, timestamp: datetime, signature: bytes) -> TrustListEntry:
    return TrustListEntry(
        kid=base64.b64encode(kid(der)).decode("ascii"), timestamp=timestamp.astimezone(UTC).isoformat(),
        country=country, certificateType=kind, thumbprint=thumbprint(der),
        signature=base64.b64encode(signature).decode("ascii") if signature else "",
        rawData=base64.b64encode(der).decode("ascii"))


def dsc_entry(dsc: x509.Certificate | bytes, country: str, timestamp: datetime,
              upload: tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey] | None
              ) -> TrustListEntry:
    """The trust list entry of a DSC, signed (detached CMS) by the upload certificate when given.

    :param dsc: the DSC or its DER
    :param country: its country
    :param timestamp: when it joined the list
    :param upload: the upload certificate and key; ``None`` leaves ``signature`` empty
    """
    der = dsc if isinstance(dsc, bytes) else certificate_der(dsc)
    signature = sign_cms(der, upload[0], upload[1], detached=True) if upload else b""
    return _entry(der, country, "DSC", timestamp, signature)


def trusted_party_entry(certificate: x509.Certificate, country: str, kind: str, timestamp: datetime,
                        anchor: tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]
                        ) -> TrustListEntry:
    """A ``CSCA``/``UPLOAD``/``AUTHENTICATION`` entry signed by a trust anchor (what the gateway's
    operator does offline; used to stand up a gateway in tests and test environments)."""
    der = certificate_der(certificate)
    return _entry(der, country, kind, timestamp, sign_cms(der, anchor[0], anchor[1], detached=True))


@dataclass(frozen=True)
class Refusal:
    """A trust list entry that was not accepted, and why."""

    index: int
    kid: str | None
    country: str | None
    certificate_type: str | None
    reason: str


@dataclass(frozen=True)
class AcceptedDsc:
    """A DSC that passed every check, with what the list said about it."""

    certificate: TrustedCertificate
    entry: TrustListEntry
    csca_checked: bool


@dataclass
class GatewayTrustList:
    """The result of checking a gateway trust list: accepted DSCs and refused entries."""

    dscs: list[AcceptedDsc] = field(default_factory=list)
    cscas: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    uploads: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    refused: list[Refusal] = field(default_factory=list)


def _signer_of(entry: TrustListEntry, der: bytes) -> x509.Certificate:
    if not entry.signature:
        raise GatewayError("the entry is not signed")
    certificate, _ = verify_cms(_b64(entry.signature, "signature"), der)
    return certificate


def _country(value: str) -> str:
    if len(value) != 2 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise GatewayError("'country' must be an ISO 3166 alpha-2 code")
    return value


def read_trust_list(document: object, trust_anchors: Sequence[x509.Certificate]) -> GatewayTrustList:
    """Check a gateway trust list entry by entry, as a national backend must before trusting it.

    ``CSCA`` and ``UPLOAD`` entries count only when signed by one of the trust anchors (the signer
    certificate must be a trust anchor, byte for byte). A ``DSC`` entry counts only when signed by an
    accepted upload certificate of the same country, and, when the list carries CSCAs for that country,
    when one of them issued it. Each entry's thumbprint and kid must match its certificate. An entry
    that fails any check is refused (with the reason) and the others are still read.

    :param document: the parsed JSON (an array of entries)
    :param trust_anchors: the gateway's trust anchor certificates (configured out of band)
    :returns: what was accepted and what was refused
    :raises GatewayError: when the document is not an array, or no trust anchor is given
    """
    if not isinstance(document, list):
        raise GatewayError("a gateway trust list is a JSON array of entries")
    if not trust_anchors:
        raise GatewayError("a gateway trust list cannot be checked without a trust anchor")
    anchors = {certificate_der(anchor) for anchor in trust_anchors}
    result = GatewayTrustList()
    parsed: list[tuple[int, TrustListEntry]] = []
    for index, item in enumerate(document):
        try:
            parsed.append((index, TrustListEntry.from_json(item, f"[{index}]")))
        except GatewayError as error:
            result.refused.append(Refusal(index, None, None, None, str(error)))
    # First the parties the trust anchor vouches for, then the DSCs they vouch for.
    for index, entry in parsed:
        if entry.certificateType not in ("CSCA", "UPLOAD"):
            continue
        try:
            country = _country(entry.country)
            der = entry.der()
            if certificate_der(_signer_of(entry, der)) not in anchors:
                raise GatewayError("not signed by the gateway's trust anchor")
            certificate = x509.load_der_x509_certificate(der)
        except (GatewayError, ValueError) as error:
            result.refused.append(_refusal(index, entry, str(error)))
            continue
        target = result.cscas if entry.certificateType == "CSCA" else result.uploads
        target.setdefault(country, []).append(certificate)
    for index, entry in parsed:
        if entry.certificateType in ("CSCA", "UPLOAD", "AUTHENTICATION"):
            continue
        try:
            if entry.certificateType != "DSC":
                raise GatewayError(f"unknown certificate type {entry.certificateType!r}")
            country = _country(entry.country)
            der = entry.der()
            uploads = {certificate_der(item) for item in result.uploads.get(country, [])}
            if certificate_der(_signer_of(entry, der)) not in uploads:
                raise GatewayError(f"not signed by an upload certificate of {country}")
            trusted = TrustedCertificate.from_certificate(der, country)
            cscas = result.cscas.get(country, [])
            if cscas and not any(issued_by(trusted.certificate, csca) for csca in cscas):
                raise GatewayError(f"not issued by a CSCA of {country}")
        except (PassportError, ValueError) as error:  # TrustListError: an unreadable certificate
            result.refused.append(_refusal(index, entry, str(error)))
            continue
        result.dscs.append(AcceptedDsc(trusted, entry, bool(cscas)))
    return result


def _refusal(index: int, entry: TrustListEntry, reason: str) -> Refusal:
    return Refusal(index, entry.kid, entry.country, entry.certificateType, reason)


def revocation_batch(country: str, kid_bytes: bytes | None, hash_type: str, revoked: Iterable[bytes],
                     expires: datetime) -> str:
    """The JSON text of one revocation batch (what is signed and uploaded to ``/revocation-list``).

    :param country: the uploading country
    :param kid_bytes: the kid of the DSC that signed the certificates, ``None`` for ``UNKNOWN_KID``
    :param hash_type: ``UCI``, ``COUNTRYCODEUCI`` or ``SIGNATURE``
    :param revoked: the 16-byte hashes (1 to 1,000)
    :param expires: when the gateway may drop the batch (the last certificate's expiry)
    :raises GatewayError: on an unknown hash type, a hash that is not 16 bytes, or a bad entry count
    """
    if hash_type not in HASH_TYPES:
        raise GatewayError(f"unknown hash type {hash_type!r}")
    values = sorted(revoked)
    if not 1 <= len(values) <= MAX_BATCH_ENTRIES or any(len(value) != 16 for value in values):
        raise GatewayError("a revocation batch holds 1 to 1,000 hashes of 16 bytes")
    moment = expires.astimezone(UTC)
    return json.dumps({
        "country": _country(country),
        "expires": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "kid": base64.b64encode(kid_bytes).decode("ascii") if kid_bytes else "UNKNOWN_KID",
        "hashType": hash_type,
        "entries": [{"hash": base64.b64encode(value).decode("ascii")} for value in values],
    }, separators=(",", ":"))


def gateway_trust_list(document: object, trust_anchors: Sequence[x509.Certificate] = ()) -> TrustList:
    """A :class:`TrustList` of the DSC entries of a gateway trust list (what the CLI's ``--trust-list``
    reads when given the gateway's array).

    With trust anchors, every entry is checked as :func:`read_trust_list` does and only accepted DSCs
    are kept. Without, the DSCs are taken as given (like a trust list file without CSCAs): each entry's
    thumbprint and kid must still match its certificate.

    :raises GatewayError: on a document that is not an array of entries, or a DSC entry whose
        certificate, thumbprint or kid is wrong (without trust anchors)
    """
    if trust_anchors:
        return TrustList(accepted.certificate for accepted in read_trust_list(document, trust_anchors).dscs)
    if not isinstance(document, list):
        raise GatewayError("a gateway trust list is a JSON array of entries")
    certificates = []
    for index, item in enumerate(document):
        entry = TrustListEntry.from_json(item, f"[{index}]")
        if entry.certificateType != "DSC":
            continue
        try:
            certificates.append(TrustedCertificate.from_certificate(entry.der(), _country(entry.country)))
        except GatewayError as error:
            raise GatewayError(f"[{index}]: {error}") from None
    return TrustList(certificates)
