"""Staff accounts: creation by an administrator, login with password + TOTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mongoengine import NotUniqueError

from app.models.staff import StaffUser
from app.security import totp
from app.security.attempts import AttemptLimiter
from app.security.crypto import SecretBox
from app.security.lockout import LoginGuard
from app.security.passwords import PasswordHasher, generate_password
from app.security.tokens import IssuedToken, TokenService, TokenType
from app.services import audit
from app.services.audit import Actor, RequestContext
from app.services.errors import AlreadyExists, AuthenticationFailed, LockedOut
from app.services.mfa import consume_totp


@dataclass(frozen=True)
class NewStaff:
    """A created staff account with its one-time password and TOTP enrolment URI."""

    user: StaffUser
    password: str
    totp_uri: str


def create_staff(
    ctx: RequestContext, username: str, role: str, *, passwords: PasswordHasher, box: SecretBox
) -> NewStaff:
    """Create a staff account; the password and TOTP secret leave HoSo only in the answer."""
    password = generate_password()
    secret = totp.new_secret()
    user = StaffUser(
        username=username,
        role=role,
        password_hash=passwords.hash(password),
        totp_secret_encrypted="pending",
        created_at=ctx.now,
        created_by=ctx.actor.id,
    )
    user.totp_secret_encrypted = box.encrypt(secret, user.totp_context())
    try:
        user.save(force_insert=True)
    except NotUniqueError:
        audit.record(ctx, "staff.create", "failure", target_type="staff", target_id=username,
                     reason="username taken")
        raise AlreadyExists(f"staff user {username} already exists") from None
    audit.record(ctx, "staff.create", target_type="staff", target_id=username,
                 details={"role": role})
    return NewStaff(user, password, totp.provisioning_uri(secret, f"staff:{username}"))


def accept_totp(user: StaffUser, code: str, now: datetime, box: SecretBox) -> bool:
    """Accept ``code`` once: one conditional update moves the last accepted step forward.

    Twenty concurrent requests with the same valid code produce exactly one acceptance.
    """
    secret = box.decrypt(user.totp_secret_encrypted, user.totp_context())
    return consume_totp(StaffUser, user.id, secret, code, now, set__last_login_at=now)


def login_staff(
    ctx: RequestContext,
    username: str,
    password: str,
    totp_code: str,
    *,
    passwords: PasswordHasher,
    box: SecretBox,
    tokens: TokenService,
    failures: LoginGuard,
    ip_attempts: AttemptLimiter,
) -> IssuedToken:
    """Password + TOTP login. Every failure looks the same; too many lock the username for a while
    from addresses it has not signed in from (see ``app.security.lockout``)."""
    key = username.lower()
    try:
        ip_attempts.hit(ctx.ip or "unknown")
        attempt = failures.attempt(key, ctx.ip, ctx.now)
    except LockedOut:
        audit.record(ctx, "staff.login", "denied", target_type="staff", target_id=key[:64],
                     reason="locked out")
        raise
    user = StaffUser.objects(username=key).first()
    password_ok = passwords.verify(user.password_hash if user else None, password)
    if not (user and user.active and password_ok and accept_totp(user, totp_code, ctx.now, box)):
        audit.record(ctx, "staff.login", "failure", target_type="staff", target_id=key[:64])
        raise AuthenticationFailed("username, password or code not accepted")
    failures.succeeded(attempt, ctx.now)
    ctx = ctx.acting_as(Actor("staff", user.username, f"{user.role}:{user.username}"))
    audit.record(
        ctx, "staff.login", target_type="staff", target_id=user.username,
        details={"role": user.role},
    )
    return tokens.issue(user.username, TokenType.STAFF, ctx.now, role=user.role)
