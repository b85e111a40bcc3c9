"""Verification of an HC1 text or QR image: every step is a named check, and no input raises."""

from __future__ import annotations

import base64
import math
from datetime import UTC, date, datetime
from typing import Any, Literal, NamedTuple

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from . import b45
from .cose import (
    ALGORITHM_NAMES,
    ES256,
    HEADER_ALG,
    HEADER_KID,
    CoseFormatError,
    decode_sign1,
    sig_structure,
)
from .errors import TransportError, ValidityError
from .revocation import RevocationList, revocation_hashes
from .schema import validate_payload
from .transport import MAX_TEXT, PREFIX, decompress, read_qr
from .trust import TrustedCertificate, TrustList

__all__ = ["CertificateSummary", "Check", "Holder", "VerificationResult", "verify"]

Status = Literal["ok", "failed", "skipped"]
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_HCERT = 1, 4, 6, -260
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_TYPES = {"v": "vaccination", "t": "test", "r": "recovery"}
MIN_RSA_BITS = 2048


class Check(NamedTuple):
    """One verification step.

    :ivar name: ``qr``, ``prefix``, ``base45``, ``zlib``, ``cose``, ``algorithm``, ``kid``,
        ``signature``, ``claims``, ``issued_at``, ``expiry``, ``dsc_validity``, ``key_usage``,
        ``schema`` or ``revocation``
    :ivar status: ``ok``, ``failed`` or ``skipped`` (not run: an earlier step failed, or no input for it)
    :ivar reason: what was found, in a sentence
    """

    name: str
    status: Status
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "reason": self.reason}


class Holder(NamedTuple):
    """Whom the certificate names, to compare with an identity document (DCC field names)."""

    fn: str | None
    fnt: str | None
    gn: str | None
    gnt: str | None
    dob: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"fn": self.fn, "fnt": self.fnt, "gn": self.gn, "gnt": self.gnt, "dob": self.dob}


class CertificateSummary(NamedTuple):
    """What a verifier screen shows of a certificate (DCC field names; ``None`` when absent).

    ``type`` is ``vaccination``, ``test`` or ``recovery``; ``issuer`` is the ``is`` field; ``iss`` the
    CWT issuing country; ``iat`` and ``exp`` are UTC; ``vp`` and ``mp`` are only set for vaccinations.
    """

    uvci: str | None
    type: str | None
    tg: str | None
    vp: str | None
    mp: str | None
    ma: str | None
    dn: int | None
    sd: int | None
    dt: str | None
    co: str | None
    issuer: str | None
    iss: str | None
    iat: datetime | None
    exp: datetime | None
    kid: bytes | None

    def to_json(self) -> dict[str, Any]:
        return {
            "uvci": self.uvci, "type": self.type, "tg": self.tg, "vp": self.vp, "mp": self.mp,
            "ma": self.ma, "dn": self.dn, "sd": self.sd, "dt": self.dt, "co": self.co, "is": self.issuer,
            "iss": self.iss,
            "iat": self.iat.isoformat() if self.iat else None,
            "exp": self.exp.isoformat() if self.exp else None,
            "kid": base64.b64encode(self.kid).decode("ascii") if self.kid else None,
        }


class _Decoded(NamedTuple):
    """What the summary needs from a decoded message (kept raw: the summary is built on first use)."""

    payload: dict[Any, Any]
    kind: str | None
    iss: object
    issued: datetime | None
    expires: datetime | None
    kid: bytes | None


