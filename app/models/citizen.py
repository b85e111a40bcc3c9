"""Citizens: the person key (CCCD), identity, and the account that protects their record."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow

NATIONAL_ID_PATTERN = r"^[0-9]{12}$"
SEXES = ("male", "female", "other", "unknown")
ACCOUNT_STATES = ("pending_activation", "active", "reset_pending")
LANGUAGES = ("vi", "en")
# One source for what the API accepts and what the model stores: a name's parts are at most as
# long as the whole name (``split_vietnamese_name`` only divides it).
FULL_NAME_MAX_LENGTH = 200
ADDRESS_LINE_MAX_LENGTH = 200


class Address(me.EmbeddedDocument):
    """A postal address with Vietnam's administrative codes."""

    line = me.StringField(max_length=ADDRESS_LINE_MAX_LENGTH)
    ward_code = me.StringField(max_length=10)
    province_code = me.StringField(max_length=3)


class PendingActivation(me.EmbeddedDocument):
    """The one outstanding activation code: only its keyed hash. A new code replaces it."""

    code_hash = me.StringField(required=True)
    issued_at = me.DateTimeField(required=True)
    expires_at = me.DateTimeField(required=True)
    issued_by_type = me.StringField(required=True, choices=("facility", "support"))
    issued_by = me.StringField(required=True)


class PendingEnrollment(me.EmbeddedDocument):
    """Between activation and TOTP confirmation: the new TOTP secret, encrypted."""

    enrollment_id = me.StringField(required=True)
    totp_secret_encrypted = me.StringField(required=True)
    started_at = me.DateTimeField(required=True)
    expires_at = me.DateTimeField(required=True)


class Citizen(me.Document):
    """One person and their account. Health records reference it; it holds no health data."""

    # Unique through the ``citizen_keys`` registry (app.models.registries), which every look-up by
    # CCCD reads: citizens are sharded by ``_id``, where a unique index on another field cannot be.
    national_id = me.StringField(required=True, regex=NATIONAL_ID_PATTERN)
    id_type = me.StringField(default="cccd", choices=("cccd", "cmnd", "passport"))
    full_name = me.StringField(required=True, max_length=FULL_NAME_MAX_LENGTH)
    family_name = me.StringField(max_length=FULL_NAME_MAX_LENGTH)
    given_name = me.StringField(max_length=FULL_NAME_MAX_LENGTH)
    date_of_birth = me.StringField(required=True)  # YYYY-MM-DD, YYYY-MM or YYYY
    sex = me.StringField(required=True, choices=SEXES)
    phone = me.StringField()
    email = me.StringField()
    # When the citizen last changed each in the app (unset when a facility set it in person):
    # a support reset sends no code to a channel changed lately (app.services.support).
    phone_changed_at = me.DateTimeField()
    email_changed_at = me.DateTimeField()
    language = me.StringField(default="vi", choices=LANGUAGES)
    address = me.EmbeddedDocumentField(Address)
    # kind -> channel -> enabled, for messages other than security ones (always sent)
    notification_preferences = me.DictField()
    created_at = me.DateTimeField(default=utcnow)
    registered_by_facility = me.StringField()
    # Retired (the timeline cache keys on the list index's version since issue 15); declared so
    # that documents stored before load (mongoengine refuses undeclared fields).
    records_version = me.IntField()

    # account
    state = me.StringField(default="pending_activation", choices=ACCOUNT_STATES)
    locked = me.BooleanField(default=False)
    locked_at = me.DateTimeField()
    password_hash = me.StringField()
    totp_secret_encrypted = me.StringField()
    totp_last_step = me.IntField(default=-1)
    recovery_code_hashes = me.ListField(me.StringField())
    activation = me.EmbeddedDocumentField(PendingActivation)
    enrollment = me.EmbeddedDocumentField(PendingEnrollment)
    activated_at = me.DateTimeField()
    last_login_at = me.DateTimeField()
    # Access tokens issued before this instant are refused (reset, lock).
    tokens_valid_after = me.DateTimeField()
    # Sessions ended one by one (logout); their access tokens are refused at once.
    revoked_sessions = me.ListField(me.StringField())

    meta = {"collection": "citizens"}

    def totp_context(self) -> str:
        """Authenticated data binding the encrypted TOTP secret to this citizen."""
        return f"citizen-totp:{self.id}"

    @property
    def display_state(self) -> str:
        """The state shown to support staff (a lock overrides the account state)."""
        return "locked" if self.locked else self.state

    @property
    def contact_channels(self) -> list[str]:
        """Channels on which this citizen can receive a message outside the app."""
        return [name for name, value in (("sms", self.phone), ("email", self.email)) if value]
