"""Citizen accounts: facilities register citizens and hand out codes; citizens activate with TOTP."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from app.infra.embedded_quirks import in_chunks
from app.models.citizen import Citizen, PendingActivation, PendingEnrollment
from app.models.identity_check import IdentityCheck
from app.models.records import Immunization, Visit
from app.models.registries import CitizenKey
from app.security import totp
from app.security.passwords import password_problems
from app.security.tokens import InvalidToken, TokenType
from app.services import audit, list_index, outbox
from app.services.audit import Actor, RequestContext
from app.services.errors import AuthenticationFailed, Conflict, DomainError, InvalidInput, LockedOut
from app.services.facilities import get_facility
from app.services.identity import cccd_problems, citizen_by_national_id, citizen_ids, split_vietnamese_name
from app.services.ingest.writes import insert_ignoring_duplicates
from app.services.mfa import consume_totp, format_code, new_recovery_codes, normalize_code, readable_code
from app.services.sessions import Accounts, IssuedSession, start_session

ACTIVATION_CODE_LENGTH = 10  # 10 x log2(31) = 49.5 bits from `secrets`
ACTIVATION_FAILED = "national id, code or password not accepted"


class IdentityMismatch(Conflict):
    """The national id is known with a different date of birth."""

    slug = "identity-mismatch"


class AccountActive(Conflict):
    """The account is already active; the citizen signs in or asks support for a reset."""

    slug = "account-active"


class RegistrationRefused(Conflict):
    """Not registered here: one answer for another birth date and an already active account."""

    slug = "registration-refused"


class InvalidIdentity(InvalidInput):
    """The CCCD does not agree with the date of birth or sex."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__({"national_id": problems})


