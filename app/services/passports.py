"""Vaccine passports: issue (EU DCC) for the latest facility-recorded dose, list, revoke, verify."""

from __future__ import annotations

import base64
import time
from collections.abc import MutableMapping
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from mongoengine import NotUniqueError

import passport
from app.clock import VIETNAM
from app.infra.signer import SignerHolder
from app.models.citizen import Citizen
from app.models.passports import Certificate, SigningKey
from app.models.records import VOIDED, Immunization
from app.models.registries import CertificateKey, CertificateRevocation
from app.security.attempts import AttemptLimiter
from app.services import audit, dcc_gateway, outbox, valuesets
from app.services.audit import RequestContext
from app.services.errors import Conflict, NotFound, Unavailable
from app.settings import Settings

RENEW_BEFORE = timedelta(days=30)  # a current passport this close to expiry is re-issued on request
VERIFY_CACHE_SECONDS = 10.0
# What this app remembers for verification (``Runtime.verify_cache``): the trust and revocation
# lists ("lists", here) and the rules ("rules", app.services.passport_rules); a change to any empties it.
VerifyCache = MutableMapping[str, Any]


class NoEligibleVaccination(Conflict):
    """No facility-recorded, non-withdrawn vaccination to certify."""

    slug = "no-eligible-vaccination"


class VaccinationNotCertifiable(Conflict):
    """The latest facility-recorded vaccination cannot make a valid EU DCC; the facility must correct it."""

    slug = "vaccination-not-certifiable"


def _not_certifiable(dose: Immunization, reasons: str) -> VaccinationNotCertifiable:
    return VaccinationNotCertifiable(
        f"The vaccination recorded by facility {dose.facility_code} on "
        f"{dose.administered_at.astimezone(VIETNAM).date().isoformat()} "
        f"cannot be certified ({reasons}). Ask the facility to correct the record.")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def latest_eligible(citizen_id: ObjectId) -> Immunization | None:
    """The latest dose a facility recorded and did not withdraw."""
    return Immunization.objects(citizen_id=citizen_id, primary_source=True, status__ne=VOIDED) \
        .order_by("-administered_at", "-id").first()


def issue_for_citizen(ctx: RequestContext, citizen: Citizen, *, quota: AttemptLimiter, signer: SignerHolder,
                      settings: Settings) -> tuple[Certificate, bool]:
    """The citizen's current passport for the latest eligible dose: the existing one when nothing
    changed, else a new one (the previous stays valid but is no longer current).

    ``quota`` counts issues per citizen; ``signer`` signs; ``settings`` gives the issuer and validity.
    """
    quota.hit(str(citizen.id))
    dose = latest_eligible(citizen.id)
    if dose is None:
        raise NoEligibleVaccination("No vaccination recorded by a facility can be certified.")
    current = Certificate.objects(citizen_id=citizen.id, current=True, status="valid").first()
    if (current and current.immunization_id == dose.id and current.immunization_version == dose.version
            and current.expires_at > ctx.now + RENEW_BEFORE):
        return current, False
    vaccine = {field: getattr(dose.vaccine, field, None) for field in valuesets.VACCINE_FIELDS}
    problems = valuesets.vaccination_problems(vaccine, dose.dose_number, dose.series_doses)
    if problems:
        raise _not_certifiable(dose, "; ".join(f"{field}: {reason}" for field, reason in problems.items()))
    dsc = signer.get(ctx.now)
    record = passport.VaccinationRecord(
        family_name=citizen.family_name or citizen.full_name, given_name=citizen.given_name or "",
        date_of_birth=citizen.date_of_birth, tg=dose.vaccine.tg, vp=dose.vaccine.vp, mp=dose.vaccine.mp,
        ma=dose.vaccine.ma, dose_number=dose.dose_number, series_doses=dose.series_doses,
        vaccination_date=dose.administered_at.astimezone(VIETNAM).date(), issuer=settings.passport_issuer,
        country=dose.country or "VN")
    try:
        issued = passport.issue(record, dsc, ctx.now, timedelta(days=settings.passport_valid_days))
    except passport.SigningError as error:
        raise Unavailable(f"The passport could not be signed: {error}") from None
    except passport.PayloadError as error:  # e.g. a name with no letter that ICAO 9303 can write
        raise _not_certifiable(dose, str(error)) from None
    hashes = issued.revocation
    certificate_id = ObjectId()
    try:  # the UVCI's registry entry first: its unique _id keeps UVCIs unique across shards
        CertificateKey(id=issued.uvci, citizen_id=citizen.id, certificate_id=certificate_id,
                       created_at=ctx.now).save(force_insert=True)
    except NotUniqueError:  # pragma: no cover - 120 random bits; never reuse a UVCI all the same
        raise Conflict("Try again.") from None
    certificate = Certificate(
        id=certificate_id, uvci=issued.uvci, citizen_id=citizen.id, immunization_id=dose.id,
        immunization_version=dose.version,
        kid=_b64(issued.kid), hc1=issued.hc1, issued_at=issued.issued_at, expires_at=issued.expires_at,
        hash_uci=_b64(hashes.uci), hash_countrycode_uci=_b64(hashes.countrycode_uci),
        hash_signature=_b64(hashes.signature))
    certificate.save(force_insert=True)
    _trust_key_until(certificate.kid, issued.expires_at)
    Certificate.objects(citizen_id=citizen.id, current=True, uvci__ne=issued.uvci).update(
        set__current=False, set__superseded_by=issued.uvci)
    audit.record(ctx, "passport.issue", citizen_id=citizen.id, target_type="passport", target_id=issued.uvci,
                 access="write", details={"kid": certificate.kid, "immunization_id": str(dose.id)})
    outbox.notify(ctx, citizen, "passport_issued", issued.uvci)
    return certificate, True


