"""The collaborators one app instance hands to its services (built once in ``create_app``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from flask_limiter import Limiter

from app.clock import utcnow
from app.security.crypto import SecretBox
from app.security.lockout import LoginGuard
from app.security.passwords import PasswordHasher
from app.security.ratelimit import AttemptLimiter
from app.security.tokens import TokenService
from app.services.signing_keys import SignerHolder
from app.services.timeline import FacilityNames, PageCache
from app.settings import Settings


@dataclass
class Runtime:
    """Settings plus the objects built from them: keys, hashers, limiters and the clock."""

    settings: Settings
    box: SecretBox
    passwords: PasswordHasher
    tokens: TokenService
    limiter: Limiter
    staff_login_failures: LoginGuard
    client_auth_failures: LoginGuard
    auth_ip_attempts: AttemptLimiter
    citizen_login_failures: LoginGuard
    activation_failures: LoginGuard
    share_attempts: AttemptLimiter
    passport_quota: AttemptLimiter
    verify_attempts: AttemptLimiter
    signer: SignerHolder
    clock: Callable[[], datetime] = field(default=utcnow)
    verify_cache: dict[str, Any] = field(default_factory=dict)
    pages: PageCache = field(default_factory=PageCache)  # the timeline's pages, keyed on records_version
    facility_names: FacilityNames = field(default_factory=FacilityNames)

    def now(self) -> datetime:
        """The current time as this app sees it (tests may replace ``clock``)."""
        return self.clock()


def runtime() -> Runtime:
    """The runtime of the current app."""
    return current_app.extensions["hoso"]  # type: ignore[no-any-return]
