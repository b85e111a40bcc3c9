"""The trust list: document signer certificates a verifier accepts, looked up by kid."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from ._der import DerError, extended_key_usage
from .errors import TrustListError
from .keys import certificate_der, kid

__all__ = ["CERTIFICATE_TYPES", "TrustList", "TrustedCertificate", "issued_by"]

CERTIFICATE_TYPES = ("test", "vaccination", "recovery")
# Both arcs occur in real DSCs: the registered one and an older one with an extra ".0".
_EKU_TYPES = {
    f"1.3.6.1.4.1{arc}.1847.2021.1.{number}": kind
    for arc in ("", ".0")
    for number, kind in ((1, "test"), (2, "vaccination"), (3, "recovery"))
}
_EKU_OID = x509.oid.ExtensionOID.EXTENDED_KEY_USAGE


def _usage(certificate: x509.Certificate, der: bytes) -> tuple[frozenset[str] | None, str]:
    """The DCC types a DSC may sign (``None``: any) and how that was read."""
    note = ""
    oids: list[str] | None
    try:
        extension = certificate.extensions.get_extension_for_oid(_EKU_OID)
        oids = [oid.dotted_string for oid in extension.value]  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        oids = None
    except ValueError:
        # cryptography refuses some real DSCs' extensions (DER quirks); read the one we need tolerantly.
        note = " (read with the tolerant DER parser)"
        try:
            oids = extended_key_usage(der)
        except DerError as error:
            return frozenset(), f"extended key usage unreadable: {error}"
    if oids is None:
        return None, "no extended key usage: may sign any type" + note
    kinds = frozenset(_EKU_TYPES[oid] for oid in oids if oid in _EKU_TYPES)
    if not kinds:
        return None, "no DCC extended key usage: may sign any type" + note
    return kinds, "extended key usage: " + ", ".join(sorted(kinds)) + note


@dataclass(frozen=True, eq=False)
class TrustedCertificate:
    """A document signer certificate prepared for verification.

    :ivar kid: first 8 bytes of the SHA-256 of the DER
    :ivar der: the certificate's DER
    :ivar certificate: the parsed certificate
    :ivar public_key: its public key
    :ivar not_before: start of validity (UTC)
    :ivar not_after: end of validity (UTC)
    :ivar country: the country that published it, when known
    :ivar allowed_types: DCC types it may sign (``test``, ``vaccination``, ``recovery``); ``None``: any
    :ivar usage_note: how the key usage was read, for the verification report
    :ivar kid_text: the kid in base64
    :ivar validity_text: the validity period as text (reports are built per verification: precomputed)
    """

    kid: bytes
    der: bytes
    certificate: x509.Certificate
    public_key: CertificatePublicKeyTypes
    not_before: datetime
    not_after: datetime
    country: str | None
    allowed_types: frozenset[str] | None
    usage_note: str
    kid_text: str
    validity_text: str

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate | bytes, country: str | None = None
                         ) -> TrustedCertificate:
        """Prepare a certificate: kid, public key, validity and key usage are read once, here.

        :param certificate: the certificate or its DER
        :param country: the publishing country, when known
        :raises TrustListError: when the certificate or its public key cannot be read
        """
        try:
            if isinstance(certificate, bytes):
                der = certificate
                certificate = x509.load_der_x509_certificate(der)
            else:
                der = certificate_der(certificate)
            public_key = certificate.public_key()
        except (ValueError, TypeError) as error:
            raise TrustListError(f"unreadable certificate: {error}") from None
        if country is None:
            # The subject's C, read through the raw RDNs (the strict parser may refuse the rest).
            names = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
            country = str(names[0].value) if names else None
        allowed, note = _usage(certificate, der)
        key_id = kid(der)
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        return cls(key_id, der, certificate, public_key, start, end, country, allowed, note,
                   base64.b64encode(key_id).decode("ascii"),
                   f"the DSC is valid from {start.isoformat()} to {end.isoformat()}")


class TrustList:
    """Trusted document signer certificates by kid (several may share a kid), and the CSCAs they
    were checked against."""

    def __init__(self, certificates: Iterable[TrustedCertificate], cscas: Iterable[x509.Certificate] = ()
                 ) -> None:
        """:param certificates: the trusted DSCs
        :param cscas: the CSCAs (kept for publication; :meth:`from_json` checks DSCs against them)"""
        self._by_kid: dict[bytes, tuple[TrustedCertificate, ...]] = {}
        self._all: list[TrustedCertificate] = []
        for entry in certificates:
            self._by_kid[entry.kid] = self._by_kid.get(entry.kid, ()) + (entry,)
            self._all.append(entry)
        self.cscas: tuple[x509.Certificate, ...] = tuple(cscas)

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[TrustedCertificate]:
        return iter(self._all)

    def candidates(self, key_id: bytes) -> tuple[TrustedCertificate, ...]:
        """The trusted certificates with this kid (possibly none)."""
        return self._by_kid.get(key_id, ())

    @classmethod
    def of(cls, certificates: Iterable[x509.Certificate | bytes], cscas: Iterable[x509.Certificate] = (),
           country: str | None = None) -> TrustList:
        """A trust list of the given DSCs, each checked against the CSCAs when any are given.

        :param certificates: DSCs (certificates or DER)
        :param cscas: CSCAs that must have issued every DSC (none: trust the DSCs as given)
        :param country: the publishing country of every DSC
        :raises TrustListError: on an unreadable DSC or one that no given CSCA issued
        """
        authorities = tuple(cscas)
        entries = [TrustedCertificate.from_certificate(item, country) for item in certificates]
        for entry in entries:
            if authorities and not any(issued_by(entry.certificate, csca) for csca in authorities):
                raise TrustListError(f"DSC {base64.b64encode(entry.kid).decode()} is not issued by a listed CSCA")
        return cls(entries, authorities)

    @classmethod
    def from_json(cls, document: object) -> TrustList:
        """Read the trust list JSON that ``GET /passport/trust-list`` publishes::

            {"dsc": [{"kid": b64, "country": "VN", "certificate": b64 DER, "not_before": ..., "not_after": ...}],
             "csca": [{"certificate": b64 DER}]}

        ``kid`` is checked against the certificate; ``not_before``/``not_after`` are informational
        (the certificate's own validity is used). When CSCAs of a DSC's country are listed (the
        country in a CSCA's subject), that DSC must have been issued by one of them; DSCs of other
        countries (imported from the EU DCC Gateway, which checked them against their CSCAs) are
        taken as listed.

        :param document: the parsed JSON
        :returns: the trust list
        :raises TrustListError: on a malformed document, an unreadable certificate, a wrong kid or a
            DSC that no listed CSCA issued
        """
        if not isinstance(document, dict) or not isinstance(document.get("dsc", []), list) \
                or not isinstance(document.get("csca", []), list):
            raise TrustListError("a trust list is an object with 'dsc' and 'csca' lists")
        cscas = []
        for index, item in enumerate(document.get("csca", [])):
            try:
                cscas.append(x509.load_der_x509_certificate(_b64(item, f"csca[{index}]")))
            except ValueError as error:
                raise TrustListError(f"csca[{index}]: unreadable certificate: {error}") from None
        entries = []
        for index, item in enumerate(document.get("dsc", [])):
            where = f"dsc[{index}]"
            country = item.get("country") if isinstance(item, dict) else None
            if country is not None and not isinstance(country, str):
                raise TrustListError(f"{where}: 'country' must be a string")
            entry = TrustedCertificate.from_certificate(_b64(item, where), country)
            declared = item.get("kid")
            if declared is not None and _decode(declared, f"{where}.kid") != entry.kid:
                raise TrustListError(f"{where}: 'kid' is not the SHA-256 prefix of the certificate")
            own = [csca for csca in cscas if entry.country is None or _country_of(csca) in (None, entry.country)]
            if own and not any(issued_by(entry.certificate, csca) for csca in own):
                raise TrustListError(f"{where}: not issued by a listed CSCA")
            entries.append(entry)
        return cls(entries, cscas)

    def to_json(self) -> dict[str, Any]:
        """The JSON form :meth:`from_json` reads (what ``GET /passport/trust-list`` publishes)."""
        return {
            "dsc": [
                {
                    "kid": base64.b64encode(entry.kid).decode("ascii"),
                    "country": entry.country,
                    "certificate": base64.b64encode(entry.der).decode("ascii"),
                    "not_before": entry.not_before.isoformat(),
                    "not_after": entry.not_after.isoformat(),
                }
                for entry in self._all
            ],
            "csca": [{"certificate": base64.b64encode(certificate_der(csca)).decode("ascii")}
                     for csca in self.cscas],
        }


def _decode(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise TrustListError(f"{where}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise TrustListError(f"{where}: not base64") from None


def _b64(item: object, where: str) -> bytes:
    if not isinstance(item, dict) or "certificate" not in item:
        raise TrustListError(f"{where}: expected an object with 'certificate'")
    return _decode(item["certificate"], f"{where}.certificate")


def _country_of(certificate: x509.Certificate) -> str | None:
    names = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    return str(names[0].value) if names else None


def issued_by(certificate: x509.Certificate, csca: x509.Certificate) -> bool:
    """Whether ``csca`` issued ``certificate`` (names match and its signature verifies)."""
    try:
        certificate.verify_directly_issued_by(csca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True