def _trust_key_until(kid: str, expires_at: datetime) -> None:
    """Remember on the signing key that a passport it signed lives until ``expires_at``
    (``SigningKey.passports_expire_by``, read by ``signing_keys.trust_list``): rounded up to the next
    day, so the key's one document is written about once a day, not on every issuance."""
    until = (expires_at + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    SigningKey._get_collection().update_one(
        {"kid": kid, "passports_expire_by": {"$not": {"$gte": expires_at}}},
        {"$max": {"passports_expire_by": until}})


def list_for_citizen(citizen_id: ObjectId) -> list[Certificate]:
    """The citizen's passports, newest first."""
    return list(Certificate.objects(citizen_id=citizen_id).order_by("-issued_at").limit(100))


def get_for_citizen(ctx: RequestContext, citizen_id: ObjectId, uvci: str) -> Certificate:
    """One of the citizen's own passports (404 for anyone else's)."""
    certificate = Certificate.objects(citizen_id=citizen_id, uvci=uvci).first()
    if certificate is None:
        raise NotFound("No such passport.")
    audit.record(ctx, "passport.read", citizen_id=citizen_id, target_type="passport", target_id=uvci,
                 access="read")
    return certificate


def certificate_by_uvci(uvci: str) -> Certificate | None:
    """The passport with this UVCI: the ``certificate_keys`` registry by ``_id``, then the certificate
    by its id and citizen (one shard each; certificates are sharded by citizen)."""
    key = CertificateKey._get_collection().find_one({"_id": uvci})
    if key is None:
        return None
    pinned = Certificate.objects(id=key["certificate_id"], citizen_id=key["citizen_id"])
    certificate: Certificate | None = pinned.first()
    return certificate


def revoke(ctx: RequestContext, uvci: str, reason: str, *, verify_cache: VerifyCache) -> Certificate:
    """Revoke a passport: its hashes join the revocation list at once (``verify_cache`` is emptied).

    The revocation list's entry is written before the certificate's status changes, so a
    certificate marked revoked is always on the list (a revocation interrupted between the two
    is completed by the next attempt).
    """
    certificate = certificate_by_uvci(uvci)
    if certificate is None:
        raise NotFound("No such passport.")
    if certificate.status == "valid":
        CertificateRevocation._get_collection().update_one({"_id": uvci}, {
            "$setOnInsert": {"revoked_at": ctx.now},
            "$set": {"citizen_id": certificate.citizen_id, "kid": certificate.kid,
                     "expires_at": certificate.expires_at, "hash_uci": certificate.hash_uci,
                     "hash_countrycode_uci": certificate.hash_countrycode_uci,
                     "hash_signature": certificate.hash_signature}}, upsert=True)
    if not Certificate.objects(id=certificate.id, citizen_id=certificate.citizen_id, status="valid").update_one(
            set__status="revoked", set__revoked_at=ctx.now, set__revocation_reason=reason):
        raise Conflict("The passport is already revoked.")
    verify_cache.clear()
    audit.record(ctx, "passport.revoke", citizen_id=certificate.citizen_id, target_type="passport",
                 target_id=uvci, reason=reason, access="write")
    citizen = Citizen.objects(id=certificate.citizen_id).first()
    if citizen is not None:
        outbox.notify(ctx, citizen, "passport_revoked", uvci)
    certificate.reload()
    return certificate


def revocation_list(now: datetime) -> passport.RevocationList:
    """Revoked passports that have not expired, by hash type (for any kid): the one small
    ``certificate_revocations`` collection, not a query of every shard's certificates."""
    revoked = CertificateRevocation.objects(expires_at__gt=now).only(
        "hash_uci", "hash_countrycode_uci", "hash_signature")
    return passport.RevocationList.of(
        passport.RevocationHashes(base64.b64decode(c.hash_uci), base64.b64decode(c.hash_countrycode_uci),
                                  base64.b64decode(c.hash_signature)) for c in revoked)


def verify_text(text: str, now: datetime, at: datetime | None = None, *,
                verify_cache: VerifyCache) -> passport.VerificationResult:
    """Verify an HC1 text against HoSo's trust list (Viet Nam's DSCs and those imported from the EU DCC
    Gateway) and revocations as they are ``now``, at ``at`` (the verification clock; default ``now``).

    Both lists are cached per process for ten seconds (a revocation clears this process's copy at
    once; other workers see it within ten seconds).
    """
    cached = verify_cache.get("lists")
    if cached is None or cached[0] < time.monotonic():
        cached = (time.monotonic() + VERIFY_CACHE_SECONDS, dcc_gateway.trust_list(now), revocation_list(now))
        verify_cache["lists"] = cached
    return passport.verify(text, cached[1], at or now, cached[2])
