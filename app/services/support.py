"""Support staff: account look-ups (never health data), access resets, locks. All audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.models.citizen import Citizen
from app.services import audit, outbox
from app.services.audit import RequestContext
from app.services.citizens import issue_activation_code
from app.services.errors import Conflict, NotFound
from app.services.identity import citizen_by_national_id
from app.services.sessions import Accounts, active_sessions, revoke_sessions


class NoContactChannel(Conflict):
    """The citizen has no phone or e-mail: they must visit a facility for a new code."""

    slug = "no-contact-channel"


class IdentityCheckFailed(Conflict):
    """The identity evidence does not match the account."""

    slug = "identity-check-failed"


class ContactRecentlyChanged(Conflict):
    """Every contact channel changed lately: a new code goes to none of them."""

    slug = "contact-recently-changed"


# A phone or e-mail the citizen changed in the app within this time never receives a code from a
# support reset (whoever changed it may be the one calling support): a facility checks in person.
RECENT_CONTACT_CHANGE = timedelta(days=7)
# The documents whose number is the citizen's 12-digit personal identification number (the CCCD
# carries it, and so does a birth certificate since the number is given at birth registration).
# HoSo holds no other document number (an old 9-digit CMND, a passport), so it cannot check one.
DOCUMENTS_WITH_NATIONAL_ID = ("cccd", "birth_certificate")


def _identity_problem(national_id: str, identity_check: dict[str, Any]) -> tuple[str, str] | None:
    """Why the evidence does not prove the account holder (audit reason, message for support), or
    None when its last four characters match."""
    if identity_check["document_type"] not in DOCUMENTS_WITH_NATIONAL_ID:
        return ("document type cannot be checked",
                "HoSo holds no number of this document to compare: check the CCCD or the birth certificate, "
                "or the citizen visits a facility.")
    if not national_id.endswith(identity_check["document_number_last4"]):
        return "document mismatch", "The document number does not match this citizen's records."
    return None


def reset_channels(citizen: Citizen, now: datetime) -> list[str]:
    """The contact channels a support reset may send a code to: not changed in the app lately."""
    changed = {"sms": citizen.phone_changed_at, "email": citizen.email_changed_at}
    return [channel for channel in citizen.contact_channels
            if changed.get(channel) is None or changed[channel] <= now - RECENT_CONTACT_CHANGE]


@dataclass(frozen=True)
class AccountState:
    """What support may see of an account: its state, never its health data."""

    national_id: str
    full_name: str
    state: str
    locked: bool
    registered_by_facility: str | None
    created_at: datetime
    activated_at: datetime | None
    last_login_at: datetime | None
    active_sessions: int
    contact_channels: list[str]


def _citizen(national_id: str) -> Citizen:
    citizen = citizen_by_national_id(national_id)
    if citizen is None:
        raise NotFound("No citizen with this national id.")
    return citizen


def look_up(ctx: RequestContext, accounts: Accounts, national_id: str) -> AccountState:
    """Account state only; the look-up itself is audited and shown in the citizen's access log."""
    citizen = _citizen(national_id)
    audit.record(ctx, "support.lookup", citizen_id=citizen.id, target_type="citizen",
                 target_id=str(citizen.id), access="read")
    return AccountState(
        national_id=citizen.national_id, full_name=citizen.full_name,
        state=citizen.display_state, locked=citizen.locked,
        registered_by_facility=citizen.registered_by_facility, created_at=citizen.created_at,
        activated_at=citizen.activated_at, last_login_at=citizen.last_login_at,
        active_sessions=len(active_sessions(accounts, citizen.id, ctx.now)),
        contact_channels=citizen.contact_channels,
    )


@dataclass(frozen=True)
class ActionResult:
    """The account state after a support action."""

    national_id: str
    state: str
    locked: bool


