"""Step-up authentication: the citizen proves password and second factor again before a sensitive change.

A stolen access token (15 minutes) or an unlocked phone must not be enough to move the account's
contact channels, the place its warnings and codes go. So changing the phone or e-mail needs a
password and TOTP (or recovery code) check within the last ``RECENT_AUTHENTICATION``: the
sign-in that started this session, or ``POST /auth/reauthenticate`` on it. The answer when it is
missing follows RFC 9470 (OAuth 2.0 step-up authentication challenge).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.models.citizen import Citizen
from app.models.session import Session
from app.services import audit
from app.services.audit import RequestContext
from app.services.errors import AuthenticationFailed, LockedOut
from app.services.mfa import consume_recovery_code, consume_totp
from app.services.sessions import Accounts

RECENT_AUTHENTICATION = timedelta(minutes=5)


class ReauthenticationRequired(AuthenticationFailed):
    """This change needs a password and second-factor check within the last five minutes."""

    slug = "reauthentication-required"
    headers = {"WWW-Authenticate": (
        'Bearer realm="hoso", error="insufficient_user_authentication", '
        'error_description="Confirm your password and code at /api/v1/auth/reauthenticate", '
        f'max_age={int(RECENT_AUTHENTICATION.total_seconds())}')}


def authenticated_at(citizen_id: object, session_id: str) -> datetime | None:
    """When this session last checked password and second factor."""
    session = Session.objects(citizen_id=citizen_id, family_id=session_id, revoked_at=None).only(
        "created_at", "authenticated_at").first()
    if session is None:
        return None
    return session.authenticated_at or session.created_at


def require_recent_authentication(ctx: RequestContext, citizen: Citizen, session_id: str) -> None:
    """Raise :class:`ReauthenticationRequired` unless this session authenticated lately."""
    at = authenticated_at(citizen.id, session_id)
    if at is None or at < ctx.now - RECENT_AUTHENTICATION:
        audit.record(ctx, "citizen.profile_update", "denied", citizen_id=citizen.id, target_type="citizen",
                     target_id=str(citizen.id), reason="reauthentication required")
        raise ReauthenticationRequired(
            "Changing the phone or e-mail needs your password and code again: "
            "POST /api/v1/auth/reauthenticate, then repeat the change.")


def reauthenticate(
    ctx: RequestContext,
    accounts: Accounts,
    citizen: Citizen,
    session_id: str,
    password: str,
    totp_code: str | None,
    recovery_code: str | None,
) -> datetime:
    """Check password and TOTP (or one recovery code) for the signed-in citizen; returns the time.

    Failures are counted like sign-in failures (``app.security.lockout``), the session standing for
    a known device with its own counter: a stolen access token can lock only its own session's
    step-up, never the owner's sign-in elsewhere. Every attempt is audited.
    """
    about = {"citizen_id": citizen.id, "target_type": "session", "target_id": session_id}
    try:
        attempt = accounts.citizen_login_failures.attempt(citizen.national_id, ctx.ip, ctx.now,
                                                    device=f"session:{session_id}")
    except LockedOut:
        audit.record(ctx, "citizen.reauthenticate", "denied", reason="too many attempts", **about)
        raise
    method = "totp" if totp_code else "recovery_code"
    ok = accounts.passwords.verify(citizen.password_hash, password)
    if ok and totp_code:
        secret = accounts.box.decrypt(citizen.totp_secret_encrypted, citizen.totp_context())
        ok = consume_totp(Citizen, citizen.id, secret, totp_code, ctx.now, filters={"locked": False})
    elif ok and recovery_code:
        ok = consume_recovery_code(Citizen, citizen.id, accounts.box, str(citizen.id), recovery_code)
    if not ok:
        audit.record(ctx, "citizen.reauthenticate", "failure", details={"method": method}, **about)
        raise AuthenticationFailed("Password or code not accepted.")
    accounts.citizen_login_failures.succeeded(attempt, ctx.now)
    with audit.recording(ctx, "citizen.reauthenticate", details={"method": method}, **about):
        if not Session.objects(citizen_id=citizen.id, family_id=session_id, revoked_at=None).update_one(
                set__authenticated_at=ctx.now):  # ended meanwhile (logout, reset): nothing to step up
            raise AuthenticationFailed("This session has ended.")
    return ctx.now
