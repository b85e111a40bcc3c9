"""Passport throughput against raw ECDSA P-256 with ``cryptography``, measured in the same run.

- issuance: CWT claims + COSE sign + zlib + Base45 of one payload / raw sign of the same bytes
  (goal >= 0.5); also the whole ``issue()`` (payload, schema, UVCI, revocation hashes) for reference;
- verification: HC1 text -> ``VerificationResult`` with the trust list in memory / raw verify of the
  same signature over the same bytes (goal >= 0.6).

Run: ``python -m bench.passport_bench``. Prints ratios, never bare times.
"""

from __future__ import annotations

import statistics
import time
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import base45
import cwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from passport import (
    LocalSigner,
    TrustList,
    VaccinationRecord,
    build_claims,
    build_payload,
    create_csca,
    create_dsc,
    issue,
    new_uvci,
    verify,
)
from passport import b45 as fast_base45
from passport.cose import decode_sign1, sig_structure
from passport.transport import compress, decode_hc1, encode_hc1

SECONDS_PER_ROUND = 0.4
ROUNDS = 5


def _rate(operation: Callable[[], object], seconds: float = SECONDS_PER_ROUND) -> float:
    """Operations per second of one timed round (bounded by ``seconds``)."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            operation()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _ratio(subject: Callable[[], object], baseline: Callable[[], object]) -> float:
    """Median over interleaved rounds of subject rate / baseline rate (interleaving shares any drift)."""
    _rate(subject, 0.05)
    _rate(baseline, 0.05)
    ratios = []
    for _ in range(ROUNDS):
        ratios.append(_rate(subject) / _rate(baseline))
    return statistics.median(ratios)


def run() -> list[str]:
    """Measure and return the lines to print."""
    now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    csca_key, csca = create_csca("Bộ Y tế", now - timedelta(days=1), now + timedelta(days=3650))
    dsc_key, dsc = create_dsc(csca_key, csca, "Bộ Y tế DSC bench", now - timedelta(days=1),
                              now + timedelta(days=730))
    signer = LocalSigner(dsc_key, dsc)
    record = VaccinationRecord(
        family_name="Đặng", given_name="Thị Ngọc Ánh", date_of_birth="1985-03-14", tg="840539006",
        vp="1119349007", mp="EU/1/20/1528", ma="ORG-100030215", dose_number=2, series_doses=2,
        vaccination_date=date(2021, 9, 15), issuer="Bộ Y tế",
    )
    payload = build_payload(record, new_uvci())
    expires = now + timedelta(days=365)

    def issuance() -> str:
        return encode_hc1(signer.sign(build_claims(payload, now, expires)))

    hc1 = issuance()
    sign1 = decode_sign1(decode_hc1(hc1))
    signed_bytes = sig_structure(sign1.protected_bytes, sign1.payload)
    algorithm = ec.ECDSA(hashes.SHA256())
    der_signature = encode_dss_signature(int.from_bytes(sign1.signature[:32], "big"),
                                         int.from_bytes(sign1.signature[32:], "big"))
    public_key = dsc.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)

    def raw_sign() -> bytes:
        return dsc_key.sign(signed_bytes, algorithm)

    def raw_verify() -> None:
        public_key.verify(der_signature, signed_bytes, algorithm)

    trust_list = TrustList.of([dsc], [csca])
    later = now + timedelta(days=1)
    assert verify(hc1, trust_list, later).valid

    def verification() -> bool:
        return verify(hc1, trust_list, later).valid

    def full_issue() -> object:
        return issue(record, signer, now)

    cwt_key = cwt.COSEKey.from_pem(
        dsc_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
        alg="ES256", kid=signer.kid,
    )
    cose = cwt.COSE.new()
    protected = {1: -7, 4: signer.kid}

    def cwt_sign() -> object:
        return cose.encode_and_sign(sign1.payload, cwt_key, protected=protected)

    cose_bytes = decode_hc1(hc1)
    zipped = compress(cose_bytes)

    def zlib_stored(data: bytes) -> bytes:
        zipper = zlib.compressobj(0, zlib.DEFLATED, 15)  # the same bytes as compress(), through zlib
        return zipper.compress(data) + zipper.flush()

    def deflated(data: bytes) -> bytes:
        return zlib.compress(data, 9)

    def issuance_deflated() -> str:
        return "HC1:" + fast_base45.encode(deflated(signer.sign(build_claims(payload, now, expires))))

    deflate_saving = len(zipped) - len(deflated(cose_bytes))
    issuance_ratio = _ratio(issuance, raw_sign)
    verification_ratio = _ratio(verification, raw_verify)
    return [
        f"passport issuance (claims+sign+zlib+base45) / raw ECDSA P-256 sign: {issuance_ratio:.2f} "
        f"(goal >= 0.5: {'met' if issuance_ratio >= 0.5 else 'NOT met'})",
        f"passport verification (HC1 text -> result) / raw ECDSA P-256 verify: {verification_ratio:.2f} "
        f"(goal >= 0.6: {'met' if verification_ratio >= 0.6 else 'NOT met'})",
        f"full issue() (payload, schema, UVCI, sign, zlib, base45, revocation hashes) / raw sign: "
        f"{_ratio(full_issue, raw_sign):.2f}",
        f"passport COSE sign alone (claims+sign) / raw sign: "
        f"{_ratio(lambda: signer.sign(build_claims(payload, now, expires)), raw_sign):.2f}; "
        f"python-cwt COSE_Sign1 sign of the same claims bytes / raw sign: {_ratio(cwt_sign, raw_sign):.2f}",
        f"zlib as issued (stored block, header {zipped[:2].hex(' ')}) alone / raw sign: "
        f"{_ratio(lambda: compress(cose_bytes), raw_sign):.2f}; the same bytes from "
        f"zlib.compressobj(0, DEFLATED, 15) / raw sign: {_ratio(lambda: zlib_stored(cose_bytes), raw_sign):.2f}",
        f"issuance with deflate level 9 instead of stored blocks / raw sign: "
        f"{_ratio(issuance_deflated, raw_sign):.2f} (for comparison; on this passport level 9 saves "
        f"{deflate_saving} bytes)",
        f"passport Base45 encode / base45 package encode: "
        f"{_ratio(lambda: fast_base45.encode(zipped), lambda: base45.b45encode(zipped)):.1f}",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
