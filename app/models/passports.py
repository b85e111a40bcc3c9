"""Signing keys (DSCs) and the vaccine passports issued with them."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow


class SigningKey(me.Document):
    """A document signer certificate (public part only; private keys never enter the database)."""

    kid = me.StringField(required=True, unique=True)  # base64 of the 8-byte kid
    dsc_der = me.BinaryField(required=True)
    csca_der = me.BinaryField()
    not_before = me.DateTimeField(required=True)
    not_after = me.DateTimeField(required=True)
    state = me.StringField(required=True, choices=("active", "retired"))
    created_at = me.DateTimeField(default=utcnow)
    retired_at = me.DateTimeField()
    # No passport this key signed expires later (written at issuance, rounded up to a day): a retired
    # key stays in the trust list until then, without counting certificates on every shard.
    passports_expire_by = me.DateTimeField()

    meta = {"collection": "signing_keys", "indexes": ["state"]}


class Certificate(me.Document):
    """An issued vaccine passport: what verifiers and revocation need, and the QR text for the app."""

    uvci = me.StringField(required=True)  # unique through the certificate_keys registry
    citizen_id = me.ObjectIdField(required=True)
    immunization_id = me.ObjectIdField(required=True)
    immunization_version = me.IntField(required=True)
    kid = me.StringField(required=True)
    hc1 = me.StringField(required=True)
    issued_at = me.DateTimeField(required=True)
    expires_at = me.DateTimeField(required=True)
    status = me.StringField(default="valid", choices=("valid", "revoked"))
    current = me.BooleanField(default=True)
    superseded_by = me.StringField()
    revoked_at = me.DateTimeField()
    revocation_reason = me.StringField(max_length=500)
    hash_uci = me.StringField(required=True)
    hash_countrycode_uci = me.StringField(required=True)
    hash_signature = me.StringField(required=True)

    # Sharded by citizen. A UVCI is looked up through ``certificate_keys`` (app.models.registries)
    # and revoked ones are listed in ``certificate_revocations``; ``kid`` serves the trust list.
    meta = {
        "collection": "certificates",
        "shard_key": ("citizen_id",),  # mongoengine's own reload/save/delete name the citizen too
        "indexes": [("citizen_id", "-issued_at"), {"fields": ["citizen_id", "uvci"], "unique": True}, "kid"],
    }
