"""What HoSo keeps of its exchange with the EU DCC Gateway: foreign DSCs it trusts, uploads, batches."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow


class ForeignSigningKey(me.Document):
    """Another country's DSC, imported from a checked gateway trust list (public certificate only)."""

    kid = me.StringField(required=True)  # base64 of the 8-byte kid
    thumbprint = me.StringField(required=True, unique=True)  # SHA-256 hex of the DER
    country = me.StringField(required=True, min_length=2, max_length=2)
    dsc_der = me.BinaryField(required=True)
    not_before = me.DateTimeField(required=True)
    not_after = me.DateTimeField(required=True)
    source = me.StringField(required=True, max_length=300)  # the gateway URL or "file:<name>"
    signature = me.StringField(required=True)  # the gateway entry's CMS (base64), kept to re-check
    gateway_timestamp = me.StringField(max_length=64)
    csca_checked = me.BooleanField(required=True)
    state = me.StringField(required=True, choices=("active", "removed"))
    imported_at = me.DateTimeField(default=utcnow)
    removed_at = me.DateTimeField()

    meta = {"collection": "foreign_signing_keys", "indexes": ["kid", "state"]}


class DscSequence(me.Document):
    """The order in which DSCs joined what HoSo publishes: the national backend's resume token.

    DGCA verifier apps keep the last ``X-RESUME-TOKEN`` and later ask only for what came after it, so a
    DSC's number never changes and a new DSC always gets a higher one.
    """

    thumbprint = me.StringField(primary_key=True)
    seq = me.IntField(required=True, unique=True)


class Counter(me.Document):
    """A named counter incremented atomically."""

    name = me.StringField(primary_key=True)
    value = me.IntField(required=True, default=0)

    meta = {"collection": "dcc_counters"}


class GatewayUpload(me.Document):
    """A Vietnamese DSC as the gateway holds it (uploaded, then perhaps deleted)."""

    kid = me.StringField(required=True, unique=True)
    state = me.StringField(required=True, choices=("uploaded", "deleted"))
    uploaded_at = me.DateTimeField(required=True)
    deleted_at = me.DateTimeField()
    # The detached CMS over the DSC by the upload certificate (base64), made by the upload command:
    # the public trust list serves it, so the web tier never holds the upload key.
    signature = me.StringField()

    meta = {"collection": "dcc_gateway_uploads"}


class GatewayRevocationBatch(me.Document):
    """A revocation batch uploaded to the gateway (its ETag is the gateway's batch id)."""

    batch_id = me.StringField(required=True, unique=True, max_length=64)
    kid = me.StringField(required=True)
    hash_type = me.StringField(required=True, choices=("UCI", "COUNTRYCODEUCI", "SIGNATURE"))
    uvcis = me.ListField(me.StringField(), required=True)
    expires = me.DateTimeField(required=True)
    uploaded_at = me.DateTimeField(required=True)

    meta = {"collection": "dcc_revocation_batches", "indexes": ["uvcis"]}