class VerificationResult:
    """The outcome of :func:`verify`.

    :ivar valid: every check passed (or was not applicable) and a trusted key verified the signature
    :ivar checks: each step in order
    :ivar payload: the decoded DCC payload (``-260 -> 1``), when it could be decoded
    :ivar hc1: the HC1 text (read from the QR code for an image)
    """

    __slots__ = ("_decoded", "_holder", "_summary", "checks", "hc1", "valid")

    def __init__(self, valid: bool, checks: tuple[Check, ...], decoded: _Decoded | None, hc1: str | None) -> None:
        self.valid = valid
        self.checks = checks
        self.hc1 = hc1
        self._decoded = decoded
        self._holder: Holder | None = None
        self._summary: CertificateSummary | None = None

    @property
    def payload(self) -> dict[Any, Any] | None:
        return self._decoded.payload if self._decoded else None

    def payload_json(self) -> dict[str, Any] | None:
        """The payload as JSON data (CBOR date-times become RFC 3339 text), when it could be decoded."""
        return _jsonable(self._decoded.payload) if self._decoded else None

    @property
    def holder(self) -> Holder | None:
        """The named person, when the payload could be decoded (also for an invalid certificate)."""
        if self._holder is None and self._decoded is not None:
            payload = self._decoded.payload
            nam = payload.get("nam")
            name: dict[Any, Any] = nam if isinstance(nam, dict) else {}
            self._holder = Holder(_text(name.get("fn")), _text(name.get("fnt")), _text(name.get("gn")),
                                  _text(name.get("gnt")), _text(payload.get("dob")))
        return self._holder

    @property
    def certificate(self) -> CertificateSummary | None:
        """The certificate summary, when the payload could be decoded (also for an invalid certificate)."""
        if self._summary is None and self._decoded is not None:
            decoded = self._decoded
            kind = decoded.kind
            entries = decoded.payload.get(kind[0]) if kind else None
            entry: dict[Any, Any] = entries[0] if isinstance(entries, list) and entries \
                and isinstance(entries[0], dict) else {}
            vaccination = kind == "vaccination"
            self._summary = CertificateSummary(
                uvci=_text(entry.get("ci")), type=kind, tg=_text(entry.get("tg")),
                vp=_text(entry.get("vp")) if vaccination else None,
                mp=_text(entry.get("mp")) if vaccination else None,
                ma=_text(entry.get("ma")), dn=_integer(entry.get("dn")), sd=_integer(entry.get("sd")),
                dt=_text(entry.get("dt")), co=_text(entry.get("co")), issuer=_text(entry.get("is")),
                iss=_text(decoded.iss), iat=decoded.issued, exp=decoded.expires, kid=decoded.kid,
            )
        return self._summary

    @property
    def reasons(self) -> list[str]:
        """One line per failed check: ``"<name>: <reason>"``."""
        return [f"{check.name}: {check.reason}" for check in self.checks if check.status == "failed"]

    def check(self, name: str) -> Check | None:
        """The check of that name, if it was recorded."""
        return next((check for check in self.checks if check.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """``{"valid", "reasons", "checks", "holder", "certificate"}`` as the CLI and the API print it."""
        holder, certificate = self.holder, self.certificate
        return {
            "valid": self.valid,
            "reasons": self.reasons,
            "checks": [check.to_json() for check in self.checks],
            "holder": holder.to_json() if holder else None,
            "certificate": certificate.to_json() if certificate else None,
        }


_new_check = tuple.__new__


class _Report:
    """The checks recorded so far (built for speed: a verification records about 14)."""

    __slots__ = ("checks", "failed", "signature_ok")

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.failed = False
        self.signature_ok = False

    def ok(self, name: str, reason: str) -> None:
        self.checks.append(_new_check(Check, (name, "ok", reason)))

    def fail(self, name: str, reason: str) -> None:
        self.failed = True
        self.checks.append(_new_check(Check, (name, "failed", reason)))

    def skip(self, name: str, reason: str) -> None:
        self.checks.append(_new_check(Check, (name, "skipped", reason)))


def _instant(value: object) -> datetime | None:
    """A CWT time claim (integer, float seen in the wild, or a CBOR tag 1 date) as a UTC datetime."""
    if isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)) and math.isfinite(value) and abs(value) < 2**40:
        return datetime.fromtimestamp(int(value), UTC)
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _jsonable(value: Any) -> Any:
    """The payload with CBOR date-times turned into RFC 3339 text (the JSON the DCC payload mirrors)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _signature_problem(entry: TrustedCertificate, algorithm: int, signed: bytes, signature: bytes) -> str | None:
    """Why this certificate's key does not verify the signature (``None``: it does)."""
    key = entry.public_key
    try:
        if algorithm == ES256:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return "ES256 needs an EC key; the certificate's key is not one"
            if not isinstance(key.curve, ec.SECP256R1):
                return f"ES256 needs a P-256 key; the certificate's key is on {key.curve.name}"
            if len(signature) != 64:
                return f"an ES256 signature is 64 bytes, this one is {len(signature)}"
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
                return "the ES256 signature values are out of range"
            key.verify(encode_dss_signature(r, s), signed, _ECDSA_SHA256)
            return None
        if not isinstance(key, rsa.RSAPublicKey):
            return "PS256 needs an RSA key; the certificate's key is not one"
        if key.key_size < MIN_RSA_BITS:
            return f"the RSA key has {key.key_size} bits, fewer than {MIN_RSA_BITS}"
        if len(signature) != (key.key_size + 7) // 8:
            return f"a PS256 signature for this key is {(key.key_size + 7) // 8} bytes, not {len(signature)}"
        key.verify(signature, signed, _PSS, hashes.SHA256())
        return None
    except InvalidSignature:
        return "the signature does not verify with the certificate's key"


