"""EU DCC vaccine passports for HoSo: keys, payload, signing, HC1/QR transport, verification.

A library: no web framework, no database, no environment; times and keys are arguments.

Typical use::

    signer = LocalSigner(dsc_key, dsc)                  # or RemoteSigner(url, secret)
    passport = issue(record, signer, issued_at=now)     # -> IssuedPassport(uvci, hc1, ...)
    png = qr_png(passport.hc1)
    result = verify(passport.hc1, TrustList.of([dsc]), now)
"""

from .errors import (
    GatewayError,
    KeyMaterialError,
    PassportError,
    PayloadError,
    RevocationListError,
    RulesError,
    SigningError,
    TransportError,
    TrustListError,
    ValidityError,
)
from .keys import (
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
from .payload import VaccinationRecord, build_payload, is_valid_uvci, new_uvci, split_full_name, transliterate
from .remote import RemoteSigner
from .revocation import RevocationHashes, RevocationList, revocation_hashes
from .rules import Rule, RuleOutcome, RuleSet, check_rules, verdict_json
from .signing import MAX_VALIDITY, IssuedPassport, LocalSigner, Signer, build_claims, issue
from .transport import decode_hc1, encode_hc1, qr_png, qr_svg, read_qr
from .trust import TrustedCertificate, TrustList
from .verify import CertificateSummary, Check, Holder, VerificationResult, verify

__all__ = [
    "MAX_VALIDITY",
    "CertificateSummary",
    "Check",
    "Holder",
    "IssuedPassport",
    "GatewayError",
    "KeyMaterialError",
    "LocalSigner",
    "PassportError",
    "PayloadError",
    "RemoteSigner",
    "RevocationHashes",
    "RevocationList",
    "RevocationListError",
    "Rule",
    "RuleOutcome",
    "RuleSet",
    "RulesError",
    "Signer",
    "SigningError",
    "TransportError",
    "TrustList",
    "TrustListError",
    "TrustedCertificate",
    "VaccinationRecord",
    "ValidityError",
    "VerificationResult",
    "build_claims",
    "build_payload",
    "check_rules",
    "certificate_der",
    "certificate_pem",
    "create_csca",
    "create_dsc",
    "decode_hc1",
    "encode_hc1",
    "is_valid_uvci",
    "issue",
    "kid",
    "load_certificate",
    "load_private_key",
    "new_uvci",
    "private_key_pem",
    "qr_png",
    "qr_svg",
    "read_qr",
    "revocation_hashes",
    "save_private_key",
    "split_full_name",
    "transliterate",
    "verdict_json",
    "verify",
]
