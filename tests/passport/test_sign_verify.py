"""Issuance and verification, checked against pycose; every refusal of the verifier on hostile messages."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import zlib
from datetime import datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from passport import (
    MAX_VALIDITY,
    LocalSigner,
    PayloadError,
    RevocationList,
    RevocationListError,
    SigningError,
    TrustedCertificate,
    TrustList,
    TrustListError,
    ValidityError,
    build_claims,
    build_payload,
    create_dsc,
    issue,
    kid,
    new_uvci,
    revocation_hashes,
    verify,
)
from passport import b45 as fast_base45
from passport.cose import sig_structure
from passport.keys import certificate_der
from passport.signing import check_claims
from tests.passport.conftest import NOW, cose_of, issue_checked, make_record, pycose_verifies

LATER = NOW + timedelta(days=1)


# ---------------------------------------------------------------------------------------------- issuance

def test_an_issued_passport_verifies_here_and_with_pycose(signer, trust_list, pki, record):
    passport = issue_checked(record, signer, NOW)
    result = verify(passport.hc1, trust_list, LATER)
    assert result.valid, result.reasons
    assert [check.status for check in result.checks if check.name != "revocation"] == ["ok"] * 13
    claims = pycose_verifies(passport.hc1, pki.dsc)
    assert claims == {1: "VN", 6: int(NOW.timestamp()), 4: int((NOW + MAX_VALIDITY).timestamp()),
                      -260: {1: passport.payload}}
    assert result.payload == passport.payload


def test_the_message_is_a_tagged_es256_cose_sign1_with_protected_kid(signer, record):
    passport = issue_checked(record, signer, NOW)
    message = cbor2.loads(cose_of(passport.hc1))
    assert isinstance(message, cbor2.CBORTag) and message.tag == 18
    protected, unprotected, payload, signature = message.value
    assert cbor2.loads(protected) == {1: -7, 4: signer.kid}
    assert unprotected == {}
    assert len(signature) == 64
    assert list(cbor2.loads(payload)) == [1, 6, 4, -260]
    assert passport.kid == signer.kid == kid(signer.certificate)


def test_issued_passport_fields(signer, record):
    passport = issue_checked(record, signer, NOW.replace(microsecond=123456), uvci=new_uvci())
    assert passport.issued_at == NOW
    assert passport.expires_at == NOW + MAX_VALIDITY
    assert passport.payload["v"][0]["ci"] == passport.uvci
    assert passport.hc1.startswith("HC1:")


def test_many_passports_verify_with_pycose(signer, pki):
    for index in range(20):
        passport = issue_checked(make_record(dose_number=1 + index % 3, given_name="Văn " + "Anh" * index), signer, NOW)
        pycose_verifies(passport.hc1, pki.dsc)
        assert verify(passport.hc1, TrustList.of([pki.dsc]), LATER).valid


def test_validity_is_clipped_to_the_dsc(pki, record):
    dsc_key, dsc = create_dsc(pki.csca_key, pki.csca, "short DSC", NOW - timedelta(days=1), NOW + timedelta(days=100))
    passport = issue_checked(record, LocalSigner(dsc_key, dsc), NOW)
    assert passport.expires_at == dsc.not_valid_after_utc
    claims = pycose_verifies(passport.hc1, dsc)
    assert claims[4] == int(dsc.not_valid_after_utc.timestamp())


@pytest.mark.parametrize("valid_for", [timedelta(days=366), timedelta(0), timedelta(days=-1)])
def test_validity_over_a_year_or_empty_is_refused(signer, record, valid_for):
    with pytest.raises(ValidityError):
        issue(record, signer, NOW, valid_for=valid_for)


def test_issue_needs_an_aware_time_inside_the_dsc_validity(signer, record):
    with pytest.raises(ValidityError):
        issue(record, signer, datetime(2026, 6, 1))
    with pytest.raises(ValidityError):
        issue(record, signer, NOW - timedelta(days=31))
    with pytest.raises(ValidityError):
        issue(record, signer, NOW + timedelta(days=731))


def test_a_bad_record_is_refused_before_signing(signer):
    with pytest.raises(PayloadError):
        issue(make_record(dose_number=0), signer, NOW)


class LyingSigner:
    """A signer that signs something other than it was asked (a compromised or buggy remote)."""

    def __init__(self, inner: LocalSigner, change: str) -> None:
        self.inner, self.change = inner, change
        self.kid, self.certificate = inner.kid, inner.certificate

    def sign(self, claims: Any) -> bytes:
        if self.change == "claims":
            claims = {**claims, 4: claims[4] + 1}
        if self.change == "garbage":
            return b"\x00garbage"
        message = self.inner.sign(claims)
        if self.change == "kid":
            self.kid = b"12345678"
        return message


@pytest.mark.parametrize("change", ["claims", "garbage", "kid"])
def test_issue_checks_what_the_signer_returned(signer, record, change):
    with pytest.raises(SigningError):
        issue(record, LyingSigner(signer, change), NOW)


def test_local_signer_needs_the_matching_p256_key(pki):
    with pytest.raises(Exception, match="does not belong"):
        LocalSigner(pki.csca_key, pki.dsc)
    with pytest.raises(Exception, match="P-256"):
        LocalSigner(ec.generate_private_key(ec.SECP384R1()), pki.dsc)


# ------------------------------------------------------------------------------------------- revocation

def test_revocation_hashes_follow_the_dcc_design(signer, record):
    passport = issue_checked(record, signer, NOW)
    signature = cbor2.loads(cose_of(passport.hc1)).value[3]
    sha = hashlib.sha256
    assert passport.revocation.uci == sha(passport.uvci.encode()).digest()[:16]
    assert passport.revocation.countrycode_uci == sha(("VN" + passport.uvci).encode()).digest()[:16]
    assert passport.revocation.signature == sha(signature[:32]).digest()[:16]  # ES256: r only
    rsa_hashes = revocation_hashes("x", "VN", b"s" * 256, algorithm=-37)
    assert rsa_hashes.signature == sha(b"s" * 256).digest()[:16]


@pytest.mark.parametrize("kind", ["UCI", "COUNTRYCODEUCI", "SIGNATURE"])
def test_a_revoked_passport_fails_by_each_hash_type(signer, trust_list, record, kind):
    passport = issue_checked(record, signer, NOW)
    other = issue_checked(record, signer, NOW)
    revoked = RevocationList(hashes={kind: frozenset({passport.revocation.by_type()[kind]})})
    result = verify(passport.hc1, trust_list, LATER, revocations=revoked)
    assert not result.valid
    assert result.check("revocation") == ("revocation", "failed", f"revoked (matched by its {kind} hash)")
    assert verify(other.hc1, trust_list, LATER, revocations=revoked).valid


def test_revocation_by_signature_ignores_the_malleable_half(signer, trust_list, pki, record):
    """(r, n - s) is a second valid signature of the same message: it must stay revoked."""
    passport = issue_checked(record, signer, NOW)
    tag = cbor2.loads(cose_of(passport.hc1))
    protected, unprotected, payload, signature = tag.value
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    flipped = signature[:32] + (order - int.from_bytes(signature[32:], "big")).to_bytes(32, "big")
    twin = "HC1:" + fast_base45.encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected,
                                                                                         payload, flipped]))))
    revoked = RevocationList(hashes={"SIGNATURE": frozenset({passport.revocation.signature})})
    assert verify(twin, trust_list, LATER).valid
    assert verify(twin, trust_list, LATER, revocations=revoked).check("revocation").status == "failed"


def test_revocation_scoped_to_a_kid(signer, trust_list, record):
    passport = issue_checked(record, signer, NOW)
    scoped = RevocationList.of([passport.revocation], kid=signer.kid)
    elsewhere = RevocationList.of([passport.revocation], kid=b"otherkid")
    assert not verify(passport.hc1, trust_list, LATER, revocations=scoped).valid
    assert verify(passport.hc1, trust_list, LATER, revocations=elsewhere).valid


def test_revocation_list_json_round_trip(signer, record):
    first, second = issue_checked(record, signer, NOW), issue_checked(record, signer, NOW)
    listed = RevocationList.of([first.revocation, second.revocation])
    document = listed.to_json()
    assert set(document) == {"UCI", "COUNTRYCODEUCI", "SIGNATURE"}
    assert all(len(base64.b64decode(value)) == 16 for value in document["UCI"])
    assert RevocationList.from_json(document) == listed
    scoped = RevocationList.of([first.revocation], kid=signer.kid)
    assert RevocationList.from_json(scoped.to_json()) == scoped


@pytest.mark.parametrize("document", [
    [], {"UCI": "abc"}, {"UCI": ["AAAA"]}, {"UCI": ["not base64!"]}, {"OTHER": []},
    {"kids": []}, {"kids": {"@@": {}}}, {"kids": {"AAAAAAAAAAA=": {"UCI": [1]}}},
])
def test_malformed_revocation_lists_are_refused(document):
    with pytest.raises(RevocationListError):
        RevocationList.from_json(document)


# ---------------------------------------------------------------------------------- time and key usage

def test_time_checks(signer, trust_list, record):
    passport = issue_checked(record, signer, NOW)
    assert verify(passport.hc1, trust_list, passport.expires_at).valid  # exp is inclusive
    expired = verify(passport.hc1, trust_list, passport.expires_at + timedelta(seconds=1))
    assert expired.check("expiry").status == "failed" and not expired.valid
    early = verify(passport.hc1, trust_list, NOW - timedelta(seconds=1))
    assert early.check("issued_at").status == "failed" and not early.valid
    with pytest.raises(ValidityError):
        verify(passport.hc1, trust_list, datetime(2026, 6, 2))


def test_an_expired_dsc_fails_its_check(pki, record):
    dsc_key, dsc = create_dsc(pki.csca_key, pki.csca, "old DSC", NOW - timedelta(days=20), NOW + timedelta(days=2))
    passport = issue_checked(record, LocalSigner(dsc_key, dsc), NOW)
    result = verify(passport.hc1, TrustList.of([dsc]), NOW + timedelta(days=3))
    assert result.check("dsc_validity").status == "failed"
    assert result.check("signature").status == "ok"
    assert not result.valid


@pytest.mark.parametrize("types, valid", [(("test",), False), (("recovery", "test"), False),
                                          (("vaccination",), True), (("test", "vaccination"), True)])
def test_extended_key_usage_limits_the_certificate_type(pki, record, types, valid):
    dsc_key, dsc = create_dsc(pki.csca_key, pki.csca, "DSC", NOW - timedelta(days=1), NOW + timedelta(days=30),
                              certificate_types=types)
    passport = issue_checked(record, LocalSigner(dsc_key, dsc), NOW)
    result = verify(passport.hc1, TrustList.of([dsc]), LATER)
    assert result.valid is valid
    assert result.check("key_usage").status == ("ok" if valid else "failed")


def _dsc_with_eku(pki, oids: list[str] | None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DSC"),
                                        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]))
               .issuer_name(pki.csca.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30)))
    if oids is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in oids]), False)
    return key, builder.sign(pki.csca_key, hashes.SHA256())


@pytest.mark.parametrize("oids, valid", [
    (["1.3.6.1.4.1.0.1847.2021.1.2"], True),  # the older arc
    (["1.3.6.1.4.1.0.1847.2021.1.1", "1.3.6.1.4.1.0.1847.2021.1.3"], False),
    (None, True),  # no extended key usage at all: any type
    (["2.23.136.1.1.14.2"], True),  # only a non-DCC usage: any type
    (["1.3.6.1.4.1.1847.2021.1.1"], False),
])
def test_both_eku_arcs_and_the_no_eku_rule(pki, record, oids, valid):
    key, dsc = _dsc_with_eku(pki, oids)
    passport = issue_checked(record, LocalSigner(key, dsc), NOW)
    assert verify(passport.hc1, TrustList.of([dsc], [pki.csca]), LATER).valid is valid


# -------------------------------------------------------------------------------------------- trust list

def test_trust_list_json_round_trip(pki, signer, record):
    listed = TrustList.of([pki.dsc], [pki.csca])
    document = listed.to_json()
    assert document["dsc"][0]["kid"] == base64.b64encode(signer.kid).decode()
    assert document["dsc"][0]["country"] == "VN"
    assert base64.b64decode(document["csca"][0]["certificate"]) == certificate_der(pki.csca)
    again = TrustList.from_json(document)
    assert len(again) == 1 and again.candidates(signer.kid)[0].der == certificate_der(pki.dsc)
    assert verify(issue_checked(record, signer, NOW).hc1, again, LATER).valid


def test_trust_list_refuses_a_wrong_kid_and_a_foreign_dsc(pki):
    document = TrustList.of([pki.dsc], [pki.csca]).to_json()
    document["dsc"][0]["kid"] = base64.b64encode(b"12345678").decode()
    with pytest.raises(TrustListError, match="kid"):
        TrustList.from_json(document)
    from passport import create_csca
    other_key, other_csca = create_csca("Other", NOW - timedelta(days=1), NOW + timedelta(days=10))
    with pytest.raises(TrustListError, match="CSCA"):
        TrustList.of([pki.dsc], [other_csca])
    document = TrustList.of([pki.dsc], [pki.csca]).to_json()
    document["csca"] = [{"certificate": base64.b64encode(certificate_der(other_csca)).decode()}]
    with pytest.raises(TrustListError, match="CSCA"):
        TrustList.from_json(document)


@pytest.mark.parametrize("document", [
    [], {"dsc": {}}, {"dsc": [{}]}, {"dsc": [{"certificate": "!!"}]}, {"dsc": [{"certificate": "AAAA"}]},
    {"dsc": [{"certificate": 5}]}, {"csca": [{"certificate": "AAAA"}]},
])
def test_malformed_trust_lists_are_refused(document):
    with pytest.raises(TrustListError):
        TrustList.from_json(document)


def test_every_key_with_the_kid_is_tried(pki, signer, record):
    impostor_key, impostor = create_dsc(pki.csca_key, pki.csca, "impostor", NOW - timedelta(days=1),
                                        NOW + timedelta(days=30))
    fake = dataclasses.replace(TrustedCertificate.from_certificate(impostor), kid=signer.kid)
    real = TrustedCertificate.from_certificate(pki.dsc)
    passport = issue_checked(record, signer, NOW)
    result = verify(passport.hc1, TrustList([fake, real]), LATER)
    assert result.valid
    assert "2 trusted certificate(s)" in result.check("kid").reason
    assert not verify(passport.hc1, TrustList([fake]), LATER).valid


def test_without_a_trust_list_only_the_structure_is_checked(signer, record):
    result = verify(issue_checked(record, signer, NOW).hc1, None, LATER)
    assert not result.valid
    assert result.check("kid").status == "failed"
    assert result.check("signature").status == "skipped"
    assert result.check("schema").status == "ok"
    assert result.holder is not None and result.holder.fn == "Đặng"


def test_quirky_dsc_extensions_are_read_tolerantly():
    """FI's DSCs encode a DEFAULT value that cryptography refuses when extensions are read."""
    import json
    from pathlib import Path

    vector = json.loads((Path(__file__).parents[1] / "data/dcc/vectors/FI/2DCode/raw/1.json").read_text())
    entry = TrustedCertificate.from_certificate(base64.b64decode(vector["TESTCTX"]["CERTIFICATE"]))
    assert "tolerant" in entry.usage_note
    assert entry.allowed_types == frozenset({"test", "vaccination", "recovery"})