class WeakPassword(InvalidInput):
    """The new password is refused by the password policy."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__({"password": problems})


@dataclass(frozen=True)
class IssuedCode:
    """An activation code as handed to the citizen: the only time it exists in clear."""

    citizen: Citizen
    code: str
    expires_at: object
    created: bool


@dataclass(frozen=True)
class Enrollment:
    """What activation hands back: a token that only confirms TOTP, and the new TOTP secret."""

    enrollment_token: str
    totp_secret: str
    totp_uri: str


def activation_code_hash(accounts: Accounts, national_id: str, code: str) -> str:
    """Keyed hash of a code bound to its national id (a code alone redeems nothing)."""
    return accounts.box.keyed_hash(f"{national_id}:{normalize_code(code)}", "activation-code")


# Identity checks. A facility that gives a CCCD with a birth date is told whether the date is
# right (409 identity-mismatch, or success), so it could find a birth date in at most 366 tries
# (the CCCD gives the year). Against a citizen another facility registered, and until the facility
# has once given the right date ("proven"), each check is counted before the dates are compared,
# per (facility, citizen), by one atomic update that refuses when the count is over the limit; a
# right date gives its count back. Refusals are also counted per facility, across citizens. Over
# either limit the check is answered 429 without comparing, whatever the date.
IDENTITY_REFUSALS_PER_CITIZEN = 3  # a typo or two; a guesser needs ~180 tries on average
IDENTITY_CITIZEN_WINDOW = timedelta(days=1)
IDENTITY_REFUSALS_PER_FACILITY = 20  # so that many citizens cannot each be tried 3 times a day
IDENTITY_FACILITY_WINDOW = timedelta(hours=1)
PROVEN_KEPT = timedelta(days=365)


class StoredIdentity(Protocol):
    """What an identity check needs of a stored citizen (a ``Citizen`` or a push's projection)."""

    id: ObjectId
    date_of_birth: str
    registered_by_facility: str | None


def _count(key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """Add one to the counter ``key`` unless it is over ``limit`` in its window; False if it is.

    One atomic update: concurrent checks are counted one after the other, so no more than
    ``limit`` of them pass. A proven pair is not counted.
    """
    ended = {"$lt": ["$window_ends", now]}  # true as well for a new counter
    update = [{"$set": {
        "count": {"$cond": {"if": {"$eq": ["$proven", True]}, "then": "$count",
                            "else": {"$cond": {"if": ended, "then": 1, "else": {"$add": ["$count", 1]}}}}},
        "window_ends": {"$cond": {"if": ended, "then": now + window, "else": "$window_ends"}},
        "expires_at": {"$cond": {"if": {"$eq": ["$proven", True]}, "then": "$expires_at", "else": now + window}},
    }}]
    allowed = {"_id": key, "$or": [{"proven": True}, {"count": {"$lt": limit}}, {"window_ends": {"$lt": now}}]}
    collection = IdentityCheck._get_collection()
    try:
        collection.update_one(allowed, update, upsert=True)
    except DuplicateKeyError:  # it exists and did not match (over the limit), or was created just now
        return collection.update_one(allowed, update).matched_count == 1
    return True


def _over(key: str, limit: int, now: datetime) -> bool:
    """Whether the counter ``key`` is over ``limit`` in its current window (a read, no count)."""
    counter = IdentityCheck._get_collection().find_one({"_id": key}, {"count": 1, "window_ends": 1})
    return bool(counter and counter["window_ends"] > now and counter["count"] >= limit)


def _proven(facility: str, citizen_ids: set[ObjectId]) -> set[ObjectId]:
    """The citizens this facility has already given the right identity for."""
    keys = [f"{facility}:{citizen_id}" for citizen_id in citizen_ids]
    found: set[str] = set()
    for chunk in in_chunks(keys):
        found |= {doc["_id"] for doc in IdentityCheck._get_collection().find(
            {"_id": {"$in": chunk}, "proven": True}, {"_id": 1})}
    return {citizen_id for citizen_id in citizen_ids if f"{facility}:{citizen_id}" in found}


def check_identities(
    ctx: RequestContext, checks: Sequence[tuple[StoredIdentity, date]], *, refuse_all: bool = False
) -> list[DomainError | None]:
    """Compare each stored citizen with the birth date a facility gave; None where it agrees.

    ``IdentityMismatch`` where it differs, ``LockedOut`` where the facility is over a limit (not
    compared). Every refusal is audited. ``refuse_all`` counts and refuses agreeing dates too
    (an active account registered by a facility without a relationship to it).
    """
    facility = ctx.actor.facility_code or ""
    everywhere = f"{facility}:*"
    strangers = {stored.id for stored, _ in checks if stored.registered_by_facility != facility}
    counted = strangers - _proven(facility, strangers) if strangers else set()
    facility_over = bool(counted) and _over(everywhere, IDENTITY_REFUSALS_PER_FACILITY, ctx.now)
    answers: list[DomainError | None] = []
    proven: list[str] = []
    for stored, given in checks:
        same_date = stored.date_of_birth == given.isoformat()
        agrees = same_date and not refuse_all
        pair = f"{facility}:{stored.id}"
        if stored.id in counted:
            if facility_over:
                answers.append(_locked(ctx, stored, everywhere))
                continue
            if not _count(pair, IDENTITY_REFUSALS_PER_CITIZEN, IDENTITY_CITIZEN_WINDOW, ctx.now):
                answers.append(_locked(ctx, stored, pair))
                continue
            if agrees:  # later lines of this batch for the same citizen are not counted again
                proven.append(pair)
                counted.discard(stored.id)
            elif not _count(everywhere, IDENTITY_REFUSALS_PER_FACILITY, IDENTITY_FACILITY_WINDOW, ctx.now):
                facility_over = True  # this refusal was compared: it is answered, later ones are not
        if agrees:
            answers.append(None)
            continue
        audit.record(ctx, "citizen.identity_check", "failure", citizen_id=stored.id, target_type="citizen",
                     target_id=str(stored.id), reason="date of birth differs" if not same_date else "account active")
        answers.append(IdentityMismatch("This national id is registered with another date of birth."))
    if proven:
        IdentityCheck._get_collection().update_many(
            {"_id": {"$in": proven}},
            [{"$set": {"proven": True, "expires_at": ctx.now + PROVEN_KEPT,
                       "count": {"$max": [0, {"$subtract": ["$count", 1]}]}}}],
        )
    return answers


def _locked(ctx: RequestContext, stored: StoredIdentity, key: str) -> LockedOut:
    audit.record(ctx, "citizen.identity_check", "denied", citizen_id=stored.id, target_type="citizen",
                 target_id=str(stored.id), reason="too many identity refusals")
    counter = IdentityCheck._get_collection().find_one({"_id": key}, {"window_ends": 1}) or {}
    ends = counter.get("window_ends")
    retry_after = (ends - ctx.now).total_seconds() if ends else 60
    return LockedOut(int(retry_after) + 1, "Too many refused identity checks; try again later.")


def _has_relationship(citizen: Citizen, facility: str) -> bool:
    """Whether the facility registered the citizen, issued the outstanding code or holds a record."""
    activation = citizen.activation
    return bool(
        citizen.registered_by_facility == facility
        or (activation and activation.issued_by_type == "facility" and activation.issued_by == facility)
        or _proven(facility, {citizen.id})
        or Visit.objects(citizen_id=citizen.id, facility_code=facility).only("id").first()
        or Immunization.objects(citizen_id=citizen.id, facility_code=facility).only("id").first()
    )


@dataclass(frozen=True)
class NewCitizen:
    """Who a facility says a person is: enough to create a citizen without an account."""

    national_id: str
    full_name: str
    date_of_birth: date
    sex: str
    phone: str | None = None
    email: str | None = None


def _citizen_document(ctx: RequestContext, person: NewCitizen, citizen_id: ObjectId) -> dict:
    """A citizen without an account, as a document for a bulk insert (the model supplies the defaults)."""
    family, given = split_vietnamese_name(person.full_name)
    citizen = Citizen(national_id=person.national_id, full_name=person.full_name, family_name=family,
                      given_name=given, date_of_birth=person.date_of_birth.isoformat(), sex=person.sex,
                      phone=person.phone, email=person.email, created_at=ctx.now,
                      registered_by_facility=ctx.actor.facility_code)
    citizen.validate()
    document: dict = citizen.to_mongo().to_dict()
    document["_id"] = citizen_id
    return document


def _projected(document: dict, fields: dict[str, int] | None) -> dict:
    """``document`` as a find with the inclusion projection ``fields`` returns it."""
    if not fields:
        return document
    return {name: value for name, value in document.items() if name == "_id" or fields.get(name)}


def _read_citizens(ids: dict[str, ObjectId], fields: dict[str, int] | None) -> dict[str, dict]:
    """national id -> stored citizen for these registry entries (``_id $in`` in chunks; missing ones left out)."""
    national_ids = {citizen_id: national_id for national_id, citizen_id in ids.items()}
    collection = Citizen._get_collection()
    found: dict[str, dict] = {}
    for chunk in in_chunks(list(national_ids)):
        for document in collection.find({"_id": {"$in": chunk}}, fields):
            found[national_ids[document["_id"]]] = document
    return found


def find_or_create_citizens(
    ctx: RequestContext, people: Sequence[NewCitizen], fields: dict[str, int] | None = None,
) -> tuple[dict[str, dict], set[str]]:
    """The citizens with these CCCDs (stored documents, ``fields`` only), the unknown ones created.

    The one rule for "find or create a citizen by CCCD": records and codes exist whether or not
    the person ever uses the app. The ``citizen_keys`` registry (national id -> citizen id, its
    ``_id`` unique) decides which citizen a CCCD has; citizens are then read and written by ``_id``
    (their shard key), so nothing here asks every shard:

    1. read the registry for every CCCD (``_id $in``, in chunks);
    2. insert an entry with a new citizen id for each unknown CCCD (one unordered insert): a
       duplicate means another request won, and its entry's citizen id is read;
    3. read the citizens of the entries that existed (``_id $in``);
    4. insert the citizens still missing with their entry's id: the new ones, and those whose
       entry exists without a citizen (a creation that crashed between the two inserts, or another
       request between its two): whichever insert of an id lands first creates the citizen, the
       other is a duplicate and reads it.

    One ``citizen.create`` audit event names each citizen this call created. Identities are not
    checked here. Returns ``national id -> document`` and the national ids created.
    """
    wanted = {person.national_id: person for person in people}
    ids = citizen_ids(list(wanted))
    unknown = [national_id for national_id in wanted if national_id not in ids]
    proposed = {national_id: ObjectId() for national_id in unknown}
    lost = insert_ignoring_duplicates(CitizenKey._get_collection(), [
        {"_id": national_id, "citizen_id": proposed[national_id], "created_at": ctx.now} for national_id in unknown])
    ids.update((national_id, proposed[national_id]) for i, national_id in enumerate(unknown) if i not in lost)
    ids.update(citizen_ids([unknown[i] for i in lost]))
    won = {national_id for i, national_id in enumerate(unknown) if i not in lost}
    found = _read_citizens({nid: cid for nid, cid in ids.items() if nid not in won}, fields)
    missing = [national_id for national_id in ids if national_id not in found]
    if not missing:
        return found, set()
    documents = [_citizen_document(ctx, wanted[national_id], ids[national_id]) for national_id in missing]
    duplicates = insert_ignoring_duplicates(Citizen._get_collection(), documents)
    created = [doc for i, doc in enumerate(documents) if i not in duplicates]
    found.update((doc["national_id"], _projected(doc, fields)) for doc in created)
    found.update(_read_citizens({missing[i]: ids[missing[i]] for i in duplicates}, fields))
    if len(created) == 1:
        audit.store_all([audit.event_document(
            ctx, "citizen.create", citizen_id=created[0]["_id"], target_type="citizen",
            target_id=str(created[0]["_id"]))])
    elif created:  # one event for the batch, naming each citizen (as for the records they come with)
        audit.store_all([audit.event_document(
            ctx, "citizen.create", citizen_ids=[doc["_id"] for doc in created], target_type="citizen")])
    return found, {doc["national_id"] for doc in created}


def find_or_create_citizen(
    ctx: RequestContext,
    national_id: str,
    full_name: str,
    date_of_birth: date,
    sex: str,
    *,
    phone: str | None = None,
    email: str | None = None,
) -> tuple[Citizen, bool]:
    """The citizen with this CCCD, created if unknown (``created`` True), else found (not yet checked).

    One person through :func:`find_or_create_citizens`, after checking the CCCD agrees.
    """
    problems = cccd_problems(national_id, date_of_birth, sex)
    if problems:
        raise InvalidIdentity(problems)
    found, created = find_or_create_citizens(
        ctx, [NewCitizen(national_id, full_name, date_of_birth, sex, phone, email)])
    return Citizen._from_son(found[national_id]), national_id in created


def register_citizen(
    ctx: RequestContext,
    accounts: Accounts,
    national_id: str,
    full_name: str,
    date_of_birth: date,
    sex: str,
    phone: str | None,
    email: str | None,
) -> IssuedCode:
    """A facility registers a citizen (or finds them) and hands out a new activation code.

    A facility related to the citizen (see ``_has_relationship``) is told 409 ``identity-mismatch``
    or ``account-active``; any other gets one answer for both, ``registration-refused``, and its
    refusals count against the identity-check limits (``check_identities``).
    """
    facility = get_facility(ctx.actor.facility_code or "")
    citizen, created = find_or_create_citizen(
        ctx, national_id, full_name, date_of_birth, sex, phone=phone, email=email
    )
    if not created:
        related = _has_relationship(citizen, facility.code)
        active = citizen.state == "active"
        refusal = check_identities(ctx, [(citizen, date_of_birth)], refuse_all=active and not related)[0]
        if isinstance(refusal, LockedOut) or (refusal is not None and related):
            raise refusal
        if refusal is not None:
            raise RegistrationRefused("This national id cannot be registered with these details here.")
    if citizen.state == "active":
        audit.record(ctx, "activation_code.issue", "denied", citizen_id=citizen.id,
                     target_type="citizen", target_id=str(citizen.id), reason="account active")
        raise AccountActive("This account is already active.")
    if not created:
        # Contact data the facility just checked in person is the freshest we have, and trusted
        # again for a support reset (app.services.support.reset_channels).
        updates: dict[str, object] = {}
        for name, value in (("phone", phone), ("email", email)):
            if value:
                updates.update({f"set__{name}": value, f"unset__{name}_changed_at": True})
        if updates:
            Citizen.objects(id=citizen.id).update_one(**updates)
            citizen.reload()
    code = issue_activation_code(ctx, accounts, citizen, "facility", ctx.actor.facility_code or "?")
    outbox.notify(ctx, citizen, "activation_code_issued", code.code_hash_key,
                  facility=facility.name)
    return IssuedCode(citizen, code.code, code.expires_at, created)


@dataclass(frozen=True)
class _NewCode:
    code: str
    expires_at: object
    code_hash_key: str


def issue_activation_code(
    ctx: RequestContext, accounts: Accounts, citizen: Citizen, issued_by_type: str, issued_by: str
) -> _NewCode:
    """Replace any outstanding code with a new one (so older codes stop working); audit, never the code."""
    code = format_code(readable_code(ACTIVATION_CODE_LENGTH))
    expires_at = ctx.now + timedelta(hours=accounts.settings.activation_code_ttl_hours)
    code_hash = activation_code_hash(accounts, citizen.national_id, code)
    pending = PendingActivation(code_hash=code_hash, issued_at=ctx.now, expires_at=expires_at,
                                issued_by_type=issued_by_type, issued_by=issued_by)
    Citizen.objects(id=citizen.id).update_one(set__activation=pending)
    audit.record(ctx, "activation_code.issue", citizen_id=citizen.id, target_type="citizen",
                 target_id=str(citizen.id), details={"issued_by_type": issued_by_type})
    return _NewCode(code, expires_at, code_hash[:24])


def activate(
    ctx: RequestContext, accounts: Accounts, national_id: str, code: str, password: str
) -> Enrollment:
    """Redeem an activation code: set the password and start TOTP enrolment.

    Unknown national id, wrong or expired code and locked account all fail alike (401). One
    conditional update consumes the code, so it works once even under concurrent redeems.
    """
    problems = password_problems(password, national_id)
    if problems:
        raise WeakPassword(problems)
    try:
        accounts.auth_ip_attempts.hit(ctx.ip or "unknown")
        attempt = accounts.activation_failures.attempt(national_id, ctx.ip, ctx.now)
    except LockedOut:
        audit.record(ctx, "citizen.activate", "denied", reason="too many attempts")
        raise
    citizen = citizen_by_national_id(national_id)
    pending = citizen.activation if citizen else None
    code_hash = activation_code_hash(accounts, national_id, code)
    code_ok = bool(pending) and accounts.box.hash_matches(
        f"{national_id}:{normalize_code(code)}", "activation-code", pending.code_hash
    )
    if not (citizen and pending and code_ok and pending.expires_at > ctx.now
            and not citizen.locked and citizen.state != "active"):
        audit.record(ctx, "citizen.activate", "failure", citizen_id=citizen.id if citizen else None,
                     target_type="citizen", target_id=str(citizen.id) if citizen else None)
        raise AuthenticationFailed(ACTIVATION_FAILED)
    secret = totp.new_secret()
    enrollment = PendingEnrollment(
        enrollment_id=uuid.uuid4().hex,
        totp_secret_encrypted=accounts.box.encrypt(secret, citizen.totp_context()),
        started_at=ctx.now,
        expires_at=ctx.now + timedelta(seconds=accounts.settings.enrollment_seconds),
    )
    consumed = Citizen.objects(
        id=citizen.id, activation__code_hash=code_hash, activation__expires_at__gt=ctx.now,
        locked=False, state__ne="active",
    ).update_one(unset__activation=True, set__password_hash=accounts.passwords.hash(password),
                 set__enrollment=enrollment)
    if not consumed:
        audit.record(ctx, "citizen.activate", "failure", citizen_id=citizen.id,
                     target_type="citizen", target_id=str(citizen.id), reason="code already used")
        raise AuthenticationFailed(ACTIVATION_FAILED)
    accounts.activation_failures.succeeded(attempt, ctx.now)
    audit.record(ctx, "citizen.activate", citizen_id=citizen.id, target_type="citizen",
                 target_id=str(citizen.id))
    token = accounts.tokens.issue(str(citizen.id), TokenType.ENROLLMENT, ctx.now,
                            lifetime_seconds=accounts.settings.enrollment_seconds,
                            eid=enrollment.enrollment_id)
    return Enrollment(token.token, secret,
                      totp.provisioning_uri(secret, f"{citizen.national_id}"))


@dataclass(frozen=True)
class Activated:
    """The end of activation: a session and the recovery codes (shown once)."""

    session: IssuedSession
    recovery_codes: list[str]


def confirm_enrollment(
    ctx: RequestContext,
    accounts: Accounts,
    enrollment_token: str,
    totp_code: str,
    device_label: str | None,
    user_agent: str | None,
) -> Activated:
    """Prove the authenticator works: the account becomes active and the first session starts."""
    try:
        claims = accounts.tokens.verify(enrollment_token, (TokenType.ENROLLMENT,))
    except InvalidToken:
        raise AuthenticationFailed("The enrolment token is not valid.") from None
    citizen = Citizen.objects(id=claims["sub"]).first()
    enrollment = citizen.enrollment if citizen else None
    if not (citizen and enrollment and enrollment.enrollment_id == claims.get("eid")
            and enrollment.expires_at > ctx.now and not citizen.locked):
        raise AuthenticationFailed("The enrolment token is not valid.")
    # Only the enrolment token's holder reaches here: count per enrolment, so that failures by
    # others for this national id (from addresses it never used) cannot block the confirmation.
    try:
        accounts.citizen_login_failures.attempt(f"enrollment:{enrollment.enrollment_id}", ctx.ip, ctx.now)
    except LockedOut:
        audit.record(ctx, "citizen.enroll_totp", "denied", citizen_id=citizen.id, target_type="citizen",
                     target_id=str(citizen.id), reason="too many attempts")
        raise
    secret = accounts.box.decrypt(enrollment.totp_secret_encrypted, citizen.totp_context())
    codes, hashes = new_recovery_codes(accounts.box, str(citizen.id))
    confirmed = consume_totp(
        Citizen, citizen.id, secret, totp_code, ctx.now,
        filters={"enrollment__enrollment_id": enrollment.enrollment_id, "locked": False},
        set__state="active", set__totp_secret_encrypted=enrollment.totp_secret_encrypted,
        set__recovery_code_hashes=hashes, set__activated_at=ctx.now, set__last_login_at=ctx.now,
        unset__enrollment=True,
    )
    if not confirmed:
        audit.record(ctx, "citizen.enroll_totp", "failure", citizen_id=citizen.id,
                     target_type="citizen", target_id=str(citizen.id))
        raise AuthenticationFailed("The code was not accepted.")
    list_index.build([citizen.id], ctx.now)  # active: the citizen's lists become readable
    accounts.citizen_login_failures.remember(citizen.national_id, ctx.ip, ctx.now)  # the first sign-in
    ctx = ctx.acting_as(Actor("citizen", str(citizen.id), "citizen"))
    citizen.reload()
    session = start_session(ctx, accounts, citizen, device_label, user_agent)
    audit.record(ctx, "citizen.enroll_totp", citizen_id=citizen.id, target_type="citizen",
                 target_id=str(citizen.id))
    outbox.notify(ctx, citizen, "account_activated", enrollment.enrollment_id)
    return Activated(session, codes)
