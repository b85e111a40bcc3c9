"""The collaborators one app instance hands to its services (built once in ``create_app``).

Everything an app holds between requests (caches, batchers, the write watch of its connection)
lives here, never at module level, so two apps in one process share nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from flask import current_app
from flask_limiter import Limiter

from app.clock import utcnow
from app.infra.db import WriteWatch
from app.infra.signer import SignerHolder
from app.security.attempts import AttemptLimiter
from app.security.crypto import SecretBox
from app.security.lockout import LoginGuard
from app.security.passwords import PasswordHasher
from app.security.tokens import TokenService
from app.services.audit import AuditTrail
from app.services.sessions import Accounts
from app.services.timeline import FacilityNames, IndexVersions, ListReads, PageCache, list_reads
from app.settings import Settings
from app.web.auth import CitizenReads


@dataclass
class Runtime:
    """Settings plus the objects built from them: keys, hashers, limiters, caches and the clock."""

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
    write_watch: WriteWatch  # the app's connection's write listener (app.infra.db.WriteWatch)
    audit_trail: AuditTrail  # reaches services as RequestContext.trail
    citizen_reads: CitizenReads  # the citizen principal's recent reads (app.web.auth), forgotten on writes
    index_versions: IndexVersions  # recent list index versions (app.services.timeline), forgotten on writes
    list_reads: ListReads = field(default_factory=list_reads)  # the pages' index reads, grouped
    clock: Callable[[], datetime] = field(default=utcnow)
    verify_cache: dict[str, Any] = field(default_factory=dict)
    pages: PageCache = field(default_factory=PageCache)  # the timeline's pages, keyed on the list index version
    facility_names: FacilityNames = field(default_factory=FacilityNames)

    def now(self) -> datetime:
        """The current time as this app sees it (tests may replace ``clock``)."""
        return self.clock()

    @cached_property
    def accounts(self) -> Accounts:
        """What the citizen-account services are handed (``app.services.sessions.Accounts``)."""
        return Accounts(
            settings=self.settings, box=self.box, passwords=self.passwords, tokens=self.tokens,
            auth_ip_attempts=self.auth_ip_attempts, citizen_login_failures=self.citizen_login_failures,
            activation_failures=self.activation_failures,
        )


def runtime() -> Runtime:
    """The runtime of the current app."""
    return current_app.extensions["hoso"]  # type: ignore[no-any-return]