def test_tolerant_eku_reader_agrees_with_cryptography(pki):
    from passport._der import extended_key_usage

    key, dsc = _dsc_with_eku(pki, ["1.3.6.1.4.1.1847.2021.1.2", "1.3.6.1.4.1.0.1847.2021.1.3", "2.5.29.37.0"])
    assert extended_key_usage(certificate_der(dsc)) == [
        "1.3.6.1.4.1.1847.2021.1.2", "1.3.6.1.4.1.0.1847.2021.1.3", "2.5.29.37.0"]
    assert extended_key_usage(certificate_der(pki.csca)) is None


# ------------------------------------------------------------------------------------- hostile messages

def _sign(key: Any, algorithm: int, to_sign: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(to_sign, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def forge(key: Any, *, protected: Any = None, unprotected: Any = None, claims: Any = None,
          algorithm: int = -7, key_id: bytes = b"", signature: bytes | None = None, tag: str = "18",
          trailing: bytes = b"", payload: bytes | None = None, protected_bytes: bytes | None = None) -> str:
    """HC1 text of a COSE message built by hand: any header, tag, payload or signature."""
    if claims is None:
        claims = build_claims(build_payload(make_record(), new_uvci()), NOW, NOW + timedelta(days=30))
    body = cbor2.dumps(claims) if payload is None else payload
    if protected_bytes is None:
        protected_bytes = cbor2.dumps(protected if protected is not None else {1: algorithm, 4: key_id})
    if signature is None:
        signature = _sign(key, algorithm, sig_structure(protected_bytes, body))
    items = [protected_bytes, unprotected or {}, body, signature]
    item: Any = {"18": cbor2.CBORTag(18, items), "none": items, "61": cbor2.CBORTag(61, cbor2.CBORTag(18, items)),
                 "61-bare": cbor2.CBORTag(61, items), "17": cbor2.CBORTag(17, items),
                 "98": cbor2.CBORTag(98, items)}[tag]
    return "HC1:" + fast_base45.encode(zlib.compress(cbor2.dumps(item) + trailing))


@pytest.fixture(scope="module")
def p384(pki):
    """A DSC with a P-384 key (what ES 401-403 in the EU vectors sign with while declaring ES256)."""
    key = ec.generate_private_key(ec.SECP384R1())
    return key, _certificate_for(pki, key)


@pytest.fixture(scope="module")
def rsa_dsc(pki):
    key = rsa.generate_private_key(65537, 2048)
    return key, _certificate_for(pki, key)


def _certificate_for(pki, key) -> x509.Certificate:
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DSC"),
                                     x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]))
            .issuer_name(pki.csca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=60))
            .sign(pki.csca_key, hashes.SHA256()))


