"""Signing keys: the country signing CA (CSCA), the document signer certificates (DSC) it issues, kids.

Every key is ECDSA P-256 (what ES256 needs). Private keys are stored as PKCS#8 PEM encrypted with a
passphrase; certificates as PEM or DER.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import KeyMaterialError, ValidityError

__all__ = [
    "EKU_RECOVERY",
    "EKU_TEST",
    "EKU_VACCINATION",
    "certificate_der",
    "certificate_pem",
    "create_csca",
    "create_dsc",
    "kid",
    "load_certificate",
    "load_private_key",
    "private_key_pem",
    "save_private_key",
]

# Extended key usages of DCC document signers (eHealth Network, DCC technical specification vol. 1).
EKU_TEST = x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.1")
EKU_VACCINATION = x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.2")
EKU_RECOVERY = x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.3")

_EKU_BY_TYPE = {"test": EKU_TEST, "vaccination": EKU_VACCINATION, "recovery": EKU_RECOVERY}


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValidityError("certificate validity needs timezone-aware datetimes")


def _name(common_name: str, country: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        ]
    )


def create_csca(
    name: str, not_before: datetime, not_after: datetime, country: str = "VN"
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Create a self-signed country signing CA.

    :param name: the issuing body; the subject becomes ``CN=<name> DCC CSCA, C=<country>``
    :param not_before: start of validity (timezone-aware)
    :param not_after: end of validity (timezone-aware)
    :param country: ISO 3166-1 alpha-2 country code
    :returns: the new private key and its certificate
    :raises ValidityError: on naive datetimes or an empty validity period
    """
    _require_aware(not_before, not_after)
    if not_after <= not_before:
        raise ValidityError("a CSCA must be valid for some time")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"{name} DCC CSCA", country)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def create_dsc(
    csca_key: ec.EllipticCurvePrivateKey,
    csca: x509.Certificate,
    common_name: str,
    not_before: datetime,
    not_after: datetime,
    certificate_types: tuple[str, ...] = ("vaccination",),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Create a document signer certificate issued by a CSCA.

    :param csca_key: the CSCA's private key
    :param csca: the CSCA certificate (its subject becomes the issuer, its key id the authority key id)
    :param common_name: the DSC's common name, e.g. ``"Bộ Y tế DSC 2026-1"``
    :param not_before: start of validity (timezone-aware)
    :param not_after: end of validity (timezone-aware), at most the CSCA's end
    :param certificate_types: DCC types the DSC may sign (``vaccination``, ``test``, ``recovery``)
    :returns: the new private key and its certificate
    :raises ValidityError: on naive datetimes, an empty period, or a period outside the CSCA's
    :raises KeyMaterialError: when the CSCA key does not belong to the CSCA, or on an unknown type
    """
    _require_aware(not_before, not_after)
    if not_after <= not_before:
        raise ValidityError("a DSC must be valid for some time")
    if not_before < csca.not_valid_before_utc or not_after > csca.not_valid_after_utc:
        raise ValidityError("a DSC cannot be valid outside its CSCA's validity")
    if csca_key.public_key() != csca.public_key():
        raise KeyMaterialError("the CSCA key does not belong to the CSCA certificate")
    try:
        usages = [_EKU_BY_TYPE[kind] for kind in certificate_types]
    except KeyError as error:
        raise KeyMaterialError(f"unknown certificate type {error.args[0]!r}") from None
    if not usages:
        raise KeyMaterialError("a DSC must be allowed to sign at least one certificate type")
    country = csca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    csca_key_id = x509.SubjectKeyIdentifier.from_public_key(csca.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, str(country[0].value) if country else "VN"))
        .issuer_name(csca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(csca_key_id), critical=False
        )
        .sign(csca_key, hashes.SHA256())
    )
    return key, certificate


def kid(certificate: x509.Certificate | bytes) -> bytes:
    """The DCC key identifier: the first 8 bytes of the SHA-256 of the certificate's DER.

    :param certificate: a certificate, or its DER bytes
    :returns: 8 bytes
    """
    der = certificate if isinstance(certificate, bytes) else certificate_der(certificate)
    return hashlib.sha256(der).digest()[:8]


def certificate_der(certificate: x509.Certificate) -> bytes:
    """The DER encoding of a certificate."""
    return certificate.public_bytes(serialization.Encoding.DER)


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """The PEM encoding of a certificate."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def load_certificate(data: bytes) -> x509.Certificate:
    """Read a certificate from PEM or DER bytes.

    :param data: PEM (``-----BEGIN CERTIFICATE-----``) or DER bytes
    :returns: the certificate
    :raises KeyMaterialError: when the bytes are not a certificate
    """
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise KeyMaterialError(f"not a certificate: {error}") from None


def private_key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> bytes:
    """Serialise a private key as PKCS#8 PEM encrypted with a passphrase.

    :param key: the private key
    :param passphrase: the passphrase (not empty)
    :returns: the PEM bytes
    :raises KeyMaterialError: on an empty passphrase (an unencrypted key file is never written)
    """
    if not passphrase:
        raise KeyMaterialError("a private key is only stored encrypted: the passphrase is empty")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def load_private_key(data: bytes, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    """Read an encrypted PEM private key.

    :param data: the PEM bytes
    :param passphrase: the passphrase it was encrypted with
    :returns: the P-256 private key
    :raises KeyMaterialError: on a wrong passphrase, an unencrypted file, or a key that is not P-256
    """
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        # cryptography raises TypeError when the file is not encrypted: refuse such files.
        raise KeyMaterialError("the private key file is not encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyMaterialError("cannot read the private key (wrong passphrase or not a PEM key)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyMaterialError("the private key is not an ECDSA P-256 key")
    return key


def save_private_key(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> None:
    """Write an encrypted PEM private key readable by its owner only.

    :param path: the file to create or replace
    :param key: the private key
    :param passphrase: the passphrase (not empty)
    :raises KeyMaterialError: on an empty passphrase
    """
    pem = private_key_pem(key, passphrase)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    os.replace(temporary, path)
