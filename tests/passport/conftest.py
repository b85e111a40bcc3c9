"""Fixtures for the passport library: a CSCA and DSC, a signer, a record, and an independent verifier."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import base45
import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import CoseMessage, Sign1Message

from passport import (
    IssuedPassport,
    LocalSigner,
    Signer,
    TrustList,
    VaccinationRecord,
    create_csca,
    create_dsc,
    issue,
    verify,
)

# A fixed instant: the library takes time as an argument, so the tests never depend on the clock.
NOW = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Pki:
    """A CSCA and the DSC it issued, with their keys."""

    csca_key: ec.EllipticCurvePrivateKey
    csca: x509.Certificate
    dsc_key: ec.EllipticCurvePrivateKey
    dsc: x509.Certificate


@pytest.fixture(scope="session")
def pki() -> Pki:
    csca_key, csca = create_csca("Bộ Y tế", NOW - timedelta(days=30), NOW + timedelta(days=3650))
    dsc_key, dsc = create_dsc(csca_key, csca, "Bộ Y tế DSC 2026-1", NOW - timedelta(days=30),
                              NOW + timedelta(days=730))
    return Pki(csca_key, csca, dsc_key, dsc)


@pytest.fixture(scope="session")
def signer(pki: Pki) -> LocalSigner:
    return LocalSigner(pki.dsc_key, pki.dsc)


@pytest.fixture(scope="session")
def trust_list(pki: Pki) -> TrustList:
    return TrustList.of([pki.dsc], [pki.csca])


def make_record(**changes: Any) -> VaccinationRecord:
    """Đặng Thị Ngọc Ánh's second Comirnaty dose, with any field changed."""
    fields: dict[str, Any] = {
        "family_name": "Đặng", "given_name": "Thị Ngọc Ánh", "date_of_birth": "1985-03-14",
        "tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
        "dose_number": 2, "series_doses": 2, "vaccination_date": date(2021, 9, 15), "issuer": "Bộ Y tế",
    }
    fields.update(changes)
    return VaccinationRecord(**fields)


@pytest.fixture
def record() -> VaccinationRecord:
    return make_record()


def cose_of(hc1: str) -> bytes:
    """The COSE message inside HC1 text, decoded with the reference base45 package and stdlib zlib."""
    assert hc1.startswith("HC1:")
    return zlib.decompress(base45.b45decode(hc1[4:]))


def pycose_verifies(hc1: str, certificate: x509.Certificate) -> dict[Any, Any]:
    """Verify with pycose (an independent COSE implementation) and return the CWT claims."""
    message = CoseMessage.decode(cose_of(hc1))
    assert isinstance(message, Sign1Message)
    numbers = certificate.public_key().public_numbers()
    assert isinstance(numbers, ec.EllipticCurvePublicNumbers)
    message.key = EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
    assert message.verify_signature()
    claims = cbor2.loads(message.payload)
    assert isinstance(claims, dict)
    return claims


def issue_checked(record: VaccinationRecord, signer: Signer, issued_at: datetime, **options: Any) -> IssuedPassport:
    """Issue, then check the signature both with pycose and with our verifier (every issued passport is)."""
    passport = issue(record, signer, issued_at, **options)
    pycose_verifies(passport.hc1, signer.certificate)
    check = verify(passport.hc1, TrustList.of([signer.certificate]), issued_at).check("signature")
    assert check is not None and check.status == "ok", check
    return passport