def _verify(text: str, certificate: x509.Certificate):
    return verify(text, TrustList.of([certificate]), LATER)


def test_the_forge_makes_valid_messages(pki, signer):
    assert _verify(forge(pki.dsc_key, key_id=signer.kid), pki.dsc).valid


def test_ps256_with_an_rsa_dsc_is_accepted(rsa_dsc):
    key, certificate = rsa_dsc
    result = _verify(forge(key, algorithm=-37, key_id=kid(certificate)), certificate)
    assert result.valid, result.reasons
    assert result.check("algorithm").reason == "PS256"


@pytest.mark.parametrize("algorithm", [-8, -35, -36, -257, -38, 0, 1, 5])
def test_other_algorithms_are_refused(pki, signer, algorithm):
    text = forge(pki.dsc_key, protected={1: algorithm, 4: signer.kid}, signature=bytes(64))
    result = _verify(text, pki.dsc)
    assert result.check("algorithm").status == "failed"
    assert result.check("signature").status == "skipped"
    assert not result.valid


@pytest.mark.parametrize("algorithm", ["ES256", True, None, [-7], b"\xf9", 1.5, -7.0])
def test_algorithm_values_of_the_wrong_type_are_refused(pki, signer, algorithm):
    text = forge(pki.dsc_key, protected={1: algorithm, 4: signer.kid}, signature=bytes(64))
    assert _verify(text, pki.dsc).check("algorithm").status == "failed"


