"""Health facilities (MA_CSKCB) and the API clients their systems use."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow

FACILITY_CODE_PATTERN = r"^[0-9A-Z]{5}$"


class Facility(me.Document):
    """A hospital or clinic, keyed by its 5-character MA_CSKCB code."""

    code = me.StringField(required=True, unique=True, regex=FACILITY_CODE_PATTERN)
    name = me.StringField(required=True, max_length=200)
    province = me.StringField(required=True, max_length=100)
    level = me.StringField(max_length=50)
    active = me.BooleanField(default=True)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "facilities"}


class FacilityClient(me.Document):
    """OAuth2 client credentials of one facility system; only an argon2id hash of the secret."""

    client_id = me.StringField(required=True, unique=True)
    secret_hash = me.StringField(required=True)
    facility_code = me.StringField(required=True, regex=FACILITY_CODE_PATTERN)
    label = me.StringField(max_length=100)
    active = me.BooleanField(default=True)
    created_at = me.DateTimeField(default=utcnow)
    created_by = me.StringField()
    last_used_at = me.DateTimeField()
    revoked_at = me.DateTimeField()

    meta = {"collection": "facility_clients", "indexes": ["facility_code"]}
