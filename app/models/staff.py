"""Support and administration staff: password + mandatory TOTP."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow

STAFF_ROLES = ("support", "admin")
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,63}$"


class StaffUser(me.Document):
    """A staff member. The TOTP secret is AES-GCM encrypted with the data key."""

    username = me.StringField(required=True, unique=True, regex=USERNAME_PATTERN)
    role = me.StringField(required=True, choices=STAFF_ROLES)
    password_hash = me.StringField(required=True)
    totp_secret_encrypted = me.StringField(required=True)
    # The last TOTP time step accepted; a code is accepted only for a larger step (replay guard).
    totp_last_step = me.IntField(default=-1)
    active = me.BooleanField(default=True)
    created_at = me.DateTimeField(default=utcnow)
    created_by = me.StringField()
    last_login_at = me.DateTimeField()
    # Access tokens issued before this instant are refused (logout, disable, role change).
    tokens_valid_after = me.DateTimeField()

    meta = {"collection": "staff_users"}

    def totp_context(self) -> str:
        """Authenticated data binding the encrypted TOTP secret to this account."""
        return f"staff-totp:{self.username}"