def test_a_p384_key_declared_es256_is_refused(p384):
    key, certificate = p384
    text = forge(key, algorithm=-7, key_id=kid(certificate))
    result = _verify(text, certificate)
    assert result.check("signature").status == "failed"
    assert "P-256" in result.check("signature").reason
    assert not result.valid


def test_key_type_must_match_the_algorithm(pki, rsa_dsc):
    key, certificate = rsa_dsc
    es256_from_rsa = forge(key, protected={1: -7, 4: kid(certificate)}, signature=bytes(64))
    assert "EC key" in _verify(es256_from_rsa, certificate).check("signature").reason
    ps256_from_ec = forge(pki.dsc_key, protected={1: -37, 4: kid(pki.dsc)}, signature=bytes(256))
    assert "RSA key" in _verify(ps256_from_ec, pki.dsc).check("signature").reason


@pytest.mark.parametrize("key_id", [b"", b"1234567", b"123456789", "12345678", 12345678])
def test_a_kid_that_is_not_8_bytes_is_refused(pki, key_id):
    result = _verify(forge(pki.dsc_key, protected={1: -7, 4: key_id}), pki.dsc)
    assert result.check("kid").status == "failed"
    assert not result.valid


def test_kid_in_either_header_and_protected_wins(pki, signer):
    assert _verify(forge(pki.dsc_key, protected={1: -7}, unprotected={4: signer.kid}), pki.dsc).valid
    assert _verify(forge(pki.dsc_key, protected={1: -7, 4: signer.kid}, unprotected={4: b"wrongkid"}), pki.dsc).valid
    protected_wrong = forge(pki.dsc_key, protected={1: -7, 4: b"wrongkid"}, unprotected={4: signer.kid})
    result = _verify(protected_wrong, pki.dsc)
    assert result.check("kid").status == "failed" and not result.valid