def _as_text(data: str | bytes, report: _Report) -> str | None:
    if isinstance(data, str):
        return data
    try:
        text = read_qr(data)
    except TransportError as error:
        report.fail("qr", str(error))
        return None
    report.ok("qr", "QR code read from the image")
    return text


_LATER = ("prefix", "base45", "zlib", "cose", "algorithm", "kid", "signature", "claims", "issued_at",
          "expiry", "dsc_validity", "key_usage", "schema", "revocation")


def verify(
    data: str | bytes,
    trust_list: TrustList | None,
    now: datetime,
    revocations: RevocationList | None = None,
) -> VerificationResult:
    """Verify a vaccine passport (or any EU DCC).

    Accepts ES256 and PS256 from the protected header only, the kid from either header (protected
    wins), COSE_Sign1 tagged 18, untagged, or inside CWT tag 61. Every trusted certificate with the
    kid is tried. ``iat <= now <= exp``; the DSC must be valid at ``now`` and allowed (by extended key
    usage) to sign the certificate's type.

    :param data: HC1 text (``str``), or a PNG image of the QR code (``bytes``)
    :param trust_list: the trusted DSCs; ``None`` checks only the structure (never valid)
    :param now: the verification time (timezone-aware)
    :param revocations: revoked certificates; ``None`` skips the revocation check
    :returns: the result; malformed or hostile input gives an invalid result, never an exception
    :raises ValidityError: when ``now`` is naive (a programming error, not bad input)
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValidityError("verify() needs a timezone-aware 'now'")
    report = _Report()
    state: dict[str, Any] = {}
    try:
        _run(data, trust_list, now, revocations, report, state)
    except Exception as error:  # a bug must not turn a hostile QR code into a crash of the caller
        recorded = {check.name for check in report.checks}
        report.fail("internal", f"unexpected {type(error).__name__} while verifying")
        for name in _LATER:
            if name not in recorded:
                report.skip(name, "not run after an internal error")
    return VerificationResult(report.signature_ok and not report.failed, tuple(report.checks),
                              state.get("decoded"), state.get("text"))


def _skip_rest(report: _Report, names: tuple[str, ...], reason: str) -> None:
    for name in names:
        report.skip(name, reason)


def _run(data: str | bytes, trust_list: TrustList | None, now: datetime, revocations: RevocationList | None,
         report: _Report, state: dict[str, Any]) -> None:
    text = _as_text(data if isinstance(data, str) else bytes(data), report)
    if text is None:
        return _skip_rest(report, _LATER, "needs the text of the QR code")
    text = text.strip()
    state["text"] = text

    # Transport: prefix, Base45, zlib.
    if len(text) > MAX_TEXT:
        report.fail("prefix", f"the text is longer than {MAX_TEXT} characters")
        return _skip_rest(report, _LATER[1:], "needs a valid prefix")
    if not text.startswith(PREFIX):
        report.fail("prefix", f"unknown prefix {text[:4]!r} (expected 'HC1:')")
        return _skip_rest(report, _LATER[1:], "needs a valid prefix")
    report.ok("prefix", "HC1:")
    try:
        compressed = b45.decode(text[len(PREFIX):])
    except TransportError as error:
        report.fail("base45", str(error))
        return _skip_rest(report, _LATER[2:], "needs valid Base45")
    report.ok("base45", f"{len(compressed)} bytes")
    try:
        message = decompress(compressed)
    except TransportError as error:
        report.fail("zlib", str(error))
        return _skip_rest(report, _LATER[3:], "needs a valid zlib stream")
    report.ok("zlib", f"{len(message)} bytes")

    # COSE structure and headers.
    try:
        sign1 = decode_sign1(message)
    except CoseFormatError as error:
        report.fail("cose", str(error))
        return _skip_rest(report, _LATER[4:], "needs a COSE_Sign1 message")
    report.ok("cose", f"COSE_Sign1, {sign1.envelope}")

    algorithm = sign1.protected.get(HEADER_ALG)
    algorithm_ok = False
    if algorithm is None:
        where = "only in the unprotected header" if HEADER_ALG in sign1.unprotected else "missing"
        report.fail("algorithm", f"'alg' is {where}; it must be protected")
    elif not isinstance(algorithm, int) or isinstance(algorithm, bool) or algorithm not in ALGORITHM_NAMES:
        report.fail("algorithm", f"algorithm {str(algorithm)[:20]} is not accepted (ES256, PS256)")
    else:
        algorithm_ok = True
        report.ok("algorithm", ALGORITHM_NAMES[algorithm])

    key_id = sign1.protected.get(HEADER_KID, sign1.unprotected.get(HEADER_KID))
    candidates: tuple[TrustedCertificate, ...] = ()
    kid_ok = False
    if not isinstance(key_id, bytes):
        report.fail("kid", "no kid byte string in either header")
        key_id = None
    elif len(key_id) != 8:
        report.fail("kid", f"the kid is {len(key_id)} bytes, not 8")
    elif trust_list is None:
        report.fail("kid", "no trust list given: there is no key to check the signature with")
    else:
        candidates = trust_list.candidates(key_id)
        if candidates:
            kid_ok = True
            where = "protected" if HEADER_KID in sign1.protected else "unprotected"
            report.ok("kid", f"{candidates[0].kid_text} ({where} header), {len(candidates)} trusted certificate(s)")
        else:
            report.fail("kid", f"kid {base64.b64encode(key_id).decode()} is not in the trust list")

    signer: TrustedCertificate | None = None
    if algorithm_ok and kid_ok and isinstance(algorithm, int):
        signed = sig_structure(sign1.protected_bytes, sign1.payload)
        problems = []
        for candidate in candidates:
            problem = _signature_problem(candidate, algorithm, signed, sign1.signature)
            if problem is None:
                signer = candidate
                break
            problems.append(problem)
        if signer is not None:
            report.signature_ok = True
            report.ok("signature", f"verified with the DSC of {signer.country or 'unknown country'}")
        else:
            report.fail("signature", "; ".join(dict.fromkeys(problems)))
    else:
        report.skip("signature", "needs an accepted algorithm and a trusted kid")
    certificate = signer or (candidates[0] if candidates else None)

    # Claims: decoded even when the signature failed, so that the report can say what was presented.
    claims: dict[Any, Any] | None = None
    payload: dict[Any, Any] | None = None
    try:
        decoded = cbor2.loads(sign1.payload)  # the signed bytes: anything after the map is signed too
    except Exception as error:  # hostile CBOR raises many exception types
        report.fail("claims", f"the payload is not CBOR ({type(error).__name__})")
        decoded = None
    if decoded is not None:
        hcert = decoded.get(CLAIM_HCERT) if isinstance(decoded, dict) else None
        inner = hcert.get(1) if isinstance(hcert, dict) else None
        if not isinstance(decoded, dict):
            report.fail("claims", "the CWT claims are not a map")
        elif not isinstance(inner, dict):
            report.fail("claims", "no DCC payload under claim -260 / 1")
        else:
            claims, payload = decoded, inner
            report.ok("claims", f"CWT claims with a DCC payload (ver {str(payload.get('ver'))[:12]})")
    if claims is None or payload is None:
        return _skip_rest(report, _LATER[8:], "needs decoded claims")

    issued = _instant(claims.get(CLAIM_IAT))
    expires = _instant(claims.get(CLAIM_EXP))
    if issued is None:
        report.fail("issued_at", "no usable 'iat' claim")
    elif issued > now:
        report.fail("issued_at", f"issued in the future ({issued.isoformat()})")
    else:
        report.ok("issued_at", issued.isoformat())
    if expires is None:
        report.fail("expiry", "no usable 'exp' claim")
    elif now > expires:
        # Inclusive, as the EU test vectors expect (their clocks often sit exactly on exp).
        report.fail("expiry", f"expired at {expires.isoformat()}")
    else:
        report.ok("expiry", f"valid until {expires.isoformat()}")

    if certificate is None:
        report.skip("dsc_validity", "no trusted certificate for this kid")
    elif not certificate.not_before <= now <= certificate.not_after:
        report.fail("dsc_validity", f"outside the DSC's validity ({certificate.validity_text})")
    else:
        report.ok("dsc_validity", certificate.validity_text)

    kinds = [_TYPES[key] for key in ("v", "t", "r") if key in payload]
    kind = kinds[0] if len(kinds) == 1 else None
    if certificate is None:
        report.skip("key_usage", "no trusted certificate for this kid")
    elif kind is None:
        report.fail("key_usage", "the payload does not hold exactly one of v, t, r")
    elif certificate.allowed_types is not None and kind not in certificate.allowed_types:
        report.fail("key_usage", f"the DSC may not sign {kind} certificates ({certificate.usage_note})")
    else:
        report.ok("key_usage", f"{kind}: {certificate.usage_note}")

    # Formats are not asserted here: foreign issuers put date-times in date fields and verifier apps accept
    # them (JSON Schema 2020-12 makes "format" an annotation). Our own issuance asserts them.
    schema = validate_payload(payload, formats=False)
    if not schema.ok and "not JSON data" in schema.message:
        converted = validate_payload(_jsonable(payload), formats=False)
        schema = type(schema)(converted.ok, converted.version,
                              converted.message + " (after turning CBOR date-times into text)")
    (report.ok if schema.ok else report.fail)("schema", schema.message)

    issuer_country = claims.get(CLAIM_ISS)
    state["decoded"] = _Decoded(payload, kind, issuer_country, issued, expires, key_id)

    if revocations is None:
        report.skip("revocation", "no revocation list given")
        return None
    entries = payload.get(kind[0]) if kind else None
    uvci = entries[0].get("ci") if isinstance(entries, list) and entries and isinstance(entries[0], dict) \
        else None
    if not isinstance(uvci, str):
        report.fail("revocation", "the certificate has no UVCI to look up")
    else:
        hashes_ = revocation_hashes(uvci, _text(issuer_country) or "", sign1.signature,
                                    algorithm if isinstance(algorithm, int) else ES256)
        matched = revocations.match(hashes_, key_id)
        if matched:
            report.fail("revocation", f"revoked (matched by its {matched} hash)")
        else:
            report.ok("revocation", "not on the revocation list")
    return None