def _result(citizen_id: object) -> ActionResult:
    citizen = Citizen.objects(id=citizen_id).first()
    assert citizen is not None
    return ActionResult(citizen.national_id, citizen.display_state, citizen.locked)


def reset_access(
    ctx: RequestContext, accounts: Accounts, national_id: str, reason: str, identity_check: dict[str, Any]
) -> ActionResult:
    """End every session, clear password, TOTP and recovery codes, and send a new activation code.

    The code goes only to the citizen's own phone or e-mail (encrypted in the outbox until sent);
    staff never see it. No session is handed out and TOTP is not bypassed: the citizen activates
    again from the code.
    """
    citizen = _citizen(national_id)
    evidence = {key: str(value) for key, value in identity_check.items()}
    about = {"citizen_id": citizen.id, "target_type": "citizen", "target_id": str(citizen.id), "reason": reason}

    def refuse(failure: str, error: Conflict) -> Conflict:
        audit.record(ctx, "support.access_reset", "failure", **about,
                     details={"identity_check": evidence, "failure": failure})
        return error

    problem = _identity_problem(national_id, identity_check)
    if problem:
        raise refuse(problem[0], IdentityCheckFailed(problem[1]))
    if not citizen.contact_channels:
        raise refuse("no contact channel", NoContactChannel(
            "No phone or e-mail on file: the citizen must visit a facility."))
    channels = reset_channels(citizen, ctx.now)
    if not channels:
        raise refuse("contact recently changed", ContactRecentlyChanged(
            "The phone and e-mail were changed in the app within the last 7 days: the citizen must "
            "visit a facility for a new code."))
    with audit.recording(ctx, "support.access_reset", **about) as details:
        details["identity_check"] = evidence
        revoke_sessions(ctx, citizen.id, "access reset by support")
        Citizen.objects(id=citizen.id).update_one(
            set__state="reset_pending", unset__password_hash=True, unset__totp_secret_encrypted=True,
            set__totp_last_step=-1, set__recovery_code_hashes=[], unset__enrollment=True,
        )
        code = issue_activation_code(ctx, accounts, citizen, "support", ctx.actor.id or "support")
    outbox.notify(ctx, citizen, "access_reset", code.code_hash_key)
    outbox.notify(ctx, citizen, "activation_code_delivery", code.code_hash_key,
                  channels=[channels[0]], secret=code.code, box=accounts.box,
                  hours=str(accounts.settings.activation_code_ttl_hours))
    return _result(citizen.id)


def lock(ctx: RequestContext, national_id: str, reason: str) -> ActionResult:
    """Lock an account: no login, no refresh, and its access tokens stop at once."""
    citizen = _citizen(national_id)
    with audit.recording(ctx, "support.lock", citizen_id=citizen.id, target_type="citizen",
                         target_id=str(citizen.id), reason=reason):
        # One conditional update: of two concurrent locks, one locks and the other is a 409.
        if not Citizen.objects(id=citizen.id, locked__ne=True).update_one(set__locked=True, set__locked_at=ctx.now):
            raise Conflict("The account is already locked.")
        revoke_sessions(ctx, citizen.id, "account locked")
    outbox.notify(ctx, citizen, "account_locked", f"{citizen.id}:{ctx.now.isoformat()}")
    return _result(citizen.id)


def unlock(ctx: RequestContext, national_id: str, reason: str) -> ActionResult:
    """Unlock an account; the citizen signs in again (all sessions ended at the lock)."""
    citizen = _citizen(national_id)
    with audit.recording(ctx, "support.unlock", citizen_id=citizen.id, target_type="citizen",
                         target_id=str(citizen.id), reason=reason):
        if not Citizen.objects(id=citizen.id, locked=True).update_one(set__locked=False,
                                                                     unset__locked_at=True):
            raise Conflict("The account is not locked.")
    outbox.notify(ctx, citizen, "account_unlocked", f"{citizen.id}:{ctx.now.isoformat()}")
    return _result(citizen.id)