def test_alg_only_in_the_unprotected_header_is_refused(pki, signer):
    text = forge(pki.dsc_key, protected={4: signer.kid}, unprotected={1: -7})
    result = _verify(text, pki.dsc)
    assert result.check("algorithm") == ("algorithm", "failed",
                                         "'alg' is only in the unprotected header; it must be protected")
    empty_protected = forge(pki.dsc_key, protected_bytes=b"", unprotected={1: -7, 4: signer.kid})
    assert not _verify(empty_protected, pki.dsc).valid


@pytest.mark.parametrize("mangle", [
    lambda s: s + b"\x00",  # one byte too long
    lambda s: s + s,  # twice as long
    lambda s: s[:-1],  # one byte short
    lambda s: b"",
    lambda s: encode_dss_signature(int.from_bytes(s[:32], "big"), int.from_bytes(s[32:], "big")),  # DER
    lambda s: bytes(32) + s[32:],  # r = 0
    lambda s: s[:32] + b"\xff" * 32,  # s >= n
    lambda s: s[:32] + bytes(31) + b"\x01",  # valid range, wrong value
    lambda s: bytes(64),
])
def test_malformed_signatures_fail_without_crashing(pki, signer, mangle):
    claims = build_claims(build_payload(make_record(), new_uvci()), NOW, NOW + timedelta(days=30))
    protected = cbor2.dumps({1: -7, 4: signer.kid})
    good = _sign(pki.dsc_key, -7, sig_structure(protected, cbor2.dumps(claims)))
    result = _verify(forge(pki.dsc_key, claims=claims, protected_bytes=protected, signature=mangle(good)), pki.dsc)
    assert result.check("signature").status == "failed"
    assert not result.valid


