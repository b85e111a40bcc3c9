"""CSCA and DSC creation, kids, and key and certificate files."""

from __future__ import annotations

import hashlib
import stat
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from passport import (
    KeyMaterialError,
    ValidityError,
    certificate_der,
    certificate_pem,
    create_csca,
    create_dsc,
    kid,
    load_certificate,
    load_private_key,
    private_key_pem,
    save_private_key,
)
from passport.keys import EKU_TEST, EKU_VACCINATION
from tests.passport.conftest import NOW


def _name(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    return str(certificate.subject.get_attributes_for_oid(oid)[0].value)


def test_csca_is_a_self_signed_p256_ca(pki):
    csca = pki.csca
    assert _name(csca, NameOID.COMMON_NAME) == "Bộ Y tế DCC CSCA"
    assert _name(csca, NameOID.COUNTRY_NAME) == "VN"
    assert csca.issuer == csca.subject
    csca.verify_directly_issued_by(csca)
    assert isinstance(csca.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(csca.public_key().curve, ec.SECP256R1)
    constraints = csca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = csca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature


def test_dsc_is_issued_by_the_csca_for_vaccinations(pki):
    dsc, csca = pki.dsc, pki.csca
    dsc.verify_directly_issued_by(csca)
    assert isinstance(dsc.public_key().curve, ec.SECP256R1)
    assert not dsc.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = dsc.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    eku = dsc.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.2")]
    authority = dsc.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    csca_key_id = csca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert authority.key_identifier == csca_key_id.digest
    assert dsc.not_valid_before_utc == NOW - timedelta(days=30)
    assert dsc.not_valid_after_utc == NOW + timedelta(days=730)


def test_dsc_types_and_validity_are_arguments(pki):
    _key, dsc = create_dsc(pki.csca_key, pki.csca, "test DSC", NOW, NOW + timedelta(days=10),
                           certificate_types=("test", "vaccination"))
    eku = dsc.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {EKU_TEST, EKU_VACCINATION}
    assert ExtendedKeyUsageOID.SERVER_AUTH not in eku


@pytest.mark.parametrize(
    "start, end",
    [
        (NOW - timedelta(days=60), NOW + timedelta(days=10)),  # starts before the CSCA
        (NOW, NOW + timedelta(days=4000)),  # ends after the CSCA
        (NOW, NOW),  # empty
    ],
)
def test_dsc_validity_must_lie_within_the_csca(pki, start, end):
    with pytest.raises(ValidityError):
        create_dsc(pki.csca_key, pki.csca, "DSC", start, end)


def test_naive_datetimes_are_refused(pki):
    naive = datetime(2026, 6, 1)
    with pytest.raises(ValidityError):
        create_csca("X", naive, naive + timedelta(days=1))
    with pytest.raises(ValidityError):
        create_dsc(pki.csca_key, pki.csca, "DSC", naive, naive + timedelta(days=1))


def test_dsc_needs_the_csca_key_and_known_types(pki):
    with pytest.raises(KeyMaterialError):
        create_dsc(pki.dsc_key, pki.csca, "DSC", NOW, NOW + timedelta(days=1))
    with pytest.raises(KeyMaterialError):
        create_dsc(pki.csca_key, pki.csca, "DSC", NOW, NOW + timedelta(days=1), certificate_types=("vaccine",))
    with pytest.raises(KeyMaterialError):
        create_dsc(pki.csca_key, pki.csca, "DSC", NOW, NOW + timedelta(days=1), certificate_types=())


def test_kid_is_the_sha256_prefix_of_the_der(pki):
    der = certificate_der(pki.dsc)
    assert kid(pki.dsc) == hashlib.sha256(der).digest()[:8]
    assert kid(der) == kid(pki.dsc)
    assert len(kid(pki.dsc)) == 8


def test_certificates_round_trip_as_pem_and_der(pki):
    assert load_certificate(certificate_pem(pki.dsc)) == pki.dsc
    assert load_certificate(certificate_der(pki.dsc)) == pki.dsc
    assert certificate_pem(pki.dsc).startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(KeyMaterialError):
        load_certificate(b"not a certificate")


def test_private_keys_are_stored_encrypted(pki):
    pem = private_key_pem(pki.dsc_key, b"correct horse battery staple")
    assert b"ENCRYPTED PRIVATE KEY" in pem
    loaded = load_private_key(pem, b"correct horse battery staple")
    assert loaded.private_numbers() == pki.dsc_key.private_numbers()
    with pytest.raises(KeyMaterialError):
        load_private_key(pem, b"wrong passphrase")
    with pytest.raises(KeyMaterialError):
        private_key_pem(pki.dsc_key, b"")


def test_unencrypted_and_foreign_keys_are_refused(pki):
    plain = pki.dsc_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    with pytest.raises(KeyMaterialError, match="not encrypted"):
        load_private_key(plain, b"anything")
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(KeyMaterialError, match="P-256"):
        load_private_key(private_key_pem(p384, b"pass"), b"pass")  # type: ignore[arg-type]
    rsa_key = rsa.generate_private_key(65537, 2048)
    encrypted = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(b"pass"))
    with pytest.raises(KeyMaterialError):
        load_private_key(encrypted, b"pass")
    with pytest.raises(KeyMaterialError):
        load_private_key(b"garbage", b"pass")


def test_saved_key_files_are_private(tmp_path, pki):
    path = tmp_path / "dsc.key.pem"
    save_private_key(path, pki.dsc_key, b"passphrase")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_private_key(path.read_bytes(), b"passphrase").private_numbers() == pki.dsc_key.private_numbers()
    assert not list(tmp_path.glob("*.tmp"))