@pytest.mark.parametrize("tag, accepted", [("18", True), ("none", True), ("61", True), ("61-bare", False),
                                           ("17", False), ("98", False)])
def test_envelopes(pki, signer, tag, accepted):
    result = _verify(forge(pki.dsc_key, key_id=signer.kid, tag=tag), pki.dsc)
    assert result.valid is accepted
    assert result.check("cose").status == ("ok" if accepted else "failed")


@pytest.mark.parametrize("text", ["HC2:6BF", "NL2:ABC", "hc1:NCF", "", "   ", "HC1", "LT1:6BFOXN"])
def test_unknown_prefixes_are_refused(trust_list, text):
    result = verify(text, trust_list, LATER)
    assert result.check("prefix").status == "failed"
    assert all(check.status == "skipped" for check in result.checks[1:])
    assert not result.valid


@pytest.mark.parametrize("body, failing", [
    ("HC1:" + "a" * 30, "base45"),
    ("HC1:ÄÖÜ", "base45"),
    ("HC1:A", "base45"),
    ("HC1:" + fast_base45.encode(b"not zlib at all"), "zlib"),
    ("HC1:" + fast_base45.encode(zlib.compress(b"x" * 1000)[:-6]), "zlib"),
    ("HC1:" + fast_base45.encode(zlib.compress(bytes(1_000_000), 9)), "zlib"),  # a small bomb
    ("HC1:" + fast_base45.encode(zlib.compress(b"\xff\xfe")), "cose"),
    ("HC1:" + fast_base45.encode(zlib.compress(cbor2.dumps({"a": 1}))), "cose"),
    ("HC1:" + fast_base45.encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b""])))), "cose"),
    ("HC1:" + fast_base45.encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [b"\xa0", [], b"", b""])))), "cose"),
    ("HC1:" + fast_base45.encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [b"\xff", {}, b"", b""])))), "cose"),
    ("HC1:" + fast_base45.encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [b"\x01", {}, b"", b""])))), "cose"),
    ("HC1:" + fast_base45.encode(zlib.compress(cbor2.dumps(cbor2.CBORTag(18, [b"", {}, None, b""])))), "cose"),
    ("HC1:" + "0" * 9000, "prefix"),
])
def test_broken_transport_and_structure(trust_list, body, failing):
    result = verify(body, trust_list, LATER)
    assert result.check(failing).status == "failed", result.checks
    assert not result.valid


def test_trailing_bytes_after_the_message_are_refused(pki, signer):
    result = _verify(forge(pki.dsc_key, key_id=signer.kid, trailing=b"\x00"), pki.dsc)
    assert result.check("cose").status == "failed"


@pytest.mark.parametrize("claims, failing", [
    ([1, 2, 3], "claims"),
    ({1: "VN", 4: 2, 6: 1}, "claims"),
    ({1: "VN", 4: 2, 6: 1, -260: {1: "text"}}, "claims"),
    ({1: "VN", -260: {1: {"ver": "1.3.0"}}}, "issued_at"),
])
def test_bad_claims_are_reported(pki, signer, claims, failing):
    result = _verify(forge(pki.dsc_key, key_id=signer.kid, claims=claims), pki.dsc)
    assert result.check("signature").status == "ok"
    assert result.check(failing).status == "failed"
    assert not result.valid


def test_a_payload_that_is_not_cbor_is_reported(pki, signer):
    result = _verify(forge(pki.dsc_key, key_id=signer.kid, payload=b"\xff\xff"), pki.dsc)
    assert result.check("claims").status == "failed"


@pytest.mark.parametrize("version, status", [("9.9.9", "failed"), (None, "failed"), (130, "failed"),
                                             ("1.3.9", "ok")])
def test_schema_is_reported_by_the_payloads_version(pki, signer, version, status):
    payload = build_payload(make_record(), new_uvci())
    if version is None:
        del payload["ver"]
    else:
        payload["ver"] = version
    claims = build_claims(payload, NOW, NOW + timedelta(days=30))
    result = _verify(forge(pki.dsc_key, key_id=signer.kid, claims=claims), pki.dsc)
    assert result.check("schema").status == status
    assert result.check("signature").status == "ok"


def test_date_times_as_cbor_tags_are_reported(pki, signer):
    payload = build_payload(make_record(), new_uvci())
    claims = build_claims(payload, NOW, NOW + timedelta(days=30))
    claims[6] = cbor2.CBORTag(1, int(NOW.timestamp()))
    claims[4] = float(int((NOW + timedelta(days=30)).timestamp()))  # seen in 15 EU vectors
    result = _verify(forge(pki.dsc_key, key_id=signer.kid, claims=claims), pki.dsc)
    assert result.valid, result.reasons


def test_the_result_describes_holder_and_certificate(signer, trust_list, record):
    passport = issue_checked(record, signer, NOW)
    document = verify(passport.hc1, trust_list, LATER).to_json()
    assert document["holder"] == {"fn": "Đặng", "fnt": "DANG", "gn": "Thị Ngọc Ánh", "gnt": "THI<NGOC<ANH",
                                  "dob": "1985-03-14"}
    certificate = document["certificate"]
    assert certificate["uvci"] == passport.uvci
    assert (certificate["type"], certificate["tg"], certificate["vp"], certificate["mp"], certificate["ma"],
            certificate["dn"], certificate["sd"], certificate["dt"], certificate["co"], certificate["is"]) == (
        "vaccination", "840539006", "1119349007", "EU/1/20/1528", "ORG-100030215", 2, 2, "2021-09-15", "VN",
        "Bộ Y tế")
    assert certificate["iat"] == NOW.isoformat()
    assert certificate["exp"] == passport.expires_at.isoformat()
    assert certificate["kid"] == base64.b64encode(signer.kid).decode()
    assert document["valid"] is True and document["reasons"] == []


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=600))
def test_any_text_gives_a_result(trust_list, text):
    result = verify(text, trust_list, LATER)
    assert not result.valid
    assert {check.name for check in result.checks} >= {"prefix", "signature", "revocation"}


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_any_cose_bytes_give_a_result(trust_list, data):
    result = verify("HC1:" + fast_base45.encode(zlib.compress(data)), trust_list, LATER)
    assert not result.valid


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=4), replacement=st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"))
def test_a_changed_character_never_verifies(signer, trust_list, position, replacement):
    text = issue_checked(make_record(), signer, NOW).hc1
    position = 4 + position % (len(text) - 4)
    changed = text[:position] + replacement + text[position + 1:]
    assert verify(changed, trust_list, LATER).valid is (changed == text)


def test_check_claims_is_what_the_service_enforces(pki, signer, record):
    payload = build_payload(record, new_uvci())
    good = build_claims(payload, NOW, NOW + timedelta(days=30))
    assert check_claims(good, pki.dsc, NOW) == payload
    with pytest.raises(ValidityError):
        check_claims(good, pki.dsc, datetime(2026, 6, 1))
